//! [`HttpError`]: what went wrong with one request, without its secrets.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::reqwest::header::CONTENT_TYPE;
use ::reqwest::{Method, Request, Response, StatusCode, Url};
use bytes::{Bytes, BytesMut};

/// The most of an error body kept: enough for a problem+json document or a
/// proxy's one-line page, never a whole download.
pub(crate) const BODY_LIMIT: usize = 1024;

/// What kind of failure an [`HttpError`] is.
///
/// [`HttpError::is_transient`] says which are worth a retry; the table is in
/// its documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered with a status that is not a success (or, for an
    /// event stream, not `200`): see [`HttpError::status`].
    Status,
    /// The server answered `200` with the wrong content type (an event
    /// stream answered as `text/html` by a proxy's error page).
    ContentType,
    /// No connection could be made (DNS, refused, TLS handshake).
    Connect,
    /// The client's own timeout (reqwest's `timeout`, `connect_timeout`,
    /// `read_timeout`) fired.
    Timeout,
    /// The request failed on the way (a connection reset before the answer).
    Request,
    /// Reading the body failed (a connection cut in the middle).
    Body,
    /// The body is not the JSON the caller expected.
    Decode,
    /// The request could not be built, or cannot be sent again because its
    /// body is a stream that cannot be cloned.
    Builder,
    /// Too many redirects, or a redirect the client's policy refused.
    Redirect,
    /// The answer does not follow the protocol a helper expects (a long-poll
    /// answer without the index it needs to go on).
    Protocol,
    /// A success's body is larger than the helper's limit
    /// ([`Config::max_body`](super::Config::max_body)); see
    /// [`HttpError::limit`].
    TooLarge,
}

/// The request an error is about: the method and the URL without userinfo,
/// query or fragment, which is where tokens live.
#[derive(Clone, Debug, Default)]
pub(crate) struct Target {
    method: Option<Method>,
    url: Option<String>,
}

impl Target {
    pub(crate) fn of(request: &Request) -> Self {
        Target {
            method: Some(request.method().clone()),
            url: Some(sanitize(request.url())),
        }
    }

    /// A failure of reqwest's while sending or reading: classified by its
    /// kind, stripped of its URL (whose query may hold a token).
    pub(crate) fn transport(&self, error: ::reqwest::Error) -> HttpError {
        let kind = if error.is_builder() {
            ErrorKind::Builder
        } else if error.is_redirect() {
            ErrorKind::Redirect
        } else if error.is_timeout() {
            ErrorKind::Timeout
        } else if error.is_connect() {
            ErrorKind::Connect
        } else if error.is_body() || error.is_decode() {
            ErrorKind::Body
        } else {
            ErrorKind::Request
        };
        self.error(kind).with_reqwest_source(error)
    }

    /// A failure while reading a body that was already flowing: always
    /// [`ErrorKind::Body`] (or `Timeout`), so always transient.
    pub(crate) fn body(&self, error: ::reqwest::Error) -> HttpError {
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Body
        };
        self.error(kind).with_reqwest_source(error)
    }

    /// An answer with an unwanted status: keeps the status, the headers that
    /// matter and the first KiB of the body.
    pub(crate) async fn status(&self, mut response: Response) -> HttpError {
        let mut error = self.answer(ErrorKind::Status, &response);
        let mut body = BytesMut::new();
        // A body that fails half-way still gives what arrived; the error is
        // about the status, not about the body.
        while body.len() < BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = BODY_LIMIT - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        error.inner.body = body.freeze();
        error
    }

    /// A `200` whose content type is not the one wanted.
    pub(crate) fn content_type(&self, response: &Response, expected: &'static str) -> HttpError {
        let mut error = self.answer(ErrorKind::ContentType, response);
        error.inner.detail = Some(expected);
        error
    }

    /// A body that is not the JSON expected. serde_json's message quotes
    /// the values it read (`invalid type: string "Bearer sk-..."`), and a
    /// server echoes what it was sent, so only the category and the
    /// position are kept.
    pub(crate) fn decode(&self, error: &serde_json::Error) -> HttpError {
        self.error(ErrorKind::Decode)
            .with_source(DecodeError::of(error))
    }

    /// An event's data that is not the JSON expected (no request to name).
    pub(crate) fn event(error: serde_json::Error) -> HttpError {
        let mut error = Target::default().decode(&error);
        error.inner.detail = Some("an event's data is not the JSON expected");
        error
    }

    /// A body larger than `limit` bytes: nothing past the limit was kept.
    pub(crate) fn too_large(&self, response: &Response, limit: usize) -> HttpError {
        let mut error = self.answer(ErrorKind::TooLarge, response);
        error.inner.limit = Some(limit);
        error
    }

    pub(crate) fn protocol(&self, detail: &'static str) -> HttpError {
        let mut error = self.error(ErrorKind::Protocol);
        error.inner.detail = Some(detail);
        error
    }

    pub(crate) fn builder(&self, detail: &'static str) -> HttpError {
        let mut error = self.error(ErrorKind::Builder);
        error.inner.detail = Some(detail);
        error
    }

    fn answer(&self, kind: ErrorKind, response: &Response) -> HttpError {
        let mut error = self.error(kind);
        error.inner.status = Some(response.status());
        error.inner.retry_after = crate::http::retry_after(response.headers());
        error.inner.content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        error
    }

    fn error(&self, kind: ErrorKind) -> HttpError {
        HttpError {
            inner: Box::new(Inner {
                kind,
                method: self.method.clone(),
                url: self.url.clone(),
                status: None,
                retry_after: None,
                content_type: None,
                body: Bytes::new(),
                detail: None,
                limit: None,
            }),
            source: None,
        }
    }
}

/// Why a body is not the JSON expected, without the text of the body: the
/// category of serde_json's error and where it happened.
#[derive(Clone, Copy, Debug)]
struct DecodeError {
    category: serde_json::error::Category,
    line: usize,
    column: usize,
}

impl DecodeError {
    fn of(error: &serde_json::Error) -> Self {
        DecodeError {
            category: error.classify(),
            line: error.line(),
            column: error.column(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use serde_json::error::Category;
        let what = match self.category {
            Category::Syntax => "invalid JSON",
            Category::Eof => "the JSON ends early",
            Category::Data => "the JSON does not fit the expected type",
            Category::Io => "reading the JSON failed",
        };
        write!(f, "{what} at line {}, column {}", self.line, self.column)
    }
}

impl std::error::Error for DecodeError {}

/// The URL as an error may show it: scheme, host, port and path only.
pub(crate) fn sanitize(url: &Url) -> String {
    let mut clean = url.clone();
    // Both fail only for URLs that cannot have userinfo (`data:`, `mailto:`).
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    clean.into()
}

/// What went wrong with one HTTP request made by the [`reqwest`](super)
/// helpers: the failure's [`ErrorKind`], the status and the headers that
/// matter (`Retry-After`, already read as a [`Duration`], and the content
/// type), and the first KiB of an error body.
///
/// # Transient or permanent
/// [`is_transient`](Self::is_transient) is what the helpers give their
/// pollers' `retry_if`:
///
/// | kind | transient |
/// |---|---|
/// | [`Status`](ErrorKind::Status) | by [`pollkit::http::is_transient`](crate::http::is_transient): 408, 425, 429 and 5xx but 501 and 505 |
/// | [`Connect`](ErrorKind::Connect), [`Timeout`](ErrorKind::Timeout), [`Request`](ErrorKind::Request), [`Body`](ErrorKind::Body) | yes: the network failed, not the request |
/// | [`Decode`](ErrorKind::Decode) | no: a body that parses as JSON but not as your type is a contract the server broke (or a wrong type on your side), and asking again returns the same body; a body cut in the middle is a `Body` error, not this |
/// | [`ContentType`](ErrorKind::ContentType), [`Builder`](ErrorKind::Builder), [`Redirect`](ErrorKind::Redirect), [`Protocol`](ErrorKind::Protocol) | no |
/// | [`TooLarge`](ErrorKind::TooLarge) | no: the same resource answers the same size; raise [`Config::max_body`](super::Config::max_body) |
///
/// To retry decode errors too (a proxy that answers `200` with an HTML page
/// during maintenance), replace the classification:
/// `.retry_if(|e: &HttpError| e.is_transient() || e.kind() == ErrorKind::Decode)`.
///
/// # No secrets
/// An `HttpError` never keeps a request header (so no `Authorization` or
/// `Cookie`), keeps no response header but `Retry-After` and `Content-Type`
/// (so no `Set-Cookie`), and shows the URL without its userinfo, query string
/// or fragment, in [`Display`](fmt::Display), in [`Debug`] and in
/// [`url`](Self::url). The body is kept for [`body`](Self::body) and the
/// content type for [`content_type`](Self::content_type), but neither is
/// printed, since servers echo what they were sent. A body that is not the
/// JSON expected keeps only the kind of failure and its line and column,
/// never serde_json's message, which quotes the values it read. The same
/// holds for every error in the [`source`](std::error::Error::source)
/// chain. A token in the URL's *path* cannot be told from a resource name
/// and is kept.
///
/// # Examples
/// ```
/// use pollkit::reqwest::{ErrorKind, HttpError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Nothing listens on port 9 of localhost: a connect error, worth retrying.
/// let client = reqwest::Client::new();
/// let err: HttpError = pollkit::reqwest::json::<serde_json::Value>(
///         client.get("http://user:secret@127.0.0.1:9/status?token=abc"))
///     .await
///     .unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Connect);
/// assert!(err.is_transient());
/// assert_eq!(err.url(), Some("http://127.0.0.1:9/status"));
/// assert!(!format!("{err} {err:?}").contains("secret"));
/// assert!(!format!("{err} {err:?}").contains("token"));
/// # }
/// ```
#[derive(Clone, thiserror::Error)]
#[error("{}", Message(&self.inner))]
pub struct HttpError {
    // Boxed, so that a `Result<T, HttpError>` stays small on the happy path.
    inner: Box<Inner>,
    #[source]
    source: Option<Shared>,
}

/// The cause, shared so that `HttpError` is `Clone`. It derefs to the cause
/// itself, so `source()` returns reqwest's or serde_json's error (which
/// `downcast_ref` finds), not this wrapper.
#[derive(Clone)]
struct Shared(Arc<dyn std::error::Error + Send + Sync>);

impl std::ops::Deref for Shared {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A reqwest error whose chain held a URL: its own message (reqwest prints
/// its URL there, and this one's was stripped), nothing below it.
#[derive(Debug)]
struct Redacted(String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    method: Option<Method>,
    url: Option<String>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    content_type: Option<String>,
    body: Bytes,
    /// The expected content type, or what a protocol or builder error is about.
    detail: Option<&'static str>,
    /// The body limit a `TooLarge` error passed.
    limit: Option<usize>,
}

impl HttpError {
    fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Shared(Arc::new(source)));
        self
    }

    /// reqwest's error as the source, stripped of its URL (whose query may
    /// hold a token). `without_url` strips only the outer error's: a
    /// redirect refused by the client (`https_only` and a plain-http
    /// `Location`, or a policy's `attempt.error(..)`) nests another reqwest
    /// error that still holds the URL it was sent to (a presigned URL, with
    /// its signature). Such a chain is replaced by [`Redacted`], which keeps
    /// the outer message only.
    fn with_reqwest_source(self, error: ::reqwest::Error) -> Self {
        let error = error.without_url();
        let mut below = std::error::Error::source(&error);
        while let Some(e) = below {
            if e.downcast_ref::<::reqwest::Error>()
                .is_some_and(|nested| nested.url().is_some())
            {
                return self.with_source(Redacted(error.to_string()));
            }
            below = e.source();
        }
        self.with_source(error)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The status the server answered, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The server's `Retry-After` (or `retry-after-ms`) when it answered
    /// with one, read by [`pollkit::http::retry_after`](crate::http::retry_after)
    /// when the answer arrived.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Whether asking again may succeed: see the table in the type's
    /// documentation.
    pub fn is_transient(&self) -> bool {
        match self.inner.kind {
            ErrorKind::Status => self.inner.status.is_some_and(crate::http::is_transient),
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Request | ErrorKind::Body => true,
            ErrorKind::ContentType
            | ErrorKind::Decode
            | ErrorKind::Builder
            | ErrorKind::Redirect
            | ErrorKind::Protocol
            | ErrorKind::TooLarge => false,
        }
    }

    /// The body limit that a [`TooLarge`](ErrorKind::TooLarge) error passed,
    /// in bytes.
    pub fn limit(&self) -> Option<usize> {
        self.inner.limit
    }

    /// The answer's `Content-Type`, when it answered with one.
    pub fn content_type(&self) -> Option<&str> {
        self.inner.content_type.as_deref()
    }

    /// The first KiB of an error answer's body (empty for other kinds).
    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// The request's method, when the request could be built.
    pub fn method(&self) -> Option<&Method> {
        self.inner.method.as_ref()
    }

    /// The request's URL without userinfo, query string or fragment, when
    /// the request could be built.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.inner;
        f.debug_struct("HttpError")
            .field("kind", &e.kind)
            .field("method", &e.method)
            .field("url", &e.url)
            .field("status", &e.status)
            .field("retry_after", &e.retry_after)
            // Header values are not printed, as the body (see Display).
            .field(
                "content_type_len",
                &e.content_type.as_ref().map(String::len),
            )
            // The body may echo what the request carried: its size only.
            .field("body_len", &e.body.len())
            .field("limit", &e.limit)
            .field("source", &self.source)
            .finish()
    }
}

/// The one-line message: the request, then what happened to it. The
/// source's own text is left to `source()`.
struct Message<'a>(&'a Inner);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        // "GET http://host/path": what the request was, when it was built.
        let request = match (&e.method, &e.url) {
            (Some(method), Some(url)) => Some((method, url)),
            _ => None,
        };
        if let Some((method, url)) = request {
            write!(f, "{method} {url}")?;
        }
        let sep = if request.is_some() { ": " } else { "" };
        match e.kind {
            ErrorKind::Status | ErrorKind::ContentType => {
                if request.is_none() {
                    f.write_str("the server")?;
                }
                f.write_str(" answered ")?;
                if e.kind == ErrorKind::Status {
                    match e.status {
                        Some(status) => write!(f, "{status}")?,
                        None => f.write_str("an error status")?,
                    }
                } else {
                    // The header's value is not printed: a server may echo
                    // anything into it.
                    if let Some(status) = e.status {
                        write!(f, "{status} with ")?;
                    }
                    match e.detail {
                        Some(expected) => write!(f, "a content type other than {expected}")?,
                        None => f.write_str("an unexpected content type")?,
                    }
                }
            }
            ErrorKind::Connect => write!(f, "{sep}could not connect")?,
            ErrorKind::Timeout => write!(f, "{sep}timed out")?,
            ErrorKind::Request => write!(f, "{sep}the request failed")?,
            ErrorKind::Body => write!(f, "{sep}reading the body failed")?,
            ErrorKind::Redirect => write!(f, "{sep}redirect refused")?,
            ErrorKind::Decode => {
                let what = e.detail.unwrap_or("the body is not the JSON expected");
                write!(f, "{sep}{what}")?;
            }
            ErrorKind::TooLarge => {
                let limit = e.limit.unwrap_or_default();
                write!(f, "{sep}the body is larger than the limit of {limit} bytes")?;
            }
            ErrorKind::Builder | ErrorKind::Protocol => {
                let what = e.detail.unwrap_or("the request could not be built");
                write!(f, "{sep}{what}")?;
            }
        }
        if let Some(after) = e.retry_after {
            write!(f, " (retry after {}s)", after.as_secs_f64())?;
        }
        Ok(())
    }
}
