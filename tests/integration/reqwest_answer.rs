//! Success metadata: `json_answer` and `short_answer` hand the status code
//! and headers with the body, and a success's `Retry-After` sets the time
//! of the next poll of `short` and `short_answer`.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use loopback::serve;
use pollkit::Poller;
use pollkit::reqwest::{json_answer, short, short_answer};

/// An operation that runs (`202`, `retry-after-ms: 200`) for two polls,
/// then succeeds (`200`); the instant of every poll.
async fn operation() -> (
    String,
    Arc<Mutex<Vec<Instant>>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let polls: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = Arc::clone(&polls);
    let app = Router::new()
        .route(
            "/jobs",
            post(|| async {
                (
                    StatusCode::ACCEPTED,
                    [
                        ("location", "/operations/7"),
                        ("retry-after", "3"),
                        ("set-cookie", "s=SECRETVALUE"),
                    ],
                )
            }),
        )
        .route(
            "/operations/7",
            get(move || {
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(Instant::now());
                    log.len()
                };
                async move {
                    let (status, state) = if n < 3 {
                        (StatusCode::ACCEPTED, "running")
                    } else {
                        (StatusCode::OK, "succeeded")
                    };
                    (
                        status,
                        [("retry-after-ms", "200")],
                        Json(serde_json::json!({ "status": state })),
                    )
                        .into_response()
                }
            }),
        );
    let (base, stop) = serve(app).await;
    (base, polls, stop)
}

fn gaps(polls: &Mutex<Vec<Instant>>) -> Vec<Duration> {
    polls
        .lock()
        .unwrap()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect()
}

#[tokio::test]
async fn a_successs_retry_after_sets_the_next_poll_of_short() {
    let (base, polls, _stop) = operation().await;
    let client = reqwest::Client::new();
    let statuses: Vec<serde_json::Value> = short(client.get(format!("{base}/operations/7")))
        .interval(Duration::from_millis(1))
        .hint_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .take(3)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(statuses[2]["status"], "succeeded");
    // The hint is never shortened (it is spread up to a fifth above).
    let gaps = gaps(&polls);
    assert_eq!(gaps.len(), 2);
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(200)),
        "{gaps:?}"
    );
}

#[tokio::test]
async fn short_answer_yields_status_headers_and_body_paced_by_retry_after() {
    let (base, polls, _stop) = operation().await;
    let client = reqwest::Client::new();
    let answers: Vec<_> =
        short_answer::<serde_json::Value>(client.get(format!("{base}/operations/7")))
            .interval(Duration::from_millis(1))
            .hint_bounds(Duration::from_millis(100), Duration::from_secs(60))
            .take(3)
            .map(Result::unwrap)
            .collect()
            .await;
    let codes: Vec<_> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(codes, [202, 202, 200]);
    assert_eq!(answers[0].body()["status"], "running");
    assert_eq!(answers[0].retry_after(), Some(Duration::from_millis(200)));
    assert_eq!(answers[0].headers()["retry-after-ms"], "200");
    assert!(
        gaps(&polls)
            .iter()
            .all(|g| *g >= Duration::from_millis(200))
    );
}

#[tokio::test]
async fn json_answer_reads_a_202_without_a_body_and_hides_header_values() {
    let (base, _polls, _stop) = operation().await;
    let client = reqwest::Client::new();
    let started = json_answer::<()>(client.post(format!("{base}/jobs")))
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    assert_eq!(started.location(), Some("/operations/7"));
    assert_eq!(started.retry_after(), Some(Duration::from_secs(3)));
    let debug = format!("{started:?}");
    assert!(debug.contains("set-cookie"), "{debug}");
    assert!(!debug.contains("SECRETVALUE"), "{debug}");
    // Option<T> reads the empty body as None.
    let none = json_answer::<Option<serde_json::Value>>(client.post(format!("{base}/jobs")))
        .await
        .unwrap();
    assert!(none.body().is_none());
}

#[tokio::test]
async fn a_long_running_operation_from_start_to_result() {
    let (base, _polls, _stop) = operation().await;
    let client = reqwest::Client::new();
    let started = json_answer::<()>(client.post(format!("{base}/jobs")))
        .await
        .unwrap();
    let watch = format!("{base}{}", started.location().unwrap());
    let done = short_answer::<serde_json::Value>(client.get(watch))
        .hint_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .until(|op| op.status() == StatusCode::OK)
        .await
        .unwrap();
    assert_eq!(done.into_body()["status"], "succeeded");
}
