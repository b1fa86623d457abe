//! [`Answer`]: a success with its metadata (status code and headers).

use std::fmt;
use std::time::Duration;

use ::reqwest::StatusCode;
use ::reqwest::header::{HeaderMap, HeaderName, LOCATION};

const OPERATION_LOCATION: HeaderName = HeaderName::from_static("operation-location");

/// A success answer: its status code, its headers and its decoded body, as
/// [`json_answer`](super::json_answer) and
/// [`short_answer`](super::short_answer) yield it.
///
/// It carries what a long-running operation says beside its body: a
/// `202 Accepted` with `Location` or `Operation-Location` (where to watch)
/// and `Retry-After` (when to ask again), as Azure and many job APIs
/// answer. [`short_answer`](super::short_answer) paces its polls by that
/// `Retry-After`.
///
/// Its `Debug` shows the status, the header *names* and the body: header
/// values (a `Set-Cookie`) are read with [`headers`](Self::headers), never
/// printed.
///
/// # Examples
/// ```
/// use axum::{Router, http::StatusCode, routing::post};
/// use pollkit::reqwest::json_answer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Starting a job answers 202 with where to watch it, and when.
/// let app = Router::new().route("/jobs", post(|| async {
///     (StatusCode::ACCEPTED, [("location", "/operations/7"), ("retry-after", "2")])
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// // No body: read as JSON `null`, so `()` (or an `Option`) fits.
/// let started = json_answer::<()>(client.post(format!("{base}/jobs"))).await?;
/// assert_eq!(started.status(), StatusCode::ACCEPTED);
/// assert_eq!(started.location(), Some("/operations/7"));
/// assert_eq!(started.retry_after(), Some(std::time::Duration::from_secs(2)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Answer<T> {
    status: StatusCode,
    headers: HeaderMap,
    retry_after: Option<Duration>,
    body: T,
}

impl<T> Answer<T> {
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: T) -> Self {
        Answer {
            retry_after: crate::http::retry_after(&headers),
            status,
            headers,
            body,
        }
    }

    /// The status code (a `2xx`).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The decoded body.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The decoded body, without the metadata.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The answer's `Retry-After` (or `retry-after-ms`), read by
    /// [`pollkit::http::retry_after`](crate::http::retry_after) when the
    /// answer arrived.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Where a long-running operation is to be watched: the
    /// `Operation-Location` header (Azure), else `Location`, as sent (often
    /// a path relative to the request's URL). `None` when neither is there
    /// or is not text.
    pub fn location(&self) -> Option<&str> {
        let value = self
            .headers
            .get(OPERATION_LOCATION)
            .or_else(|| self.headers.get(LOCATION))?;
        value.to_str().ok()
    }

    /// Maps the body with `f`, keeping the metadata.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            status: self.status,
            headers: self.headers,
            retry_after: self.retry_after,
            body: f(self.body),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Names<'a>(&'a HeaderMap);
        impl fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.keys()).finish()
            }
        }
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &Names(&self.headers))
            .field("retry_after", &self.retry_after)
            .field("body", &self.body)
            .finish()
    }
}
