//! Several instances of a service against one local Redis: a fleet-wide
//! budget and a fleet hub, with the figures the README quotes.
//!
//! ```sh
//! redis-server --port 6379 --save '' --appendonly no &
//! cargo run --release -p pollkit-redis --example fleet -- redis://127.0.0.1:6379/
//! ```
//!
//! Each "instance" is a task with its own connections, as separate
//! processes would have (the tests also run separate processes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pollkit::{Admission, Reservation, ShortPoll};
use pollkit_redis::{FleetBudget, FleetHub, HubConfig, Stateless};
use tokio::time::Instant;

const INSTANCES: usize = 3;
const JOBS: usize = 100;

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".into());
    let client = redis::Client::open(url.as_str())?;

    // 1. The cost of a reservation: one EVALSHA round trip.
    let conn = pollkit_redis::connect(&client).await?;
    let budget = FleetBudget::per_second(conn, "example:budget:cost", 1_000_000).burst(1_000_000);
    let mut took = Vec::new();
    for _ in 0..10_000 {
        let start = Instant::now();
        if let Reservation::Pending(answer) = budget.reserve(start, None) {
            answer.await;
        }
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "reservation (1 round trip): p50 {:?}, p99 {:?} over {} ({:?})",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took.len(),
        budget.stats()
    );

    // 2. 3 instances × 100 jobs, 1 s interval, for 10 s: requests made, and
    // the latency of a status from the holder's fetch to a waiter on
    // another instance.
    let requests = Arc::new(AtomicU64::new(0));
    let mut hubs = Vec::new();
    for _ in 0..INSTANCES {
        let config = HubConfig::new().lease(Duration::from_secs(2));
        hubs.push(FleetHub::<(u64, u64)>::with_config(&client, "example", config).await?);
    }
    let latencies: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    let mut tasks = Vec::new();
    for hub in &hubs {
        for job in 0..JOBS {
            let requests = Arc::clone(&requests);
            let mut watch = hub.watch(format!("job-{job}"), move |_| {
                let requests = Arc::clone(&requests);
                Stateless::new(
                    ShortPoll::new(move || {
                        let n = requests.fetch_add(1, Ordering::Relaxed);
                        // The status carries the instant it was fetched.
                        async move { Ok::<_, std::io::Error>((n, micros_now())) }
                    })
                    .interval(Duration::from_secs(1)),
                )
            });
            let latencies = Arc::clone(&latencies);
            tasks.push(tokio::spawn(async move {
                let mut first = true;
                while let Some(Ok((_, at))) = watch.next().await {
                    if !first {
                        let d = micros_now().saturating_sub(at);
                        latencies.lock().unwrap().push(Duration::from_micros(d));
                    }
                    first = false;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = requests.load(Ordering::Relaxed);
    latencies.lock().unwrap().clear();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let made = requests.load(Ordering::Relaxed) - before;
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    println!(
        "hub: {made} requests in {window:?} for {JOBS} jobs watched on {INSTANCES} instances \
         (independent instances: about {}); {} statuses handed out, fetch to waiter p50 {:?}, p99 {:?}",
        JOBS as u64 * INSTANCES as u64 * window.as_secs(),
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    );
    for (i, hub) in hubs.iter().enumerate() {
        println!("instance {i}: {:?}", hub.stats());
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
