//! 10,000 keys watched on every one of 3 instances, against one local
//! Redis: the figures the README quotes at scale.
//!
//! ```sh
//! redis-server --port 6390 --save '' --appendonly no &
//! cargo run --release -p pollkit-redis --example fleet_scale -- redis://127.0.0.1:6390/
//! ```
//!
//! Each "instance" is a `FleetHub` with its own connections in this process,
//! as separate processes would have. Of the keys, `BUSY` change every
//! second (their status is the time it was fetched, so a waiter on another
//! instance measures the status's latency end to end); the others are quiet
//! (one status, then nothing). While the fleet runs, a `FleetBudget` in the
//! same process reserves `RESERVATIONS_PER_SECOND` slots a second and times
//! each round trip. Redis's CPU comes from `INFO cpu`, its memory from
//! `INFO memory` (after `FLUSHALL`: use a Redis of its own).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pollkit::{Admission, Reservation, ShortPoll};
use pollkit_redis::{FleetBudget, FleetHub, HubConfig, Stateless};
use tokio::time::Instant;

const INSTANCES: usize = 3;
const KEYS: usize = 10_000;
const BUSY: usize = 100;
const RESERVATIONS_PER_SECOND: u64 = 100;
const MEASURE: Duration = Duration::from_secs(30);

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// A field of `INFO section`, as a number.
async fn info(conn: &mut redis::aio::MultiplexedConnection, section: &str, field: &str) -> f64 {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    info(conn, "cpu", "used_cpu_sys").await + info(conn, "cpu", "used_cpu_user").await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6390/".into());
    let client = redis::Client::open(url.as_str())?;
    let mut admin = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut admin).await?;
    let memory_before = info(&mut admin, "memory", "used_memory").await;

    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hubs = Vec::new();
    let mut watches = 0;
    let setup = Instant::now();
    for instance in 0..INSTANCES {
        let hub: FleetHub<u64> = FleetHub::with_config(&client, "scale", HubConfig::new()).await?;
        for key in 0..KEYS {
            let busy = key < BUSY;
            let mut watch = hub.watch(format!("job-{key}"), move |_| {
                let interval = if busy {
                    Duration::from_secs(1)
                } else {
                    Duration::from_secs(3600)
                };
                Stateless::new(
                    ShortPoll::new(move || async move {
                        Ok::<_, std::io::Error>(if busy { micros_now() } else { 0 })
                    })
                    .interval(interval),
                )
            });
            watches += 1;
            if busy {
                let (latencies, measuring) = (Arc::clone(&latencies), Arc::clone(&measuring));
                tokio::spawn(async move {
                    while let Some(Ok(fetched)) = watch.next().await {
                        if measuring.load(std::sync::atomic::Ordering::Relaxed) {
                            let took = micros_now().saturating_sub(fetched);
                            latencies.lock().unwrap().push(Duration::from_micros(took));
                        }
                    }
                });
            } else {
                tokio::spawn(async move { while watch.next().await.is_some() {} });
            }
        }
        eprintln!("instance {instance}: {KEYS} watches");
        hubs.push(hub);
    }
    // Every key held by one instance and its first status published.
    loop {
        let held: usize = hubs.iter().map(|h| h.stats().holding).sum();
        let published: u64 = hubs.iter().map(|h| h.stats().published).sum();
        if held == KEYS && published >= KEYS as u64 {
            break;
        }
        if setup.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "not settled after 120 s: {:?}",
                hubs.iter().map(FleetHub::stats).collect::<Vec<_>>()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{watches} watches on {INSTANCES} instances settled in {:?}",
        setup.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let memory_after = info(&mut admin, "memory", "used_memory").await;

    // Measure: Redis CPU, reservations, status latency.
    let budget = FleetBudget::per_second(
        pollkit_redis::connect(&client).await?,
        "scale:budget",
        1_000_000,
    )
    .burst(1_000_000);
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut admin)
        .await?;
    let cpu_before = redis_cpu(&mut admin).await;
    measuring.store(true, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let mut reservations = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / RESERVATIONS_PER_SECOND as u32);
    while started.elapsed() < MEASURE {
        tick.tick().await;
        let asked = Instant::now();
        if let Reservation::Pending(answer) = budget.reserve(asked, None) {
            answer.await;
        }
        reservations.push(asked.elapsed());
    }
    let elapsed = started.elapsed();
    measuring.store(false, std::sync::atomic::Ordering::Relaxed);
    let cpu = redis_cpu(&mut admin).await - cpu_before;
    reservations.sort();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();

    println!(
        "{KEYS} keys ({BUSY} changing every second), {INSTANCES} instances, {watches} watches"
    );
    println!(
        "Redis CPU: {:.1} % of one core ({cpu:.2} s over {:.0} s)",
        100.0 * cpu / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "Redis memory: {:.0} bytes per key ({:.1} MB for {KEYS} keys)",
        (memory_after - memory_before) / KEYS as f64,
        (memory_after - memory_before) / 1e6
    );
    println!(
        "reservation: p50 {:?}, p99 {:?}, max {:?} over {}",
        percentile(&reservations, 0.5),
        percentile(&reservations, 0.99),
        reservations.last().copied().unwrap_or_default(),
        reservations.len()
    );
    println!(
        "status latency (fetched on the holder -> waiter on any instance): p50 {:?}, p99 {:?} over {}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len()
    );
    // Where Redis's time went (INFO commandstats), the top five.
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut admin)
        .await?;
    let mut by_command: Vec<(u64, String)> = stats
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let usec = rest.split(',').find_map(|f| f.strip_prefix("usec="))?;
            Some((usec.parse().ok()?, name.to_string()))
        })
        .collect();
    by_command.sort_by(|a, b| b.cmp(a));
    let top: Vec<String> = by_command
        .iter()
        .take(5)
        .map(|(usec, name)| {
            format!(
                "{name} {:.0} ms/s",
                *usec as f64 / 1e3 / elapsed.as_secs_f64()
            )
        })
        .collect();
    println!("Redis time by command: {}", top.join(", "));
    println!("{:?}", hubs.iter().map(FleetHub::stats).collect::<Vec<_>>());
    Ok(())
}
