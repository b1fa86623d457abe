//! [`sse`]: an [`SseStream`] over reqwest, with the event-stream rules of
//! the WHATWG spec and HTTP's error handling wired in.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use ::reqwest::{Client, Request, RequestBuilder, StatusCode};
use bytes::Bytes;
use futures_core::Stream;
use serde::de::DeserializeOwned;

use super::error::Target;
use super::json::send;
use super::template::{Template, accept};
use super::{HttpError, HttpFuture};
use crate::SseStream;
use crate::sse::Event;

const EVENT_STREAM: &str = "text/event-stream";
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// An [`SseStream`] that sends `request` (a GET, or a POST with its body)
/// for every connection, and reads the answer as the WHATWG spec says a
/// browser's `EventSource` does:
///
/// - each connection sends `Accept: text/event-stream` (unless the request
///   sets its own `Accept`), `Cache-Control: no-store`, and `Last-Event-ID`
///   with the id of the last event received, when there is one (never
///   empty);
/// - a `Last-Event-ID` header set on the request is where the stream
///   resumes, as other SSE clients read it: the first connection sends it,
///   events carry it until the server sends another id, and later
///   connections send the last id seen (as
///   [`last_event_id`](SseStream::last_event_id), which, called on the
///   returned stream, replaces it);
/// - only a `200` whose content type is `text/event-stream` (with any
///   parameters, such as `; charset=utf-8`, in any case) is a stream;
/// - a `204 No Content` ends the stream cleanly (`None`, no error, no
///   reconnect): it is how a server says "stop";
/// - any other answer is an [`HttpError`], classified by
///   [`HttpError::is_transient`]: a `503` or a `429` reconnects after its
///   `Retry-After` (clamped by `hint_bounds`) or the backoff, a reset
///   connection reconnects, while a `404`, a `401` or a `200` with another
///   content type (a proxy's HTML page) ends the stream at once with
///   [`Error::Fetch`](crate::Error::Fetch) holding the `HttpError`.
///
/// A body that breaks while streaming is a transient
/// [`ErrorKind::Body`](super::ErrorKind::Body) error: the stream reconnects
/// and resumes after the last event. Each connection sends a clone of the
/// request, body included; a streaming body, which cannot be cloned, ends the
/// stream with an [`ErrorKind::Builder`](super::ErrorKind::Builder) error at
/// the first connect.
///
/// It is the `SseStream` itself: every setter (`idle_timeout`, `timeout`,
/// `last_event_id`, a `retry_if` of your own...) still applies, with
/// `SseStream`'s defaults. Set an [`idle_timeout`](SseStream::idle_timeout)
/// a little over the server's keep-alive comment period, so that a
/// half-open connection cannot hang the stream.
///
/// # Cancel safety
/// As [`SseStream`]: dropping it closes the connection.
///
/// # Examples
/// ```
/// use axum::{Router, routing::get, response::IntoResponse, http::header};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A server with two events, then "no more" (204) on the next connection.
/// let app = Router::new().route("/events", get(|headers: axum::http::HeaderMap| async move {
///     if headers.contains_key("last-event-id") {
///         return axum::http::StatusCode::NO_CONTENT.into_response();
///     }
///     ([(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")],
///      "retry: 10\nid: 1\ndata: running\n\nid: 2\ndata: done\n\n").into_response()
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let events: Vec<_> = pollkit::reqwest::sse(client.get(format!("{base}/events")))
///     .hint_bounds(std::time::Duration::from_millis(10), std::time::Duration::from_secs(1))
///     .collect()
///     .await;
/// let data: Vec<_> = events.iter().map(|e| e.as_ref().unwrap().data().to_owned()).collect();
/// assert_eq!(data, ["running", "done"]);
/// # Ok(()) }
/// ```
pub fn sse(
    request: RequestBuilder,
) -> SseStream<
    impl FnMut(Option<String>) -> HttpFuture<EventBody> + Send + 'static,
    HttpFuture<EventBody>,
    EventBody,
> {
    let template = Template::new(request);
    // The caller's own `Last-Event-ID` seeds the resume position; one that
    // is not text cannot be carried as an event's id, and dropping it would
    // silently replay the stream from its start, so it is an error.
    let seed = template
        .header(&LAST_EVENT_ID)
        .map(|id| std::str::from_utf8(id.as_bytes()).map(str::to_owned));
    let unreadable = matches!(seed, Some(Err(_)));
    let stream = SseStream::new(move |last_event_id: Option<String>| {
        let request = template.request().and_then(|request| {
            if unreadable {
                return Err(Target::of(&request).builder(
                    "the request's Last-Event-ID is not UTF-8 and cannot seed the stream",
                ));
            }
            headers(request, last_event_id)
        });
        HttpFuture::new(connect(template.client().clone(), request))
    })
    .retry_if(HttpError::is_transient)
    .retry_after(HttpError::retry_after)
    .stop_if(|e: &HttpError| {
        e.kind() == super::ErrorKind::Status && e.status() == Some(StatusCode::NO_CONTENT)
    });
    match seed {
        Some(Ok(id)) if !id.is_empty() => stream.last_event_id(id),
        _ => stream,
    }
}

/// Decodes an event's data as JSON, for
/// [`try_map_status`](crate::Poller::try_map_status) on an [`sse`] stream:
/// data that is not a `T` is an [`ErrorKind::Decode`](super::ErrorKind::Decode)
/// error, which ends the stream (it is permanent).
///
/// # Errors
/// When the data is not a `T`.
///
/// # Examples
/// ```
/// use pollkit::reqwest::{ErrorKind, event_json};
/// use pollkit::sse::Parser;
///
/// let mut parser = Parser::new();
/// parser.feed(b"data: {\"percent\": 40}\n\ndata: oops\n\n").unwrap();
/// let first = parser.next_event().unwrap();
/// let value: serde_json::Value = event_json(first).unwrap();
/// assert_eq!(value["percent"], 40);
/// let second = parser.next_event().unwrap();
/// let err = event_json::<serde_json::Value>(second).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Decode);
/// ```
pub fn event_json<T: DeserializeOwned>(event: Event) -> Result<T, HttpError> {
    serde_json::from_str(event.data()).map_err(Target::event)
}

/// The headers of one connection.
fn headers(mut request: Request, last_event_id: Option<String>) -> Result<Request, HttpError> {
    accept(&mut request, EVENT_STREAM);
    let headers = request.headers_mut();
    // A cache between client and server must not answer from a stored copy.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.remove(LAST_EVENT_ID);
    // The spec sends no `Last-Event-ID` when the id is empty.
    if let Some(id) = last_event_id.filter(|id| !id.is_empty()) {
        // An id cannot hold CR, LF or NUL (the parser drops those), but
        // other control characters cannot go in a header: sending none would
        // silently replay the stream from the start, so say so instead.
        let Ok(value) = HeaderValue::from_str(&id) else {
            return Err(Target::of(&request).builder(
                "the last event id holds a control character and cannot be sent as Last-Event-ID",
            ));
        };
        headers.insert(LAST_EVENT_ID, value);
    }
    Ok(request)
}

/// Opens one connection and checks that it is an event stream.
async fn connect(
    client: Client,
    request: Result<Request, HttpError>,
) -> Result<EventBody, HttpError> {
    let request = request?;
    let target = Target::of(&request);
    let response = send(&client, request, &target).await?;
    if response.status() != StatusCode::OK {
        return Err(target.status(response).await);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(is_event_stream) {
        return Err(target.content_type(&response, EVENT_STREAM));
    }
    Ok(EventBody {
        inner: Box::pin(response.bytes_stream()),
        target,
    })
}

/// Whether a `Content-Type` value's essence (before any `;` parameters) is
/// `text/event-stream`, in any case.
fn is_event_stream(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default();
    essence.trim().eq_ignore_ascii_case(EVENT_STREAM)
}

/// The body of one event-stream connection made by [`sse`]: chunks of bytes,
/// or a transient [`HttpError`] when the connection breaks.
#[must_use = "streams do nothing unless polled"]
pub struct EventBody {
    inner: Pin<Box<dyn Stream<Item = ::reqwest::Result<Bytes>> + Send>>,
    target: Target,
}

impl Stream for EventBody {
    type Item = Result<Bytes, HttpError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.inner
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map_err(|e| this.target.body(e))))
    }
}

impl fmt::Debug for EventBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBody")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn content_type_essence() {
        for yes in [
            "text/event-stream",
            "text/event-stream; charset=utf-8",
            "Text/Event-Stream;charset=UTF-8",
            " text/event-stream ; foo=bar",
        ] {
            assert!(is_event_stream(yes), "{yes}");
        }
        for no in [
            "text/html",
            "text/event-streams",
            "",
            "text/plain; x=text/event-stream",
        ] {
            assert!(!is_event_stream(no), "{no}");
        }
    }
}
