//! SseStream end to end: a real axum server over loopback, read through
//! reqwest `bytes_stream()`, with the connection cut mid-event.

use crate::loopback;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{StreamExt, TryStreamExt};
use pollkit::sse::Event;
use pollkit::{Jitter, Poller, SseStream};
use tokio::sync::oneshot;

const EVENTS: usize = 40;

#[derive(Clone, Default)]
struct Feed {
    /// Last-Event-ID of each request, as the server received it.
    resumed_from: Arc<Mutex<Vec<Option<String>>>>,
    connections: Arc<AtomicUsize>,
}

/// One event in wire form, split in two halves so a connection can be cut
/// in the middle of it.
fn event(n: usize) -> String {
    format!("id: {n}\nevent: progress\ndata: {{\"n\":{n}}}\ndata: line two\n\n")
}

/// Serves events after `Last-Event-ID`. Connection k (from 0) sends 7 events
/// and half of the next one, then cuts: even connections end the body
/// abruptly with an error (the socket is dropped), odd ones end it cleanly.
async fn events(State(feed): State<Feed>, headers: HeaderMap) -> Response {
    if headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) != Some("text/event-stream") {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    feed.resumed_from.lock().unwrap().push(last.clone());
    let k = feed.connections.fetch_add(1, Ordering::SeqCst);
    let start = last
        .and_then(|id| id.parse::<usize>().ok())
        .map_or(1, |n| n + 1);
    let mut body = String::from("retry: 10\n: hello\n\n");
    let end = (start + 7).min(EVENTS + 1);
    for n in start..end {
        body.push_str(&event(n));
    }
    let mut chunks: Vec<Result<Bytes, std::io::Error>> = Vec::new();
    // Deliver in small awkward pieces, so events straddle chunks.
    for piece in body.as_bytes().chunks(13) {
        chunks.push(Ok(Bytes::copy_from_slice(piece)));
    }
    if end <= EVENTS {
        let half = event(end);
        chunks.push(Ok(Bytes::from(half[..half.len() / 2].to_owned())));
        if k % 2 == 0 {
            chunks.push(Err(std::io::Error::other("connection cut")));
        }
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap()
}

/// Starts the server on 127.0.0.1:0; it stops when the returned sender drops.
async fn serve(feed: Feed) -> (String, oneshot::Sender<()>) {
    loopback::serve(Router::new().route("/events", get(events)).with_state(feed)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The connect function a user writes: `Accept`, `Last-Event-ID`, status check.
fn connect(
    client: reqwest::Client,
    url: String,
) -> impl FnMut(
    Option<String>,
) -> futures::future::BoxFuture<
    'static,
    reqwest::Result<futures::stream::BoxStream<'static, reqwest::Result<Bytes>>>,
> {
    move |last_event_id| {
        let mut request = client.get(&url).header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        Box::pin(async move {
            let response = request.send().await?.error_for_status()?;
            Ok(response.bytes_stream().boxed())
        })
    }
}

#[tokio::test]
async fn every_event_exactly_once_in_order_across_cuts() {
    let feed = Feed::default();
    let (base, _stop) = serve(feed.clone()).await;
    let events: Vec<Event> = SseStream::new(connect(client(), format!("{base}/events")))
        .jitter(Jitter::None)
        .hint_bounds(Duration::from_millis(10), Duration::from_secs(1))
        .timeout(Duration::from_secs(20))
        .take(EVENTS)
        .try_collect()
        .await
        .unwrap();
    let ids: Vec<usize> = events
        .iter()
        .map(|e| e.last_event_id().parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=EVENTS).collect::<Vec<_>>());
    for e in &events {
        assert_eq!(e.event_type(), "progress");
        assert!(e.data().ends_with("}\nline two"), "{:?}", e.data());
    }
    // 40 events, at most 7 per connection, each connection cut in the middle
    // of an event (hyper may drop a connection's last buffered bytes when its
    // body fails, so the exact resume points vary): every reconnect resumed
    // from a later id than the one before.
    let resumed = feed.resumed_from.lock().unwrap().clone();
    assert!(resumed.len() >= 6, "{resumed:?}");
    assert_eq!(resumed[0], None);
    let resumed: Vec<usize> = resumed[1..]
        .iter()
        .map(|id| id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "{resumed:?}");
    assert!(resumed.iter().all(|&id| id < EVENTS), "{resumed:?}");
}

#[tokio::test]
async fn a_refused_accept_header_is_a_permanent_error() {
    let feed = Feed::default();
    let (base, _stop) = serve(feed.clone()).await;
    let url = format!("{base}/events");
    let client = client();
    let r = SseStream::new(move |_id: Option<String>| {
        // Forgets the Accept header: the server answers 406.
        let request = client.get(&url);
        async move {
            let response = request.send().await?.error_for_status()?;
            Ok::<_, reqwest::Error>(response.bytes_stream())
        }
    })
    .retry_if(|e: &reqwest::Error| e.status().is_none_or(|s| s.is_server_error()))
    .until(|_| true)
    .await;
    match r {
        Err(pollkit::Error::Fetch(e)) => assert_eq!(e.status(), Some(StatusCode::NOT_ACCEPTABLE)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        feed.connections.load(Ordering::SeqCst),
        0,
        "no event stream was opened"
    );
}

#[tokio::test]
async fn a_server_sending_sse_through_axums_own_sse_type() {
    use axum::response::sse::{Event as AxumEvent, Sse};
    let app = Router::new().route(
        "/",
        get(|| async {
            let events = futures::stream::iter(1..=3).map(|n| {
                Ok::<_, Infallible>(
                    AxumEvent::default()
                        .id(n.to_string())
                        .data(format!("step {n}")),
                )
            });
            Sse::new(events)
        }),
    );
    let (base, stop) = loopback::serve(app).await;
    let last = SseStream::new(connect(client(), format!("{base}/")))
        .until(|e| e.data() == "step 3")
        .await
        .unwrap();
    assert_eq!(last.last_event_id(), "3");
    drop(stop);
}
