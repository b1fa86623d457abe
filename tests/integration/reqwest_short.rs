//! `pollkit::reqwest::{short, json}` against a real axum server over
//! loopback: classification, `Retry-After`, clonable requests.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures::StreamExt;
use loopback::serve;
use pollkit::reqwest::{ErrorKind, HttpError, json, short};
use pollkit::{Error, Jitter, Poller, ShortPoll};
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
struct Job {
    state: String,
}

/// When a request arrived, its `Accept` header and its body.
type Request = (Instant, Option<String>, String);

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Request>>>);

impl Log {
    fn push(&self, headers: &HeaderMap, body: &[u8]) -> usize {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut log = self.0.lock().unwrap();
        log.push((
            Instant::now(),
            accept,
            String::from_utf8_lossy(body).into_owned(),
        ));
        log.len()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Request 1: 503 with `Retry-After: 1`; 2: running; 3: done.
async fn flaky(
    State(log): State<Log>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    match log.push(&headers, &body) {
        1 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
        )
            .into_response(),
        2 => Json(serde_json::json!({"state": "running"})).into_response(),
        _ => Json(serde_json::json!({"state": "done"})).into_response(),
    }
}

#[tokio::test]
async fn short_waits_retry_after_then_polls_to_the_end() {
    let log = Log::default();
    let app = Router::new()
        .route("/jobs/1", get(flaky))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let job: Job = short(client.get(format!("{base}/jobs/1")))
        .interval(Duration::from_millis(20))
        .jitter(Jitter::None)
        .timeout(Duration::from_secs(20))
        .until(|job: &Job| job.state == "done")
        .await
        .unwrap();
    assert_eq!(job.state, "done");
    let requests = log.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    let waited = requests[1].0 - requests[0].0;
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    for (_, accept, _) in &requests {
        assert_eq!(accept.as_deref(), Some("application/json"));
    }
}

#[tokio::test]
async fn a_404_ends_short_polling_at_once() {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/jobs/1",
            get(|State(log): State<Log>, headers: HeaderMap| async move {
                log.push(&headers, b"");
                StatusCode::NOT_FOUND
            }),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let items: Vec<_> = short::<Job>(client.get(format!("{base}/jobs/1")))
        .interval(Duration::from_millis(10))
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    let Err(Error::Fetch(e)) = &items[0] else {
        panic!("{items:?}");
    };
    assert_eq!(e.status(), Some(reqwest::StatusCode::NOT_FOUND));
    assert_eq!(log.count(), 1);
}

#[tokio::test]
async fn a_status_that_does_not_decode_ends_short_polling() {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/jobs/1",
            get(|State(log): State<Log>, headers: HeaderMap| async move {
                log.push(&headers, b"");
                Json(serde_json::json!({"status": "renamed field"}))
            }),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let err = short::<Job>(client.get(format!("{base}/jobs/1")))
        .interval(Duration::from_millis(10))
        .until(|_| true)
        .await
        .unwrap_err();
    let e = err.into_inner().unwrap();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert_eq!(log.count(), 1);
}

/// The server's `Retry-After: 1`, on this test's scale (10 ms): a hint past
/// `hint_max` would end the wait at once rather than be cut short.
fn scaled_retry_after(e: &HttpError) -> Option<Duration> {
    e.retry_after().map(|_| Duration::from_millis(10))
}

#[tokio::test]
async fn the_request_body_is_sent_with_every_attempt() {
    let log = Log::default();
    let app = Router::new()
        .route("/jobs/query", post(flaky))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let request = client
        .post(format!("{base}/jobs/query"))
        .header(header::ACCEPT, "application/vnd.jobs+json")
        .body(r#"{"id":1}"#);
    let job: Job = short(request)
        .interval(Duration::from_millis(10))
        .hint_bounds(Duration::from_millis(10), Duration::from_millis(10))
        .retry_after(scaled_retry_after)
        .until(|job: &Job| job.state == "done")
        .await
        .unwrap();
    assert_eq!(job.state, "done");
    let requests = log.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    for (_, accept, body) in &requests {
        // The caller's own Accept is kept.
        assert_eq!(accept.as_deref(), Some("application/vnd.jobs+json"));
        assert_eq!(body, r#"{"id":1}"#);
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_cloned_is_an_error_not_a_panic() {
    let client = reqwest::Client::new();
    let body = reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>(
        Bytes::from("once"),
    )]));
    let mut polls = short::<Job>(client.post("http://127.0.0.1:9/jobs").body(body));
    let Some(Err(Error::Fetch(e))) = polls.next().await else {
        panic!("a builder error");
    };
    assert_eq!(e.kind(), ErrorKind::Builder);
    assert!(!e.is_transient());
    assert!(polls.next().await.is_none());
}

#[tokio::test]
async fn json_sends_a_streaming_body_once() {
    let log = Log::default();
    let app = Router::new()
        .route("/jobs/query", post(flaky))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let body = reqwest::Body::wrap_stream(futures::stream::iter([Ok::<_, std::io::Error>(
        Bytes::from("streamed"),
    )]));
    let err = json::<Job>(client.post(format!("{base}/jobs/query")).body(body))
        .await
        .unwrap_err();
    // The first answer of `flaky` is a 503: the request went out, body and all.
    assert_eq!(err.status(), Some(reqwest::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(log.0.lock().unwrap()[0].2, "streamed");
}

#[tokio::test]
async fn json_fits_a_closure_of_ones_own() {
    let log = Log::default();
    let app = Router::new()
        .route("/jobs/1", get(flaky))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/jobs/1");
    let job = ShortPoll::new(|| json::<Job>(client.get(&url)))
        .interval(Duration::from_millis(10))
        .hint_bounds(Duration::from_millis(10), Duration::from_millis(10))
        .retry_if(HttpError::is_transient)
        .retry_after(scaled_retry_after)
        .until(|job| job.state == "done")
        .await
        .unwrap();
    assert_eq!(job.state, "done");
    assert_eq!(log.count(), 3);
}
