//! `pollkit::reqwest::sse` against a real axum server over loopback: the
//! headers it sends, the statuses and content types it accepts, stops on, or
//! ends with, and reconnects that resume (GET and POST).
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{StreamExt, TryStreamExt};
use loopback::serve;
use pollkit::reqwest::{ErrorKind, HttpError, sse};
use pollkit::{Error, Jitter, Poller};

/// What the server saw of each request.
#[derive(Clone, Debug, Default)]
struct Seen {
    accept: Option<String>,
    cache_control: Option<String>,
    last_event_id: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(Instant, Seen)>>>);

impl Log {
    fn push(&self, headers: &HeaderMap, body: &[u8]) -> usize {
        let get = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = Seen {
            accept: get(header::ACCEPT),
            cache_control: get(header::CACHE_CONTROL),
            last_event_id: get(header::HeaderName::from_static("last-event-id")),
            body: String::from_utf8_lossy(body).into_owned(),
        };
        let mut log = self.0.lock().unwrap();
        log.push((Instant::now(), seen));
        log.len()
    }

    fn seen(&self) -> Vec<Seen> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn stream_response(content_type: &str, chunks: Vec<Result<Bytes, std::io::Error>>) -> Response {
    // A pause before each chunk, so that hyper has written what came before
    // when a chunk is an error (it drops a failed body's unwritten bytes).
    let chunks = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        chunk
    });
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(chunks))
        .unwrap()
}

/// Connection 1 sends events 1 and 2 and breaks (an error mid-body);
/// connection 2 sends event 3 cleanly; connection 3 is told to stop (204).
async fn cut_then_stop(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> Response {
    match log.push(&headers, &body) {
        1 => stream_response(
            "text/event-stream",
            vec![
                Ok(Bytes::from(
                    "retry: 20\nid: 1\ndata: one\n\nid: 2\ndata: two\n\nid: 3\nda",
                )),
                Err(std::io::Error::other("cut")),
            ],
        ),
        2 => stream_response(
            "Text/Event-Stream; charset=UTF-8",
            vec![Ok(Bytes::from("id: 3\ndata: three\n\n"))],
        ),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

fn fast<F, Fut, B>(stream: pollkit::SseStream<F, Fut, B>) -> pollkit::SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<B, HttpError>>,
    B: futures::Stream<Item = Result<Bytes, HttpError>>,
{
    stream
        .jitter(Jitter::None)
        .hint_bounds(Duration::from_millis(10), Duration::from_secs(30))
        .timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn get_sends_the_headers_resumes_after_a_cut_and_stops_on_204() {
    let log = Log::default();
    let app = Router::new()
        .route("/events", get(cut_then_stop))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let items: Vec<_> = fast(sse(client.get(format!("{base}/events"))))
        .collect()
        .await;
    let data: Vec<String> = items
        .iter()
        .map(|e| {
            e.as_ref()
                .expect("no error: 204 ends cleanly")
                .data()
                .to_owned()
        })
        .collect();
    assert_eq!(data, ["one", "two", "three"]);
    let seen = log.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for s in &seen {
        assert_eq!(s.accept.as_deref(), Some("text/event-stream"));
        assert_eq!(s.cache_control.as_deref(), Some("no-store"));
    }
    assert_eq!(seen[0].last_event_id, None);
    assert_eq!(seen[1].last_event_id.as_deref(), Some("2"));
    assert_eq!(seen[2].last_event_id.as_deref(), Some("3"));
}

#[tokio::test]
async fn post_streams_reconnect_with_their_body() {
    let log = Log::default();
    let app = Router::new()
        .route("/chat", post(cut_then_stop))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let request = client
        .post(format!("{base}/chat"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"prompt":"hello"}"#);
    let events: Vec<_> = fast(sse(request)).try_collect().await.unwrap();
    assert_eq!(events.len(), 3);
    let seen = log.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.body, r#"{"prompt":"hello"}"#);
    }
    assert_eq!(seen[1].last_event_id.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_body_that_cannot_be_cloned_fails_at_the_first_connect() {
    let client = reqwest::Client::new();
    // Nothing listens here: the error must come before any connection.
    let body = reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>(
        Bytes::from("once"),
    )]));
    let request = client.post("http://127.0.0.1:9/chat").body(body);
    let mut events = fast(sse(request));
    let Some(Err(Error::Fetch(e))) = events.next().await else {
        panic!("a builder error");
    };
    assert_eq!(e.kind(), ErrorKind::Builder);
    assert!(e.to_string().contains("cannot be cloned"), "{e}");
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn a_404_ends_at_once_without_reconnecting() {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/events",
            get(|State(log): State<Log>, headers: HeaderMap| async move {
                log.push(&headers, b"");
                (StatusCode::NOT_FOUND, "no such job")
            }),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let items: Vec<_> = fast(sse(client.get(format!("{base}/events"))))
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    let Err(Error::Fetch(e)) = &items[0] else {
        panic!("{items:?}");
    };
    assert_eq!(e.status(), Some(reqwest::StatusCode::NOT_FOUND));
    assert_eq!(e.body(), b"no such job");
    // Give a reconnect storm the time to show.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.count(), 1);
}

#[tokio::test]
async fn a_wrong_content_type_ends_at_once_without_reconnecting() {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/events",
            get(|State(log): State<Log>, headers: HeaderMap| async move {
                log.push(&headers, b"");
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<html>proxy says hi</html>",
                )
            }),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let items: Vec<_> = fast(sse(client.get(format!("{base}/events"))))
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    let Err(Error::Fetch(e)) = &items[0] else {
        panic!("{items:?}");
    };
    assert_eq!(e.kind(), ErrorKind::ContentType);
    assert_eq!(e.status(), Some(reqwest::StatusCode::OK));
    assert_eq!(e.content_type(), Some("text/html; charset=utf-8"));
    assert!(
        e.to_string()
            .ends_with("answered 200 OK with a content type other than text/event-stream"),
        "{e}"
    );
    // The header's value is read with `content_type()`, never printed.
    assert!(!format!("{e} {e:?}").contains("text/html"), "{e:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.count(), 1);
}

#[tokio::test]
async fn a_503_waits_its_retry_after() {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/events",
            get(|State(log): State<Log>, headers: HeaderMap| async move {
                if log.push(&headers, b"") == 1 {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(header::RETRY_AFTER, "1")],
                    )
                        .into_response();
                }
                stream_response(
                    "text/event-stream;charset=utf-8",
                    vec![Ok(Bytes::from("data: back\n\n"))],
                )
            }),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let event = sse(client.get(format!("{base}/events")))
        .jitter(Jitter::None)
        .timeout(Duration::from_secs(20))
        .until(|e| e.data() == "back")
        .await
        .unwrap();
    assert_eq!(event.data(), "back");
    let times = log.times();
    assert_eq!(times.len(), 2);
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}
