//! Real paths over loopback, on the real clock, scaled down: a gateway whose
//! read timeout (1 s) is shorter than the long-poll wait (30 s, the
//! default), an upstream restart (6 s of 502), a maintenance window (6 s of
//! 503 with `Retry-After: 2`). A resource changes every 300 ms; pollers on
//! their defaults (only `retry_after` wired, as a user of `pollkit::reqwest`
//! gets it) must deliver every change once and in order, and notice the
//! path working again within seconds. The same scenarios at full scale (a
//! minute of outage) run on the paused clock in `real_paths.rs`.

use crate::loopback;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{LongPoll, Poller, ShortPoll, SseStream, Stats};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Changes come every 300 ms, 30 of them; behind the gateway, every 5 s
/// (a quiet resource, whose held requests the gateway cuts), 3 of them.
const CHANGE_EVERY: Duration = Duration::from_millis(300);
const CHANGES: u64 = 30;
const QUIET_EVERY: Duration = Duration::from_secs(5);
const QUIET_CHANGES: u64 = 3;

#[derive(Clone, Copy, Debug)]
enum Trouble {
    /// 504 for a request held longer than this.
    Gateway(Duration),
    /// 502 to every request in this window (from the start).
    Outage(Duration, Duration),
    /// 503 with this `Retry-After` (whole seconds) in this window.
    Maintenance(Duration, Duration, u64),
}

struct World {
    start: Instant,
    trouble: Trouble,
    every: Duration,
    changes: u64,
}

impl World {
    /// The latest change now (changes 1.. happen every `every` from the start).
    fn index(&self) -> u64 {
        let n = self.start.elapsed().as_millis() / self.every.as_millis();
        (n as u64).min(self.changes)
    }

    fn refused(&self) -> Option<Response> {
        let now = self.start.elapsed();
        match self.trouble {
            Trouble::Outage(from, to) if now >= from && now < to => {
                Some(StatusCode::BAD_GATEWAY.into_response())
            }
            Trouble::Maintenance(from, to, secs) if now >= from && now < to => Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, secs.to_string())],
                )
                    .into_response(),
            ),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Watch {
    index: Option<u64>,
    wait_ms: u64,
}

/// `GET /watch?index=N&wait_ms=W`: the next change after N, held until it
/// happens or the wait ends (304); one change per reply.
async fn watch(State(world): State<Arc<World>>, Query(q): Query<Watch>) -> Response {
    if let Some(refused) = world.refused() {
        return refused;
    }
    let after = q.index.unwrap_or(0);
    let held = Instant::now();
    loop {
        if world.index() > after {
            return (
                [("x-index", (after + 1).to_string())],
                (after + 1).to_string(),
            )
                .into_response();
        }
        if after >= world.changes || held.elapsed() >= Duration::from_millis(q.wait_ms) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        if let Trouble::Gateway(cut) = world.trouble {
            if held.elapsed() >= cut {
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET /state`: the latest index.
async fn state(State(world): State<Arc<World>>) -> Response {
    match world.refused() {
        Some(refused) => refused,
        None => world.index().to_string().into_response(),
    }
}

/// `GET /events`: the changes after `Last-Event-ID`, as they happen; the
/// gateway cuts the response after its read timeout of silence... here,
/// after its timeout, whatever was sent (a proxy that limits a response's life).
async fn events(State(world): State<Arc<World>>, headers: HeaderMap) -> Response {
    if let Some(refused) = world.refused() {
        return refused;
    }
    let from: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let opened = Instant::now();
    let cut = match world.trouble {
        Trouble::Gateway(cut) => Some(cut),
        _ => None,
    };
    let body = futures::stream::unfold((from, world), move |(sent, world)| async move {
        loop {
            if cut.is_some_and(|cut| opened.elapsed() >= cut) || sent >= world.changes {
                return None;
            }
            if world.index() > sent {
                let n = sent + 1;
                let chunk = format!("id: {n}\ndata: {n}\n\n");
                return Some((Ok::<_, std::io::Error>(chunk), (n, world)));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(axum::body::Body::from_stream(body))
        .unwrap()
}

async fn serve(trouble: Trouble) -> (String, oneshot::Sender<()>) {
    let (every, changes) = match trouble {
        Trouble::Gateway(_) => (QUIET_EVERY, QUIET_CHANGES),
        _ => (CHANGE_EVERY, CHANGES),
    };
    let world = Arc::new(World {
        start: Instant::now(),
        trouble,
        every,
        changes,
    });
    let app = Router::new()
        .route("/watch", get(watch))
        .route("/state", get(state))
        .route("/events", get(events))
        .with_state(world);
    loopback::serve(app).await
}

/// A user's error: the status (for the log) and its `Retry-After`.
#[derive(Debug)]
#[allow(dead_code)]
struct HttpError {
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        HttpError {
            status: e.status(),
            retry_after: None,
        }
    }
}

fn check(response: &reqwest::Response) -> Result<(), HttpError> {
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map(Duration::from_secs);
    Err(HttpError {
        status: Some(status),
        retry_after,
    })
}

async fn long_poll(base: &str, changes: u64) -> (Vec<u64>, Stats) {
    let client = reqwest::Client::new();
    let base = base.to_owned();
    let stats = Stats::new();
    let got = LongPoll::new(move |req: Request<u64>| {
        let mut url = format!("{base}/watch?wait_ms={}", req.wait().as_millis());
        if let Some(index) = req.cursor() {
            url += &format!("&index={index}");
        }
        let client = client.clone();
        async move {
            let response = client.get(url).send().await?;
            check(&response)?;
            if response.status() == StatusCode::NOT_MODIFIED {
                return Ok(Reply::unchanged());
            }
            let index: u64 = response.text().await?.trim().parse().unwrap_or(0);
            Ok::<_, HttpError>(Reply::changed(index, index))
        }
    })
    .retry_after(|e: &HttpError| e.retry_after)
    .stats(stats.clone())
    .take(changes as usize)
    .map(|r| r.unwrap())
    .collect()
    .await;
    (got, stats)
}

async fn sse(base: &str, changes: u64) -> Vec<u64> {
    let client = reqwest::Client::new();
    let url = format!("{base}/events");
    SseStream::new(move |last: Option<String>| {
        let mut request = client.get(&url);
        if let Some(id) = last {
            request = request.header("last-event-id", id);
        }
        async move {
            let response = request.send().await?;
            check(&response)?;
            Ok::<_, HttpError>(response.bytes_stream().map(|c| c.map_err(HttpError::from)))
        }
    })
    .retry_after(|e: &HttpError| e.retry_after)
    .take(changes as usize)
    .map(|e| e.unwrap().data().parse::<u64>().unwrap())
    .collect()
    .await
}

async fn short_poll(base: &str) -> u64 {
    let client = reqwest::Client::new();
    let url = format!("{base}/state");
    ShortPoll::new(move || {
        let request = client.get(&url);
        async move {
            let response = request.send().await?;
            check(&response)?;
            Ok::<_, HttpError>(response.text().await?.trim().parse::<u64>().unwrap_or(0))
        }
    })
    .retry_after(|e: &HttpError| e.retry_after)
    .until(|n| *n == CHANGES)
    .await
    .unwrap()
}

fn all(changes: u64) -> Vec<u64> {
    (1..=changes).collect()
}

#[tokio::test]
async fn a_gateway_shorter_than_the_wait() {
    let (base, _stop) = serve(Trouble::Gateway(Duration::from_secs(1))).await;
    let start = Instant::now();
    let ((got, stats), events) =
        tokio::join!(long_poll(&base, QUIET_CHANGES), sse(&base, QUIET_CHANGES));
    assert_eq!(got, all(QUIET_CHANGES));
    assert_eq!(events, all(QUIET_CHANGES));
    assert_eq!(
        stats.waits_lowered(),
        1,
        "the gateway's limit was learned once"
    );
    assert_eq!(stats.errors(), 2, "two cuts taught it; none after");
    // 3 changes 5 s apart: 15 s; SSE may see the last one a reconnection
    // time (3 to 3.6 s) late, as the gateway cuts it every second.
    assert!(
        start.elapsed() < Duration::from_secs(22),
        "{:?}",
        start.elapsed()
    );
}

/// Every strategy on its defaults comes through `trouble` with every change
/// once and in order, soon after the path works again.
async fn every_strategy_comes_through(trouble: Trouble) {
    let (base, _stop) = serve(trouble).await;
    let start = Instant::now();
    let ((got, _), events, last) = tokio::join!(
        long_poll(&base, CHANGES),
        sse(&base, CHANGES),
        short_poll(&base)
    );
    assert_eq!(got, all(CHANGES));
    assert_eq!(events, all(CHANGES));
    assert_eq!(last, CHANGES);
    assert!(
        start.elapsed() < Duration::from_secs(25),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_upstream_restart() {
    let trouble = Trouble::Outage(Duration::from_secs(2), Duration::from_secs(8));
    every_strategy_comes_through(trouble).await;
}

#[tokio::test]
async fn a_maintenance_window_with_retry_after() {
    let trouble = Trouble::Maintenance(Duration::from_secs(2), Duration::from_secs(8), 2);
    every_strategy_comes_through(trouble).await;
}
