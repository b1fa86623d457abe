//! Fault injection over loopback: reqwest clients driven by pollkit against
//! the fault-injecting server in `tests/faults/mod.rs`, which resets, cuts
//! and stalls connections, answers 5xx with sane and absurd `Retry-After`
//! values, truncates bodies and sends garbage at seeded random points.
//!
//! Through every fault, `ShortPoll` and `LongPoll` must reach the terminal
//! status of each job, and `SseStream` must deliver every event exactly once,
//! in order, resuming with `Last-Event-ID`; nothing panics, every stalled
//! connection is released, and memory does not grow.
//!
//! The quick version (1,200 faults in all) runs in `cargo test`. For the
//! figures in the README:
//!
//! ```text
//! POLLKIT_FAULTS=20000 cargo test --release --test reliability_faults -- --nocapture
//! ```

mod faults;

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use faults::{Fault, Server};
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, LongPoll, Poller, ShortPoll, SseStream, Stats};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, RETRY_AFTER};
use serde::Deserialize;

/// Clients at work at the same time, each on a job (or stream) of its own.
const CONCURRENCY: usize = 16;

/// Faults to inject in all, shared by the three scenarios.
fn target_faults() -> u64 {
    std::env::var("POLLKIT_FAULTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_200)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// Memory: live heap bytes of this test's thread
// ---------------------------------------------------------------------------

/// Counts the heap bytes each thread holds. A `#[tokio::test]` runs the
/// server, the clients and hyper's connection tasks on its one thread, so its
/// count is the scenario's memory.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Peak live bytes in the first and second half of a scenario.
    static PEAKS: Cell<[i64; 2]> = const { Cell::new([0; 2]) };
    static HALF: Cell<usize> = const { Cell::new(0) };
}

fn add_live(delta: i64) {
    // try_with: the thread-local may be gone while the thread exits.
    let _ = LIVE.try_with(|n| n.set(n.get() + delta));
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        add_live(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        add_live(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        add_live(size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.with(Cell::get)
}

/// Records the live bytes now into the current half's peak.
fn sample_memory() {
    let now = live();
    let half = HALF.with(Cell::get);
    PEAKS.with(|p| {
        let mut peaks = p.get();
        peaks[half] = peaks[half].max(now);
        p.set(peaks);
    });
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------
// The user's side: reqwest, a status check, Retry-After
// ---------------------------------------------------------------------------

/// A user's error type: a status the server answered, with its
/// `Retry-After` in seconds if it parses, or a transport or decoding error.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("the server answered {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

impl ApiError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            ApiError::Transport(_) => None,
        }
    }

    /// The hint on the scale of this test (milliseconds for seconds): a
    /// hint past `hint_max` would end the wait at once, so this client
    /// caps what it is told, as one that prefers to come back early would.
    fn scaled_retry_after(&self) -> Option<Duration> {
        self.retry_after().map(|h| (h / 1000).min(ms(20)))
    }

    /// Reads an error status; `Retry-After: 99999999` parses to a bit over
    /// three years, which the client caps (`scaled_retry_after`).
    fn from_status(response: &reqwest::Response) -> Self {
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(Duration::from_secs);
        ApiError::Status {
            status: response.status(),
            retry_after,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
struct Job {
    step: u64,
    state: String,
}

async fn get_job(client: reqwest::Client, url: String) -> Result<Job, ApiError> {
    let response = client.get(url).send().await?;
    if !response.status().is_success() {
        return Err(ApiError::from_status(&response));
    }
    Ok(response.json().await?)
}

async fn watch_job(
    client: reqwest::Client,
    url: String,
    req: Request<u64>,
) -> Result<Reply<Job, u64>, ApiError> {
    let mut url = format!("{url}?wait={}", req.wait().as_millis());
    if let Some(index) = req.cursor() {
        url += &format!("&index={index}");
    }
    let response = client.get(url).send().await?;
    match response.status() {
        StatusCode::NOT_MODIFIED => Ok(Reply::unchanged()),
        status if status.is_success() => {
            let index = response
                .headers()
                .get("x-index")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let job: Job = response.json().await?;
            // A 200 without an index is garbage from a proxy: try again.
            Ok(index.map_or(Reply::unchanged(), |i| Reply::changed(job, i)))
        }
        _ => Err(ApiError::from_status(&response)),
    }
}

/// Fast retries for a test that must run in seconds: never gives up on its own.
fn backoff() -> Backoff {
    Backoff::new()
        .base(ms(1))
        .max_delay(ms(20))
        .max_retries(100_000)
}

// ---------------------------------------------------------------------------
// The driver: clients on fresh jobs until enough faults were injected
// ---------------------------------------------------------------------------

struct Outcome {
    completed: u64,
    seconds: f64,
}

/// Keeps `CONCURRENCY` clients busy, each on a fresh job `id`, until the
/// server has injected `target` faults and every client has finished.
async fn until_faults<Fut>(
    server: &Server,
    target: u64,
    mut client: impl FnMut(u64) -> Fut,
) -> Outcome
where
    Fut: Future<Output = ()>,
{
    let started = std::time::Instant::now();
    HALF.with(|h| h.set(0));
    PEAKS.with(|p| p.set([0; 2]));
    let mut running = FuturesUnordered::new();
    let (mut next, mut completed) = (0, 0);
    loop {
        let injected = server.counters.total_faults();
        if injected * 2 >= target {
            HALF.with(|h| h.set(1));
        }
        while running.len() < CONCURRENCY && injected < target {
            running.push(client(next));
            next += 1;
        }
        match running.next().await {
            Some(()) => {
                completed += 1;
                sample_memory();
            }
            None => break,
        }
    }
    Outcome {
        completed,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Checks what every scenario must leave behind, and prints its figures.
async fn report(name: &str, server: &Server, stats: &Stats, outcome: &Outcome, baseline: i64) {
    let c = &server.counters;
    let stalls = c.faults(Fault::Stall) + c.faults(Fault::StallBody) + c.faults(Fault::SseStall);
    let [first, second] = PEAKS.with(Cell::get);
    println!(
        "{name}: {} faults injected ({}); {} requests served over {} connections; pollkit saw \
         {} requests and {} errors; {} completed; {:.1} s; heap above baseline: peak {:.2} MiB \
         in the first half, {:.2} MiB in the second",
        c.total_faults(),
        c.by_kind(),
        c.requests.load(std::sync::atomic::Ordering::SeqCst),
        c.accepted.load(std::sync::atomic::Ordering::SeqCst),
        stats.requests(),
        stats.errors(),
        outcome.completed,
        outcome.seconds,
        mib(first - baseline),
        mib(second - baseline),
    );
    // The client's errors are at least the faults it met, minus the
    // connections a fault cut before the request reached the handler.
    assert!(stats.errors() > 0);
    assert!(
        server.all_connections_closed().await,
        "{name}: a connection stayed open"
    );
    assert_eq!(
        c.stalls_released.load(std::sync::atomic::Ordering::SeqCst),
        stalls,
        "{name}: every stalled request was released by the client"
    );
    // Nothing grows: the second half peaks no higher than the first, give
    // or take the noise of 16 clients' buffers, and the whole stays small.
    assert!(
        second - baseline <= (first - baseline) * 3 / 2 + (4 << 20),
        "{name}: memory grew from {:.2} MiB to {:.2} MiB",
        mib(first - baseline),
        mib(second - baseline),
    );
    assert!(
        first.max(second) - baseline < 64 << 20,
        "{name}: memory is not bounded"
    );
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

#[tokio::test]
async fn short_poll_reaches_the_end_of_every_job_through_faults() {
    let target = target_faults().div_ceil(3);
    let steps = 8;
    let server = faults::spawn(faults::Config {
        seed: 0x5EED_0001,
        rate: 0.5,
        steps,
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let stats = Stats::new();
    let baseline = live();
    let outcome = until_faults(&server, target, |id| {
        let (client, stats) = (client.clone(), stats.clone());
        let url = format!("{}/jobs/{id}", server.base);
        async move {
            let job = ShortPoll::new(move || get_job(client.clone(), url.clone()))
                .interval(ms(1))
                .attempt_timeout(ms(100))
                .retry_after(ApiError::scaled_retry_after)
                .hint_bounds(ms(1), ms(50))
                .backoff(backoff())
                .timeout(Duration::from_secs(60))
                .stats(stats)
                .until(|job| job.state == "completed")
                .await
                .unwrap_or_else(|e| panic!("job {id}: {e}"));
            assert_eq!(job.step, steps, "job {id}");
        }
    })
    .await;
    drop(client);
    report("ShortPoll", &server, &stats, &outcome, baseline).await;
    assert!(server.counters.total_faults() >= target);
}

#[tokio::test]
async fn long_poll_reaches_the_end_of_every_job_through_faults() {
    let target = target_faults().div_ceil(3);
    let steps = 8;
    let server = faults::spawn(faults::Config {
        seed: 0x5EED_0002,
        rate: 0.5,
        steps,
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let stats = Stats::new();
    let baseline = live();
    let outcome = until_faults(&server, target, |id| {
        let (client, stats) = (client.clone(), stats.clone());
        let url = format!("{}/watch/{id}", server.base);
        async move {
            let job = LongPoll::new(move |req| watch_job(client.clone(), url.clone(), req))
                .wait(ms(30))
                .attempt_timeout(ms(150))
                .rate_limit(1_000, ms(1))
                .retry_after(ApiError::scaled_retry_after)
                .hint_bounds(ms(1), ms(50))
                .backoff(backoff())
                .timeout(Duration::from_secs(60))
                .stats(stats)
                .until(|job| job.state == "completed")
                .await
                .unwrap_or_else(|e| panic!("job {id}: {e}"));
            assert_eq!(job.step, steps, "job {id}");
        }
    })
    .await;
    drop(client);
    report("LongPoll", &server, &stats, &outcome, baseline).await;
    assert!(server.counters.total_faults() >= target);
}

#[tokio::test]
async fn sse_delivers_every_event_once_in_order_through_faults() {
    let target = target_faults().div_ceil(3);
    let events = 50;
    let server = faults::spawn(faults::Config {
        seed: 0x5EED_0003,
        rate: 0.6,
        events,
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let stats = Stats::new();
    let baseline = live();
    let outcome = until_faults(&server, target, |id| {
        let (client, stats) = (client.clone(), stats.clone());
        let url = format!("{}/events/{id}", server.base);
        async move {
            let connect = move |last_event_id: Option<String>| {
                let mut request = client.get(&url).header(ACCEPT, "text/event-stream");
                if let Some(last) = last_event_id {
                    request = request.header("last-event-id", last);
                }
                async move {
                    let response = request.send().await?;
                    if !response.status().is_success() {
                        return Err(ApiError::from_status(&response));
                    }
                    Ok(response.bytes_stream().map_err(ApiError::from))
                }
            };
            let mut stream = SseStream::new(connect)
                .reconnect_time(ms(2))
                .idle_timeout(ms(100))
                .attempt_timeout(ms(150))
                .max_event_size(1024)
                .retry_after(ApiError::scaled_retry_after)
                .hint_bounds(ms(1), ms(20))
                .backoff(backoff())
                .timeout(Duration::from_secs(60))
                .stats(stats);
            for n in 1..=events {
                let event = match stream.next().await {
                    Some(Ok(event)) => event,
                    other => panic!("stream {id}, waiting for event {n}: {other:?}"),
                };
                assert_eq!(event.last_event_id(), n.to_string(), "stream {id}");
                assert_eq!(event.event_type(), "tick", "stream {id}");
                assert_eq!(event.data(), faults::sse_data(n), "stream {id}");
                sample_memory();
            }
        }
    })
    .await;
    drop(client);
    report("SseStream", &server, &stats, &outcome, baseline).await;
    println!(
        "SseStream: {} events delivered exactly once, in order, over {} reconnects",
        outcome.completed * events,
        stats.reconnects()
    );
    assert!(server.counters.total_faults() >= target);
    assert!(stats.reconnects() > 0);
}
