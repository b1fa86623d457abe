//! SseStream over loopback against servers that behave like proxies and
//! one-shot answers: headers held back, a one-shot POST stream.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use loopback::serve;
use pollkit::Jitter;
use pollkit::reqwest::sse;
use pollkit::sse::Reconnect;

fn events(body: &'static str) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}

/// The first connection's headers are held back (a buffering proxy); the
/// second is answered at once.
async fn held_then_answered(State(hits): State<Arc<AtomicUsize>>) -> Response {
    if hits.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    events("id: 1\ndata: hello\n\n")
}

#[tokio::test]
async fn headers_held_back_are_abandoned_after_the_idle_timeout() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/events", get(held_then_answered))
        .with_state(hits.clone());
    let (base, _stop) = serve(app).await;
    let start = Instant::now();
    let mut stream = sse(reqwest::Client::new().get(format!("{base}/events")))
        .idle_timeout(Duration::from_secs(1))
        .reconnect_time(Duration::from_millis(200))
        .jitter(Jitter::None);
    let event = stream.next().await.unwrap().unwrap();
    let took = start.elapsed();
    assert_eq!(event.data(), "hello");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // 1 s to give up on the held connection, 0.2 s to reconnect.
    assert!(took >= Duration::from_millis(1_200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A one-shot answer to a POST (an LLM completion): 503 at first, then the
/// answer in three events and the end of the body.
async fn one_shot(State(hits): State<Arc<AtomicUsize>>, body: Bytes) -> Response {
    assert_eq!(&body[..], b"{\"prompt\":\"hi\"}");
    if hits.fetch_add(1, Ordering::SeqCst) == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
        )
            .into_response();
    }
    events("data: Hel\n\ndata: lo\n\nevent: done\ndata: \n\n")
}

#[tokio::test]
async fn a_one_shot_post_is_retried_before_its_first_event_and_never_after() {
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/complete", post(one_shot))
        .with_state(hits.clone());
    let (base, _stop) = serve(app).await;
    let request = reqwest::Client::new()
        .post(format!("{base}/complete"))
        .body("{\"prompt\":\"hi\"}");
    let answer: Vec<String> = sse(request)
        .reconnect(Reconnect::BeforeFirstEvent)
        .map(|e| e.unwrap().data().to_owned())
        .collect()
        .await;
    assert_eq!(answer, ["Hel", "lo", ""]);
    // The 503 was retried (after its Retry-After); the answer was not asked again.
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}
