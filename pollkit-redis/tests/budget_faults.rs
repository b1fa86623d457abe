//! FleetBudget under faults, against a real redis-server: the bucket's key
//! lost while instances hold slots from it, and an instance whose runtime
//! stalls with slots granted.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pollkit::ShortPoll;
use pollkit_redis::FleetBudget;
use tokio::time::Instant;

use common::{RedisServer, busiest};

const RATE: u32 = 50;

type Log = Arc<Mutex<Vec<Instant>>>;

/// `pollers` pollers asking as fast as `budget` lets them, each request's
/// start in `log`; they stop when the returned handles are aborted.
fn spawn_pollers(
    budget: &FleetBudget,
    pollers: usize,
    log: &Log,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..pollers)
        .map(|_| {
            let log = Arc::clone(log);
            let mut poller = ShortPoll::new(move || {
                log.lock().unwrap().push(Instant::now());
                async { Ok::<_, std::io::Error>(()) }
            })
            .interval(Duration::ZERO)
            .admission(budget.clone());
            tokio::spawn(async move { while poller.next().await.is_some() {} })
        })
        .collect()
}

/// The busiest 1 s window among the starts at or after `from`.
fn busiest_since(log: &Log, from: Instant) -> usize {
    let mut starts: Vec<Instant> = log
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= from)
        .collect();
    starts.sort();
    busiest(&starts, Duration::from_secs(1))
}

/// 2 instances × 40 pollers share 50/s, so each instance holds slots up to
/// 1.6 s ahead. The bucket's key is deleted (as `FLUSHALL`, eviction, a
/// failover that loses writes or Redis restarting empty would): the bucket
/// is re-seeded from the furthest slot each instance was granted, so the
/// fleet stays within its rate, and the loss counts as a Redis fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bucket_is_reseeded_from_the_slots_granted() {
    let server = RedisServer::start();
    let log: Log = Arc::default();
    let mut budgets = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let conn = pollkit_redis::connect(&server.client()).await.unwrap();
        let b = FleetBudget::per_second(conn, "t:lost", RATE).timeout(Duration::from_secs(1));
        tasks.extend(spawn_pollers(&b, 40, &log));
        budgets.push(b);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let lost_at = Instant::now();
    let _: i64 = redis::cmd("DEL")
        .arg("t:lost")
        .query_async(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for t in &tasks {
        t.abort();
    }
    let after = busiest_since(&log, lost_at);
    let stats: Vec<_> = budgets.iter().map(FleetBudget::stats).collect();
    eprintln!("busiest 1 s window after the loss: {after}; {stats:?}");
    // rate + burst, and some client lateness on a loaded machine.
    assert!(
        after <= RATE as usize + 1 + 10,
        "busiest 1 s window: {after}"
    );
    assert!(
        stats.iter().any(|s| s.lost >= 1 && s.failures >= 1),
        "the loss is counted as a fault: {stats:?}"
    );
}

/// One of two instances stalls for 2 s (its runtime's only thread blocked,
/// as a SIGSTOP or a starved process would) while it holds slots up to
/// 1.6 s ahead: at wake-up, the slots far in the past are reserved again
/// instead of all being used at once next to the other instance's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_instance_does_not_use_its_overdue_slots_at_once() {
    let server = RedisServer::start();
    let log: Log = Arc::default();
    let conn = pollkit_redis::connect(&server.client()).await.unwrap();
    let healthy = FleetBudget::per_second(conn, "t:paused", RATE).timeout(Duration::from_secs(1));
    let tasks = spawn_pollers(&healthy, 40, &log);
    // The other instance: its own single-threaded runtime, on its own thread.
    let (url, paused_log) = (server.url(), Arc::clone(&log));
    let (pause_tx, pause_rx) = std::sync::mpsc::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let paused = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = redis::Client::open(url).unwrap();
            let conn = pollkit_redis::connect(&client).await.unwrap();
            let b = FleetBudget::per_second(conn, "t:paused", RATE).timeout(Duration::from_secs(1));
            let tasks = spawn_pollers(&b, 40, &paused_log);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                // The stall: nothing on this runtime runs for 2 s.
                std::thread::sleep(Duration::from_secs(2));
                let _ = pause_tx.send(());
            });
            let _ = stop_rx.await;
            for t in &tasks {
                t.abort();
            }
        });
    });
    tokio::task::spawn_blocking(move || pause_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let resumed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(());
    paused.join().unwrap();
    for t in &tasks {
        t.abort();
    }
    let after = busiest_since(&log, resumed - Duration::from_millis(100));
    eprintln!("busiest 1 s window after the stall: {after}");
    assert!(
        after <= RATE as usize + 1 + 10,
        "busiest 1 s window: {after}"
    );
}
