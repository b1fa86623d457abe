//! An etcd-v2-like watch over loopback (`?wait=true&waitIndex=N`, one change
//! per reply): a backlog of 200 changes already written is caught up at the
//! server's pace on LongPoll's defaults, not at one request a second.

use crate::loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use futures::StreamExt;
use pollkit::LongPoll;
use pollkit::long::{Reply, Request};
use serde::Deserialize;

#[derive(Deserialize)]
struct Watch {
    #[serde(rename = "waitIndex")]
    wait_index: u64,
}

/// `GET /v2/keys/job?wait=true&waitIndex=N`: the change at index N, held
/// until it exists (here: all 200 exist already).
async fn watch(State(written): State<Arc<AtomicU64>>, Query(q): Query<Watch>) -> String {
    while q.wait_index > written.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    format!("{}", q.wait_index)
}

#[tokio::test]
async fn a_backlog_of_200_is_caught_up_within_two_seconds() {
    let written = Arc::new(AtomicU64::new(200));
    let app = Router::new()
        .route("/v2/keys/job", get(watch))
        .with_state(written);
    let (base, _stop) = loopback::serve(app).await;
    let client = reqwest::Client::new();

    let start = Instant::now();
    let got: Vec<u64> = LongPoll::new(move |req: Request<u64>| {
        let next = req.cursor().map_or(1, |c| c + 1);
        let url = format!("{base}/v2/keys/job?wait=true&waitIndex={next}");
        let client = client.clone();
        async move {
            let body = client
                .get(url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?;
            let index: u64 = body.trim().parse().unwrap_or(next);
            Ok::<_, reqwest::Error>(Reply::changed(index, index))
        }
    })
    .take(200)
    .map(Result::unwrap)
    .collect()
    .await;
    let took = start.elapsed();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
    assert!(took < Duration::from_secs(2), "caught up in {took:?}");
}
