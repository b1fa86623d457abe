//! [`Config`]: the helpers with settings of their own (the body limit).

use ::reqwest::RequestBuilder;
use ::reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::json::{Empty, fetch_answer, fetch_json};
use super::long::{etag_poller, index_poller};
use super::template::Template;
use super::{Answer, HttpError, HttpFuture, IndexQuery};
use crate::long::{Reply, Request as Held};
use crate::{LongPoll, ShortPoll};

/// The default [`Config::max_body`]: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;

/// The helpers with settings of their own: the free functions
/// ([`short`](super::short), [`json`](super::json),
/// [`long_index`](super::long_index), [`long_etag`](super::long_etag)) are
/// these methods on `Config::new()`.
///
/// # Default
/// - [`max_body`](Self::max_body): 4 MiB ([`DEFAULT_MAX_BODY`]). A status
///   is a small document; a misbehaving server or proxy that answers a
///   status poll with a download must not be buffered at every poll.
///
/// # Examples
/// ```
/// use axum::{Router, routing::get};
/// use pollkit::reqwest::{Config, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A status answered with 64 KiB of padding.
/// let app = Router::new().route("/status", get(|| async { " ".repeat(64 << 10) + "{}" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let err = Config::new()
///     .max_body(16 << 10)
///     .json::<serde_json::Value>(client.get(format!("{base}/status")))
///     .await
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::TooLarge);
/// assert_eq!(err.limit(), Some(16 << 10));
/// assert!(!err.is_transient());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    max_body: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults (see the type's `# Default`).
    pub const fn new() -> Self {
        Config {
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The most bytes of a success's body read and decoded. The body is
    /// read chunk by chunk; a `Content-Length` over the limit, or a body
    /// that grows past it, ends the request with a permanent
    /// [`ErrorKind::TooLarge`](super::ErrorKind::TooLarge) error that names
    /// the limit, and nothing past the limit is kept. (An error answer's
    /// body is read up to 1 KiB, whatever this says.)
    #[must_use = "`max_body` returns the configuration"]
    pub const fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The limit set by [`max_body`](Self::max_body).
    pub const fn body_limit(&self) -> usize {
        self.max_body
    }

    /// [`json`](super::json), with this configuration.
    pub fn json<T>(self, request: RequestBuilder) -> HttpFuture<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        // Sent once: no clone, so a streaming body is fine here.
        let (client, request) = Template::new(request).into_parts();
        HttpFuture::new(fetch_json(client, request, self.max_body))
    }

    /// [`short`](super::short), with this configuration.
    pub fn short<T>(
        self,
        request: RequestBuilder,
    ) -> ShortPoll<impl FnMut() -> HttpFuture<T> + Send + 'static, HttpFuture<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let template = Template::new(request);
        let limit = self.max_body;
        // The status carries no headers, so the fetch leaves a success's
        // `Retry-After` here for `poll_after`, which runs right after it.
        let hint: Arc<Mutex<Option<Duration>>> = Arc::default();
        let seen = Arc::clone(&hint);
        ShortPoll::new(move || {
            let request = template.request();
            let client = template.client().clone();
            let hint = Arc::clone(&hint);
            HttpFuture::new(async move {
                let answer = fetch_answer(client, request, limit, Empty::Invalid).await?;
                *hint.lock().unwrap_or_else(PoisonError::into_inner) = answer.retry_after();
                Ok(answer.into_body())
            })
        })
        .retry_if(HttpError::is_transient)
        .retry_after(HttpError::retry_after)
        .poll_after(move |_: &T| seen.lock().unwrap_or_else(PoisonError::into_inner).take())
    }

    /// [`json_answer`](super::json_answer), with this configuration.
    pub fn json_answer<T>(self, request: RequestBuilder) -> HttpFuture<Answer<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        // Sent once: no clone, so a streaming body is fine here.
        let (client, request) = Template::new(request).into_parts();
        HttpFuture::new(fetch_answer(client, request, self.max_body, Empty::Null))
    }

    /// [`short_answer`](super::short_answer), with this configuration.
    pub fn short_answer<T>(
        self,
        request: RequestBuilder,
    ) -> ShortPoll<impl FnMut() -> HttpFuture<Answer<T>> + Send + 'static, HttpFuture<Answer<T>>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let template = Template::new(request);
        let limit = self.max_body;
        ShortPoll::new(move || {
            let request = template.request();
            let client = template.client().clone();
            HttpFuture::new(fetch_answer(client, request, limit, Empty::Null))
        })
        .retry_if(HttpError::is_transient)
        .retry_after(HttpError::retry_after)
        .poll_after(Answer::retry_after)
    }

    /// [`long_index`](super::long_index), with this configuration.
    // The poller's own type, so that every setter stays available.
    #[allow(clippy::type_complexity)]
    pub fn long_index<T, N>(
        self,
        request: RequestBuilder,
        query: IndexQuery,
        next_index: N,
    ) -> LongPoll<
        impl FnMut(Held<u64>) -> HttpFuture<Reply<T, u64>> + Send + 'static,
        HttpFuture<Reply<T, u64>>,
        T,
        u64,
    >
    where
        T: DeserializeOwned + Send + 'static,
        N: Fn(&HeaderMap, &T) -> Option<u64> + Send + Sync + 'static,
    {
        index_poller(request, query, next_index, self.max_body)
    }

    /// [`long_etag`](super::long_etag), with this configuration.
    // The poller's own type, so that every setter stays available.
    #[allow(clippy::type_complexity)]
    pub fn long_etag<T>(
        self,
        request: RequestBuilder,
    ) -> LongPoll<
        impl FnMut(Held<String>) -> HttpFuture<Reply<T, String>> + Send + 'static,
        HttpFuture<Reply<T, String>>,
        T,
        String,
    >
    where
        T: DeserializeOwned + Send + 'static,
    {
        etag_poller(request, self.max_body)
    }
}
