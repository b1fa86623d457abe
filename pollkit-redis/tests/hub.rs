//! FleetHub against a real redis-server, several instances in one process
//! (each with its own connections): one poller per key across instances,
//! late joiners, handover when the holder's waiters leave.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use pollkit::{Poller, ShortPoll};
use pollkit_redis::{FleetHub, HubConfig, Stateless};
use tokio::time::{Instant, sleep, timeout};

use common::{RedisServer, change_log};

fn config() -> HubConfig {
    HubConfig::new().lease(Duration::from_secs(1))
}

async fn hub<S>(server: &RedisServer, name: &str) -> FleetHub<S>
where
    S: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    FleetHub::with_config(&server.client(), name, config())
        .await
        .unwrap()
}

/// Waits until `f` holds, up to `limit`.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_every_instance_see_every_change_once_and_late_joiners_the_latest() {
    let server = RedisServer::start();
    let head = Arc::new(AtomicU64::new(0));
    let hubs: Vec<FleetHub<u64>> = vec![hub(&server, "a").await, hub(&server, "a").await];
    let source = {
        let head = Arc::clone(&head);
        move || head.load(Ordering::SeqCst)
    };
    let watch = |hub: &FleetHub<u64>| {
        let source = source.clone();
        hub.watch("job", move |resume| change_log(source.clone(), resume))
    };
    let mut first = watch(&hubs[0]);
    let mut second = watch(&hubs[1]);
    for n in 1..=20 {
        head.store(n, Ordering::SeqCst);
        sleep(Duration::from_millis(20)).await;
    }
    let mut got = (Vec::new(), Vec::new());
    while got.0.len() < 20 {
        got.0.push(
            timeout(Duration::from_secs(5), first.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    while got.1.len() < 20 {
        got.1.push(
            timeout(Duration::from_secs(5), second.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    let want: Vec<u64> = (1..=20).collect();
    assert_eq!(got.0, want);
    assert_eq!(got.1, want);
    // One holder for the key across the two instances.
    let holding: usize = hubs.iter().map(|h| h.stats().holding).sum();
    assert_eq!(holding, 1);

    // A late joiner on a third instance gets the latest at once...
    let late_hub: FleetHub<u64> = hub(&server, "a").await;
    let mut late = watch(&late_hub);
    let latest = timeout(Duration::from_secs(2), late.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(latest, 20);
    // ...and every change after it.
    head.store(21, Ordering::SeqCst);
    let next = timeout(Duration::from_secs(5), late.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next, 21);
    assert_eq!(
        timeout(Duration::from_secs(5), first.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        21
    );
}

/// 3 instances × 100 jobs, a 500 ms interval: one request per job per
/// interval in all (independent instances would make three).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_make_one_request_per_job_per_interval() {
    let server = RedisServer::start();
    let requests = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_millis(500);
    let mut hubs = Vec::new();
    for _ in 0..3 {
        hubs.push(hub::<u64>(&server, "jobs").await);
    }
    let mut watches = Vec::new();
    for hub in &hubs {
        for job in 0..100 {
            let requests = Arc::clone(&requests);
            watches.push(hub.watch(format!("job-{job}"), move |_| {
                let requests = Arc::clone(&requests);
                ShortPoll::new(move || {
                    let n = requests.fetch_add(1, Ordering::SeqCst);
                    async move { Ok::<_, std::io::Error>(n) }
                })
                .interval(interval)
            }));
        }
    }
    // Let every key find its holder, then count over 4 s.
    let settled = eventually(Duration::from_secs(10), || {
        hubs.iter().map(|h| h.stats().holding).sum::<usize>() == 100
    })
    .await;
    assert!(
        settled,
        "{:?}",
        hubs.iter().map(FleetHub::stats).collect::<Vec<_>>()
    );
    let before = requests.load(Ordering::SeqCst);
    let window = Duration::from_secs(4);
    sleep(window).await;
    let made = requests.load(Ordering::SeqCst) - before;
    let one_each = 100 * (window.as_millis() / interval.as_millis()) as u64;
    eprintln!(
        "{made} requests in {window:?} for 100 jobs on 3 instances (one per job per interval: {one_each}; independent: {})",
        3 * one_each
    );
    // Generous: a loaded machine delays some requests, a handful of keys
    // may change hands; three pollers per job would make 3×.
    assert!(
        made <= one_each * 13 / 10,
        "{made} requests, expected about {one_each}"
    );
    assert!(
        made >= one_each / 2,
        "{made} requests, expected about {one_each}"
    );
    // Every waiter gets statuses.
    for w in watches.iter_mut().step_by(37) {
        assert!(
            timeout(Duration::from_secs(3), w.next())
                .await
                .unwrap()
                .unwrap()
                .is_ok()
        );
    }
}

/// The holder's waiters leave: another instance with waiters takes over at
/// once (it gave the lease up) and resumes from the last checkpoint: no
/// change lost, none twice. The pollers are mapped (`try_map_status`, as a
/// decoding step would be): the checkpoint is still the long poll's cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_when_the_holders_waiters_leave() {
    let server = RedisServer::start();
    let head = Arc::new(AtomicU64::new(0));
    let a: FleetHub<u64> = hub(&server, "h").await;
    let b: FleetHub<u64> = hub(&server, "h").await;
    let source = {
        let head = Arc::clone(&head);
        move || head.load(Ordering::SeqCst)
    };
    let s = source.clone();
    let mut on_a = a.watch("job", move |resume| {
        change_log(s.clone(), resume).try_map_status(Ok)
    });
    // A holds the key before B joins.
    assert!(eventually(Duration::from_secs(5), || a.stats().holding == 1).await);
    let s = source.clone();
    let mut on_b = b.watch("job", move |resume| {
        change_log(s.clone(), resume).try_map_status(Ok)
    });
    let mut seen_b = Vec::new();
    for n in 1..=5 {
        head.store(n, Ordering::SeqCst);
        assert_eq!(on_a.next().await.unwrap().unwrap(), n);
    }
    drop(on_a);
    let left = Instant::now();
    for n in 6..=10 {
        head.store(n, Ordering::SeqCst);
        sleep(Duration::from_millis(30)).await;
    }
    while seen_b.last() != Some(&10) {
        let next = timeout(Duration::from_secs(5), on_b.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen_b.push(next);
    }
    eprintln!("taken over and caught up in {:?}", left.elapsed());
    assert_eq!(seen_b, (1..=10).collect::<Vec<_>>());
    assert_eq!(b.stats().holding, 1);
    assert_eq!(a.stats().keys, 0);
}

/// A terminal error reaches the waiters of every instance with its variant;
/// a watch made after it starts a new poller (which ends the same way here;
/// `delivery::a_watch_after_the_end_starts_a_new_poller` counts them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_reaches_every_instance() {
    let server = RedisServer::start();
    let a: FleetHub<String> = hub(&server, "e").await;
    let b: FleetHub<String> = hub(&server, "e").await;
    let make = |_| {
        Stateless::new(
            ShortPoll::new(|| async { Ok::<_, std::io::Error>("running".to_string()) })
                .interval(Duration::from_millis(50))
                .max_attempts(3),
        )
    };
    let on_a = a.watch("job", make);
    let on_b = b.watch("job", make);
    let (ra, rb) = futures::join!(on_a.until(|s| s == "done"), on_b.until(|s| s == "done"));
    for r in [ra, rb] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, pollkit::Error::Exhausted { attempts: 3, .. }),
            "{e}"
        );
    }
    let late = b.watch("job", make);
    let r = timeout(Duration::from_secs(2), late.until(|s| s == "done"))
        .await
        .unwrap();
    assert!(matches!(r, Err(pollkit::Error::Exhausted { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_cannot_be_read_is_skipped_not_read_forever() {
    let server = RedisServer::start();
    let head = Arc::new(AtomicU64::new(1));
    let hub: FleetHub<u64> = hub(&server, "junk").await;
    let source = {
        let head = Arc::clone(&head);
        move || head.load(Ordering::SeqCst)
    };
    let mut watch = hub.watch("job", move |resume| change_log(source.clone(), resume));
    let first = timeout(Duration::from_secs(5), watch.next()).await.unwrap();
    assert_eq!(first.unwrap().unwrap(), 1);
    // Someone else's entry (or one a newer release wrote) on the key's stream.
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg("pollkit:hub:junk:stream:job")
        .arg("*")
        .arg("something")
        .arg("else")
        .query_async(&mut conn)
        .await
        .unwrap();
    let before = hub.stats().read;
    sleep(Duration::from_secs(1)).await;
    let read = hub.stats().read - before;
    assert!(read < 20, "{read} entries read in a second: a busy loop");
    head.store(2, Ordering::SeqCst);
    let next = timeout(Duration::from_secs(5), watch.next()).await.unwrap();
    assert_eq!(next.unwrap().unwrap(), 2, "the watch goes on");
}
