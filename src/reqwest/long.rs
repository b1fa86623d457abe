//! Long polling over reqwest: [`long_index`] (an index in the query string,
//! as Consul, Nomad and etcd v2) and [`long_etag`] (`If-None-Match` with
//! `Prefer: wait`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use ::reqwest::header::{ETAG, HeaderMap, HeaderName, HeaderValue, IF_NONE_MATCH};
use ::reqwest::{Client, Request, RequestBuilder, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::Target;
use super::json::{decode, read, send};
use super::template::{Template, accept};
use super::{Config, ErrorKind, HttpError, HttpFuture};
use crate::LongPoll;
use crate::long::{Reply, Request as Held};

const PREFER: HeaderName = HeaderName::from_static("prefer");

/// How a long-poll request puts its index and its wait in the query string,
/// for [`long_index`].
///
/// # Examples
/// ```
/// use pollkit::reqwest::IndexQuery;
///
/// // Consul and Nomad: `?index=42&wait=30s`.
/// let consul = IndexQuery::consul();
/// // etcd v2: `?wait=true&waitIndex=42`.
/// let etcd = IndexQuery::etcd_v2();
/// // Your own server: `?after=42&timeout=30000ms`.
/// let own = IndexQuery::new("after").wait_millis("timeout");
/// # let _ = (consul, etcd, own);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexQuery {
    index: Cow<'static, str>,
    wait: Wait,
}

/// How the wait goes into the query string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Wait {
    None,
    /// `name=30s`, in whole seconds rounded up, at least 1.
    Seconds(Cow<'static, str>),
    /// `name=30000ms`, in whole milliseconds rounded up, at least 1.
    Millis(Cow<'static, str>),
    /// `name=value`: the server holds until a change, the client bounds it.
    Flag(Cow<'static, str>, Cow<'static, str>),
}

impl IndexQuery {
    /// The index goes in the `index` query parameter; no wait parameter
    /// (add one with [`wait_seconds`](Self::wait_seconds),
    /// [`wait_millis`](Self::wait_millis) or [`wait_flag`](Self::wait_flag)).
    /// The first request carries no index, so the server answers at once
    /// with the current state and the index to wait from.
    pub fn new(index: impl Into<Cow<'static, str>>) -> Self {
        IndexQuery {
            index: index.into(),
            wait: Wait::None,
        }
    }

    /// Consul's and Nomad's blocking queries: `?index=N&wait=30s`. Take the
    /// index from `X-Consul-Index` (or `X-Nomad-Index`) with
    /// [`index_header`].
    pub fn consul() -> Self {
        IndexQuery::new("index").wait_seconds("wait")
    }

    /// etcd v2 watches: `?wait=true&waitIndex=N`. etcd has no server-side
    /// wait: the client ends a request that reaches the poller's wait with
    /// no change and reads it as "unchanged" (never an error), so a quiet
    /// key watched for hours counts no errors. The first request (no index)
    /// is a plain read of the current state. Take the index from the body
    /// (`node.modifiedIndex + 1`).
    pub fn etcd_v2() -> Self {
        IndexQuery::new("waitIndex").wait_flag("wait", "true")
    }

    /// Sends the wait as `name=Ns`, in whole seconds rounded up (at least
    /// 1 s: Consul reads `0` as its 5-minute default).
    pub fn wait_seconds(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.wait = Wait::Seconds(name.into());
        self
    }

    /// Sends the wait as `name=Nms`, in whole milliseconds rounded up (at
    /// least 1 ms).
    pub fn wait_millis(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.wait = Wait::Millis(name.into());
        self
    }

    /// Sends `name=value` (etcd's `wait=true`): the server holds the request
    /// until a change, with no wait of its own, so the client ends it when
    /// the poller's wait is reached, as "unchanged".
    pub fn wait_flag(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.wait = Wait::Flag(name.into(), value.into());
        self
    }

    /// Whether the server holds a request on its own (a wait parameter);
    /// `false` for a flag like etcd's, where the client bounds the hold.
    fn server_waits(&self) -> bool {
        !matches!(self.wait, Wait::Flag(..))
    }

    fn apply(&self, request: &mut Request, index: Option<u64>, wait: Duration) {
        let mut query = request.url_mut().query_pairs_mut();
        // Without an index there is nothing to wait from: the first request
        // reads the current state at once (a real etcd holds a `wait=true`
        // without `waitIndex` until the next change).
        let Some(index) = index else {
            return;
        };
        match &self.wait {
            Wait::None => {}
            Wait::Seconds(name) => {
                query.append_pair(name, &format!("{}s", whole_seconds(wait)));
            }
            Wait::Millis(name) => {
                let millis = wait.as_nanos().div_ceil(1_000_000).max(1);
                query.append_pair(name, &format!("{millis}ms"));
            }
            Wait::Flag(name, value) => {
                query.append_pair(name, value);
            }
        }
        query.append_pair(&self.index, &index.to_string());
    }
}

/// Reads the index from a response header (`X-Consul-Index`,
/// `X-Nomad-Index`...), for [`long_index`]. The name is matched in any case;
/// a header that is missing or not a number gives `None`.
///
/// # Examples
/// ```
/// use reqwest::header::{HeaderMap, HeaderValue};
///
/// let index = pollkit::reqwest::index_header::<()>("X-Consul-Index");
/// let mut headers = HeaderMap::new();
/// headers.insert("x-consul-index", HeaderValue::from_static("42"));
/// assert_eq!(index(&headers, &()), Some(42));
/// ```
pub fn index_header<T>(
    name: &'static str,
) -> impl Fn(&HeaderMap, &T) -> Option<u64> + Clone + Send + Sync + 'static {
    move |headers: &HeaderMap, _: &T| headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A [`LongPoll`] over an index in the query string: Consul's and Nomad's
/// blocking queries (`?index=N&wait=30s`), etcd v2 watches
/// (`?wait=true&waitIndex=N`), and servers built the same way.
///
/// Each request is a clone of `request` with the [`IndexQuery`]'s parameters
/// added: the wait the poller asks for, and the index of the last change
/// (none on the first request, so the server answers at once). `next_index`
/// reads the index to send next from an answer's headers or its decoded body
/// ([`index_header`] for a header).
///
/// | answer | becomes |
/// |---|---|
/// | `304 Not Modified`, or a `2xx` with an empty body | [`Reply::unchanged`] |
/// | no answer by the end of the wait, with a wait flag (etcd's `wait=true`: the server has no wait of its own) | [`Reply::unchanged`] |
/// | `2xx` whose index is the one sent (Consul's answer at the end of its wait) | [`Reply::unchanged`] |
/// | `2xx` with a new index | [`Reply::changed`]: the status is yielded |
/// | `2xx` without an index | an [`ErrorKind::Protocol`](super::ErrorKind::Protocol) error (permanent) |
/// | `410 Gone`, or etcd's `400` with `errorCode` 401 (the index was cleared from its history) | the cursor expired: a fresh first request reads the current state ([`LongPoll::expired_if`]) |
/// | anything else | an [`HttpError`], retried when [transient](HttpError::is_transient), after its `Retry-After` |
///
/// A `502`, `503`, `504` or `524` without `Retry-After`, a reset or a body
/// cut short are failures the poller may take for a path's cut
/// ([`LongPoll::cut_if`]): it learns a proxy's limit from them, verifies
/// it, or ends the wait with the last of them when the path stays down.
/// A connect failure never teaches.
///
/// An index of 0 is sent as 1 (Consul: 0 makes every query return at once);
/// an index lower than the last one (a Consul snapshot restore) is taken as
/// is, so the next request waits from the server's new state.
///
/// Make sure the client's own `timeout` (if any) is longer than the wait:
/// the poller already bounds each request (wait + wait/16 + 5 s by default).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use axum::{Router, Json, routing::get, extract::Query, http::StatusCode, response::IntoResponse};
/// use pollkit::Poller;
/// use pollkit::reqwest::{IndexQuery, index_header, long_index};
///
/// #[derive(serde::Deserialize)]
/// struct Params { index: Option<u64> }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A Consul-like key whose value moves on by one index per request.
/// let app = Router::new().route("/v1/kv/deploy", get(|Query(p): Query<Params>| async move {
///     let index = p.index.unwrap_or(0) + 1;
///     let state = if index >= 3 { "done" } else { "rolling" };
///     ([("x-consul-index", index.to_string())], Json(serde_json::json!({ "state": state })))
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let deploy: serde_json::Value = long_index(
///         client.get(format!("{base}/v1/kv/deploy")),
///         IndexQuery::consul(),
///         index_header("X-Consul-Index"),
///     )
///     .wait(Duration::from_secs(30))
///     .until(|v: &serde_json::Value| v["state"] == "done")
///     .await?;
/// assert_eq!(deploy["state"], "done");
/// # Ok(()) }
/// ```
// The poller's own type, so that every setter stays available.
#[allow(clippy::type_complexity)]
pub fn long_index<T, N>(
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
    Config::new().long_index(request, query, next_index)
}

/// [`long_index`] with a body limit.
#[allow(clippy::type_complexity)]
pub(crate) fn index_poller<T, N>(
    request: RequestBuilder,
    query: IndexQuery,
    next_index: N,
    limit: usize,
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
    let template = Template::new(request);
    let next_index = Arc::new(next_index);
    LongPoll::new(move |held: Held<u64>| {
        let wait = held.wait();
        let sent = held.into_cursor();
        let request = template.request().map(|mut request| {
            query.apply(&mut request, sent, wait);
            request
        });
        let next_index = Arc::clone(&next_index);
        // With no server-side wait, the client ends the hold at the wait.
        let bound = (!query.server_waits() && sent.is_some()).then_some(wait);
        HttpFuture::new(hold(
            template.client().clone(),
            request,
            bound,
            limit,
            move |headers, body, target| {
                let status: T = decode(&body, target)?;
                let index = next_index(headers, &status)
                    .ok_or_else(|| target.protocol("the answer carries no index to wait from"))?
                    .max(1);
                Ok(if sent == Some(index) {
                    Reply::unchanged()
                } else {
                    Reply::changed(status, index)
                })
            },
        ))
    })
    .retry_if(HttpError::is_transient)
    .retry_after(HttpError::retry_after)
    .cut_if(may_be_cut)
    .expired_if(is_expired)
}

/// A [`LongPoll`] over HTTP's conditional requests, the "hanging GET": each
/// request after the first sends the last answer's `ETag` as
/// `If-None-Match` and `Prefer: wait=N` (RFC 7240, the poller's wait in whole
/// seconds, at least 1); the server holds it until the resource changes
/// (`200` with a new `ETag`) or its wait ends (`304`).
///
/// | answer | becomes |
/// |---|---|
/// | `304 Not Modified`, or a `2xx` with an empty body | [`Reply::unchanged`] |
/// | `2xx` with the `ETag` sent (a server that ignored `If-None-Match`) | [`Reply::unchanged`] |
/// | `2xx` with another `ETag` | [`Reply::changed`], the `ETag` is the cursor |
/// | `2xx` without an `ETag` | [`Reply::changed`], the cursor kept; with no `ETag` to send, this is a short poll paced by the poller's rate limit |
/// | `410 Gone` | the cursor expired: a fresh first request without `If-None-Match` |
/// | anything else | an [`HttpError`], retried when [transient](HttpError::is_transient); a `502`, `503` or `504` without `Retry-After` may be a path's cut, as for [`long_index`] |
///
/// A server that ignores `Prefer: wait` answers `304` at once: the poller's
/// rate limit (a burst of 2, then one a second by default) keeps that from
/// becoming a busy loop. ETags are compared for equality only, quotes and
/// `W/` included.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use axum::{Router, Json, routing::get, http::{HeaderMap, StatusCode}, response::IntoResponse};
/// use pollkit::Poller;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Version 1 at first; version 2 once the client has seen version 1.
/// let app = Router::new().route("/config", get(|headers: HeaderMap| async move {
///     let seen = headers.get("if-none-match").is_some();
///     let (etag, version) = if seen { ("\"v2\"", 2) } else { ("\"v1\"", 1) };
///     ([("etag", etag)], Json(serde_json::json!({ "version": version }))).into_response()
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let config: serde_json::Value = pollkit::reqwest::long_etag(client.get(format!("{base}/config")))
///     .wait(Duration::from_secs(20))
///     .until(|v: &serde_json::Value| v["version"] == 2)
///     .await?;
/// assert_eq!(config["version"], 2);
/// # Ok(()) }
/// ```
// The poller's own type, so that every setter stays available.
#[allow(clippy::type_complexity)]
pub fn long_etag<T>(
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
    Config::new().long_etag(request)
}

/// [`long_etag`] with a body limit.
#[allow(clippy::type_complexity)]
pub(crate) fn etag_poller<T>(
    request: RequestBuilder,
    limit: usize,
) -> LongPoll<
    impl FnMut(Held<String>) -> HttpFuture<Reply<T, String>> + Send + 'static,
    HttpFuture<Reply<T, String>>,
    T,
    String,
>
where
    T: DeserializeOwned + Send + 'static,
{
    let template = Template::new(request);
    LongPoll::new(move |held: Held<String>| {
        let wait = held.wait();
        let sent = held.into_cursor().filter(|etag| !etag.is_empty());
        let request = template.request().map(|mut request| {
            // An ETag came from a header value, so it is a valid one.
            let etag = sent.as_deref().and_then(|e| HeaderValue::from_str(e).ok());
            if let Some(etag) = etag {
                let prefer = HeaderValue::from_str(&format!("wait={}", whole_seconds(wait)));
                let headers = request.headers_mut();
                headers.insert(IF_NONE_MATCH, etag);
                if let Ok(prefer) = prefer {
                    headers.insert(PREFER, prefer);
                }
            }
            request
        });
        HttpFuture::new(hold(
            template.client().clone(),
            request,
            None,
            limit,
            move |headers, body, target| {
                let status: T = decode(&body, target)?;
                let etag = headers.get(ETAG).and_then(|v| v.to_str().ok());
                Ok(match (etag, sent) {
                    (Some(etag), Some(sent)) if etag == sent => Reply::unchanged(),
                    (Some(etag), _) => Reply::changed(status, etag.to_owned()),
                    (None, sent) => Reply::changed(status, sent.unwrap_or_default()),
                })
            },
        ))
    })
    .retry_if(HttpError::is_transient)
    .retry_after(HttpError::retry_after)
    .cut_if(may_be_cut)
    .expired_if(is_expired)
}

/// A wait in whole seconds, rounded up, at least 1 (Consul reads `0` as its
/// 5-minute default); saturating, so that `Duration::MAX` is `u64::MAX`
/// seconds rather than an overflow.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

/// One held request: the answers every long-poll shape reads the same way,
/// then `read` for a `2xx` with a body. With `bound` (a server without a
/// wait of its own, as etcd v2, which sends its headers at once and holds
/// the body), a body still held when the bound passes is "unchanged". The
/// bound covers the body only: a server that does not even answer with its
/// headers (a black hole, a partitioned node) is silence, which the poller's
/// per-request limit catches and counts, never an endless "unchanged".
async fn hold<T, C>(
    client: Client,
    request: Result<Request, HttpError>,
    bound: Option<Duration>,
    limit: usize,
    read_reply: impl FnOnce(&HeaderMap, Bytes, &Target) -> Result<Reply<T, C>, HttpError>,
) -> Result<Reply<T, C>, HttpError> {
    let until = bound.map(|wait| crate::schedule::later(tokio::time::Instant::now(), wait));
    let mut request = request?;
    accept(&mut request, "application/json");
    let target = Target::of(&request);
    let response = send(&client, request, &target).await?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Reply::unchanged());
    }
    if !status.is_success() {
        return Err(target.status(response).await);
    }
    let headers = response.headers().clone();
    let body = match until {
        Some(until) => match tokio::time::timeout_at(until, read(response, &target, limit)).await {
            Ok(body) => body?,
            Err(_) => return Ok(Reply::unchanged()),
        },
        None => read(response, &target, limit).await?,
    };
    // etcd answers a watch that timed out with headers and no body.
    if body.trim_ascii().is_empty() {
        return Ok(Reply::unchanged());
    }
    read_reply(&headers, body, &target)
}

/// Whether a failure may be a path's cut (see [`LongPoll::cut_if`]): a
/// gateway's `502`, `503`, `504` or Cloudflare's `524` (one with `Retry-After` never gets
/// here: it is the server speaking), a reset, a body cut short, the
/// client's own read timeout; never a failure to connect (refused, DNS, a
/// connect timeout), which held nothing.
fn may_be_cut(e: &HttpError) -> bool {
    match e.kind() {
        // Cloudflare answers its 100 s limit with 524.
        ErrorKind::Status => e
            .status()
            .is_some_and(|s| matches!(s.as_u16(), 502 | 503 | 504 | 524)),
        ErrorKind::Request | ErrorKind::Body => true,
        // reqwest reports a connect timeout as a timeout: look at its cause.
        ErrorKind::Timeout => !connect_failure(e),
        _ => false,
    }
}

/// Whether reqwest said the connection could not be made.
fn connect_failure(e: &HttpError) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<::reqwest::Error>()
            .is_some_and(::reqwest::Error::is_connect)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Whether the server says the cursor sent is no longer valid: `410 Gone`
/// (Kubernetes), or etcd's `400` with `"errorCode": 401` ("the event in the
/// requested index is outdated and cleared").
fn is_expired(e: &HttpError) -> bool {
    #[derive(serde::Deserialize)]
    struct EtcdError {
        #[serde(rename = "errorCode")]
        error_code: u32,
    }
    match e.status() {
        Some(StatusCode::GONE) => true,
        Some(StatusCode::BAD_REQUEST) => {
            serde_json::from_slice::<EtcdError>(e.body()).is_ok_and(|body| body.error_code == 401)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_up_and_saturate() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds(Duration::MAX), u64::MAX);
    }
}
