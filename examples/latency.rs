//! Detection latency over loopback: the time from a change on the server to
//! the client seeing it, p50 and p99, for short polling (1 s interval), long
//! polling and Server-Sent Events.
//!
//! ```sh
//! cargo run --release --example latency            # 10 / 300 / 300 changes
//! cargo run --release --example latency -- 20 1000 # short, long and SSE changes
//! ```
//!
//! Server and client share one process and one clock, so the figure is
//! exact: the server notes `Instant::now()` when it makes a change, the client
//! notes it when the change arrives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Jitter, LongPoll, Poller, ShortPoll, SseStream};
use serde::Deserialize;
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
struct Server {
    index: watch::Receiver<u64>,
}

#[derive(Deserialize)]
struct Since {
    index: Option<u64>,
}

async fn status(State(s): State<Server>, Query(q): Query<Since>) -> String {
    let mut index = s.index.clone();
    if let Some(seen) = q.index {
        let _ = tokio::time::timeout(Duration::from_secs(30), index.wait_for(|i| *i > seen)).await;
    }
    let now = *index.borrow();
    now.to_string()
}

async fn events(State(s): State<Server>) -> Response {
    let body = futures::stream::unfold((s.index.clone(), 0), |(mut index, seen)| async move {
        index.wait_for(|i| *i > seen).await.ok()?;
        let now = *index.borrow();
        let event = Bytes::from(format!("id: {now}\ndata: {now}\n\n"));
        Some((Ok::<_, std::io::Error>(event), (index, now)))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Makes `changes` changes `gap` apart (±50 % so they never align with a poll
/// grid); returns when each change was made.
async fn change(
    tx: &watch::Sender<u64>,
    changes: usize,
    gap: Duration,
    made: &Mutex<Vec<Instant>>,
) {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..changes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let spread = gap.mul_f64(0.5 + (seed % 1000) as f64 / 1000.0);
        tokio::time::sleep(spread).await;
        made.lock().expect("lock").push(Instant::now());
        tx.send_modify(|i| *i += 1);
    }
}

/// Runs one strategy against a fresh index and returns sorted latencies.
async fn measure(
    base: &str,
    strategy: &str,
    tx: &watch::Sender<u64>,
    changes: usize,
    gap: Duration,
) -> Result<Vec<Duration>, BoxError> {
    let start = *tx.borrow();
    let made = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::builder().build()?;
    let poller: pollkit::BoxPoller<u64, reqwest::Error> = match strategy {
        "short" => {
            let url = format!("{base}/status");
            ShortPoll::new(move || {
                let request = client.get(&url);
                async move { Ok(request.send().await?.text().await?.parse().unwrap_or(0)) }
            })
            .interval(Duration::from_secs(1))
            .jitter(Jitter::None)
            .changes()
            .boxed_poller()
        }
        "long" => {
            let url = format!("{base}/status");
            LongPoll::new(move |req: Request<u64>| {
                let index = req.cursor().copied().unwrap_or(start);
                let request = client.get(&url).query(&[("index", index)]);
                async move {
                    let now: u64 = request.send().await?.text().await?.parse().unwrap_or(0);
                    Ok(if now > index {
                        Reply::changed(now, now)
                    } else {
                        Reply::unchanged()
                    })
                }
            })
            // The changes come faster than the default one request per second.
            .rate_limit(1000, Duration::from_millis(1))
            .boxed_poller()
        }
        _ => {
            let url = format!("{base}/events");
            SseStream::new(move |_id: Option<String>| {
                let request = client.get(&url).header(header::ACCEPT, "text/event-stream");
                async move { Ok(request.send().await?.error_for_status()?.bytes_stream()) }
            })
            .map_status(|e| e.data().parse().unwrap_or(0))
            .boxed_poller()
        }
    };
    let mut poller = poller;
    // The changes start once the client has had time to connect.
    let maker = {
        let (tx, made) = (tx.clone(), made.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            change(&tx, changes, gap, &made).await
        })
    };
    let mut latencies = Vec::with_capacity(changes);
    let mut seen = start;
    while latencies.len() < changes {
        let Some(item) = poller.next().await else {
            break;
        };
        let index = item?;
        let now = Instant::now();
        while seen < index {
            seen += 1;
            let made = made.lock().expect("lock");
            if let Some(at) = made.get((seen - start - 1) as usize) {
                latencies.push(now - *at);
            }
        }
    }
    maker.await?;
    latencies.sort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let short_changes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let fast_changes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let (tx, rx) = watch::channel(0_u64);
    let app = Router::new()
        .route("/status", get(status))
        .route("/events", get(events))
        .with_state(Server { index: rx });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    println!("| strategy | changes | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (strategy, changes, gap) in [
        ("short (1 s)", short_changes, Duration::from_millis(1300)),
        ("long", fast_changes, Duration::from_millis(10)),
        ("sse", fast_changes, Duration::from_millis(10)),
    ] {
        let name = strategy.split(' ').next().unwrap_or(strategy);
        let l = measure(&base, name, &tx, changes, gap).await?;
        println!(
            "| {strategy} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            l.len(),
            percentile(&l, 0.5).as_secs_f64() * 1e3,
            percentile(&l, 0.99).as_secs_f64() * 1e3,
            l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    server.abort();
    Ok(())
}
