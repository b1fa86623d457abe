//! Redis stopped and started again under running watches (the 20 s
//! outage scaled to 3 s for CI time): budgets fall back to their local share
//! and hubs to one poller per instance; both recover when Redis returns.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use pollkit::ShortPoll;
use pollkit_redis::{FleetBudget, FleetHub, HubConfig};
use tokio::time::{Instant, sleep};

use common::{RedisServer, change_log};

/// As long as the issue asks: Redis away for 20 s.
const OUTAGE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_keeps_its_local_share_while_redis_is_down_and_recovers() {
    let mut server = RedisServer::start();
    let requests = Arc::new(AtomicU64::new(0));
    let mut budgets = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let conn = pollkit_redis::connect(&server.client()).await.unwrap();
        // 40/s for the fleet; each of the 2 instances keeps 20/s alone.
        let b = FleetBudget::per_second(conn, "t:outage", 40)
            .burst(4)
            .instances(2)
            .retry_every(Duration::from_millis(200));
        budgets.push(b.clone());
        for _ in 0..20 {
            let requests = Arc::clone(&requests);
            let mut poller = ShortPoll::new(move || {
                requests.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, std::io::Error>(()) }
            })
            .interval(Duration::ZERO)
            .admission(b.clone());
            tasks.push(tokio::spawn(async move {
                while poller.next().await.is_some() {}
            }));
        }
    }
    let count = |d: Duration| {
        let requests = Arc::clone(&requests);
        async move {
            let before = requests.load(Ordering::SeqCst);
            sleep(d).await;
            requests.load(Ordering::SeqCst) - before
        }
    };
    let healthy = count(Duration::from_secs(2)).await;
    server.stop();
    let down = count(OUTAGE).await;
    let degraded: Vec<bool> = budgets.iter().map(FleetBudget::is_degraded).collect();
    server.restart();
    let start = Instant::now();
    let recovered = loop {
        if budgets
            .iter()
            .all(|b| !b.is_degraded() && b.stats().recoveries >= 1)
        {
            break Some(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        sleep(Duration::from_millis(20)).await;
    };
    let after = count(Duration::from_secs(2)).await;
    for t in &tasks {
        t.abort();
    }
    eprintln!(
        "healthy {healthy} in 2 s, down {down} in {OUTAGE:?}, after {after} in 2 s; \
         recovered in {recovered:?}; {:?}",
        budgets.iter().map(FleetBudget::stats).collect::<Vec<_>>()
    );
    assert!(degraded.iter().all(|d| *d), "{degraded:?}");
    // Watches go on during the outage, at about the fleet's rate (2 × 20/s).
    // Around each switch the slots already reserved in the other bucket are
    // kept: 40 pollers at 40/s queue up to 1 s ahead, so for up to 1 s both
    // buckets admit (+40), plus both bursts.
    let overlap = 40 + 4 + 4;
    assert!(
        down >= OUTAGE.as_secs() * 20,
        "only {down} requests while Redis was down"
    );
    assert!(
        down <= OUTAGE.as_secs() * 40 + overlap + 10,
        "{down} requests while Redis was down"
    );
    assert!(
        recovered.is_some(),
        "still degraded 10 s after Redis returned"
    );
    assert!(healthy <= 2 * 40 + 4 + 5, "{healthy} requests in 2 s");
    assert!(
        after <= 2 * 40 + overlap + 10,
        "{after} requests in 2 s after recovery"
    );
    assert!(after >= 40, "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_polls_on_every_instance_while_redis_is_down_and_shares_again() {
    let mut server = RedisServer::start();
    let head = Arc::new(AtomicU64::new(0));
    let source = {
        let head = Arc::clone(&head);
        move || head.load(Ordering::SeqCst)
    };
    let config = HubConfig::new()
        .lease(Duration::from_secs(1))
        .timeout(Duration::from_millis(300));
    let mut hubs: Vec<FleetHub<u64>> = Vec::new();
    let mut watches = Vec::new();
    for _ in 0..2 {
        let hub = FleetHub::with_config(&server.client(), "o", config.clone())
            .await
            .unwrap();
        let s = source.clone();
        watches.push(hub.watch("job", move |resume| change_log(s.clone(), resume)));
        hubs.push(hub);
    }
    // Each waiter collects what it gets, in the background.
    let seen: Vec<Arc<std::sync::Mutex<Vec<u64>>>> = (0..2).map(|_| Arc::default()).collect();
    for (mut w, seen) in watches.into_iter().zip(seen.clone()) {
        tokio::spawn(async move {
            while let Some(Ok(n)) = w.next().await {
                seen.lock().unwrap().push(n);
            }
        });
    }
    let bump = |to: u64| {
        let head = Arc::clone(&head);
        async move {
            while head.load(Ordering::SeqCst) < to {
                head.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let stats = |hubs: &[FleetHub<u64>]| hubs.iter().map(FleetHub::stats).collect::<Vec<_>>();
    bump(10).await;
    server.stop();
    // Changes made during the outage reach both instances' waiters.
    let outage = tokio::spawn(bump(10 + 3 * 20));
    sleep(OUTAGE / 2).await;
    let during = stats(&hubs);
    outage.await.unwrap();
    let saw_during: Vec<usize> = seen.iter().map(|s| s.lock().unwrap().len()).collect();
    server.restart();
    let start = Instant::now();
    let shared = loop {
        let s = stats(&hubs);
        if s.iter().map(|s| s.holding).sum::<usize>() == 1
            && s.iter().all(|s| s.local == 0 && !s.degraded)
        {
            break Some(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        sleep(Duration::from_millis(20)).await;
    };
    bump(100).await;
    let end = Instant::now() + Duration::from_secs(5);
    while seen.iter().any(|s| s.lock().unwrap().last() != Some(&100)) && Instant::now() < end {
        sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "during: {during:?}; after: {:?}; shared again in {shared:?}",
        stats(&hubs)
    );
    assert!(
        during.iter().all(|s| s.degraded && s.local == 1),
        "{during:?}"
    );
    assert!(shared.is_some(), "not one holder 10 s after Redis returned");
    for s in &seen {
        let s = s.lock().unwrap();
        // Nothing lost, nothing twice, in order, across both switches.
        assert_eq!(*s, (1..=100).collect::<Vec<_>>());
    }
    assert!(saw_during.iter().all(|n| *n >= 60), "{saw_during:?}");
}
