//! What a waiter gets under faults, against a real redis-server: every
//! status while the backlog fits `max_len`, in order, never one older than
//! one it already got; the end of a key's poller and what comes after it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use pollkit::{Poller, ShortPoll};
use pollkit_redis::{FleetHub, FleetWatch, HubConfig, Stateless};
use tokio::time::{Instant, sleep, timeout};

use common::proxy::Proxy;
use common::{RedisServer, change_log};

fn config() -> HubConfig {
    HubConfig::new().lease(Duration::from_secs(1))
}

async fn hub<S>(client: &redis::Client, name: &str) -> FleetHub<S>
where
    S: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    FleetHub::with_config(client, name, config()).await.unwrap()
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

/// A shared change counter and a source reading it.
fn head() -> (
    Arc<AtomicU64>,
    impl Fn() -> u64 + Clone + Send + Sync + 'static,
) {
    let head = Arc::new(AtomicU64::new(0));
    let h = Arc::clone(&head);
    (head, move || h.load(Ordering::SeqCst))
}

/// The next status of `watch`, within 5 s.
async fn next(watch: &mut FleetWatch<u64>) -> u64 {
    timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("a status within 5 s")
        .expect("the watch goes on")
        .expect("a status, not an error")
}

/// A waiter that does not poll while 90 changes arrive (an instance busy or
/// paused): all 90 are within `max_len` (100), so it gets every one, in
/// order, when it polls again — not only the last few of a full channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_that_falls_behind_within_max_len_loses_nothing() {
    let server = RedisServer::start();
    let (head, source) = head();
    let holder: FleetHub<u64> = hub(&server.client(), "behind").await;
    let reader: FleetHub<u64> = hub(&server.client(), "behind").await;
    let s = source.clone();
    let mut live = holder.watch("job", move |resume| change_log(s.clone(), resume));
    assert!(eventually(Duration::from_secs(5), || holder.stats().holding == 1).await);
    let s = source.clone();
    let mut asleep_here = holder.watch("job", move |resume| change_log(s.clone(), resume));
    let s = source.clone();
    let mut asleep_there = reader.watch("job", move |resume| change_log(s.clone(), resume));
    head.store(1, Ordering::SeqCst);
    assert_eq!(next(&mut live).await, 1);
    assert_eq!(next(&mut asleep_here).await, 1);
    assert_eq!(next(&mut asleep_there).await, 1);
    // 89 more changes at once: the poller publishes them one by one, fast.
    head.store(90, Ordering::SeqCst);
    for n in 2..=90 {
        assert_eq!(next(&mut live).await, n);
    }
    assert!(eventually(Duration::from_secs(5), || reader.stats().read >= 90).await);
    for watch in [&mut asleep_here, &mut asleep_there] {
        let mut got = Vec::new();
        while got.last() != Some(&90) {
            got.push(next(watch).await);
        }
        assert_eq!(got, (2..=90).collect::<Vec<_>>());
    }
}

/// One instance loses Redis (a proxy cut) while another keeps it: the first
/// polls on its own and hands 4, 5, 6 to its waiter; the other takes the
/// lease over and publishes 4, 5, 6 too. When the first instance reads the
/// stream again, its waiter must not get 4, 5, 6 a second time after 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_never_step_back_after_an_instance_loses_redis_for_a_while() {
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port()).await;
    let (head, source) = head();
    let config = config().timeout(Duration::from_millis(200));
    let cut_off: FleetHub<u64> = FleetHub::with_config(&proxy.client(), "back", config.clone())
        .await
        .unwrap();
    let healthy: FleetHub<u64> = FleetHub::with_config(&server.client(), "back", config)
        .await
        .unwrap();
    let s = source.clone();
    let mut on_cut = cut_off.watch("job", move |resume| change_log(s.clone(), resume));
    assert!(eventually(Duration::from_secs(5), || cut_off.stats().holding == 1).await);
    let s = source.clone();
    let mut on_healthy = healthy.watch("job", move |resume| change_log(s.clone(), resume));
    let mut got = Vec::new();
    for n in 1..=3 {
        head.store(n, Ordering::SeqCst);
        got.push(next(&mut on_cut).await);
        assert_eq!(next(&mut on_healthy).await, n);
    }
    proxy.cut();
    // The lease expires; the healthy instance takes the key over.
    assert!(eventually(Duration::from_secs(10), || healthy.stats().holding == 1).await);
    assert!(cut_off.stats().degraded);
    for n in 4..=6 {
        head.store(n, Ordering::SeqCst);
        got.push(next(&mut on_cut).await);
        assert_eq!(next(&mut on_healthy).await, n);
    }
    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = cut_off.stats();
            !s.degraded && s.local == 0
        })
        .await
    );
    // Give the reader time to read the stream again, then one more change.
    sleep(Duration::from_millis(500)).await;
    head.store(7, Ordering::SeqCst);
    while got.last() != Some(&7) {
        got.push(next(&mut on_cut).await);
    }
    assert_eq!(got, (1..=7).collect::<Vec<_>>(), "in order, none twice");
}

/// A poller that ends (here after 3 attempts) ends the watches waiting for
/// it on every instance; a watch made afterwards, on any instance, starts a
/// new poller (as `pollkit::Hub` does) instead of getting the old end for
/// the stream's whole retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_after_the_end_starts_a_new_poller() {
    let server = RedisServer::start();
    let a: FleetHub<String> = hub(&server.client(), "again").await;
    let b: FleetHub<String> = hub(&server.client(), "again").await;
    let made = Arc::new(AtomicU64::new(0));
    let make = {
        let made = Arc::clone(&made);
        move |_| {
            let round = made.fetch_add(1, Ordering::SeqCst) + 1;
            Stateless::new(
                ShortPoll::new(
                    move || async move { Ok::<_, std::io::Error>(format!("round {round}")) },
                )
                .interval(Duration::from_millis(50))
                .max_attempts(3),
            )
        }
    };
    let (ra, rb) = futures::join!(
        a.watch("job", make.clone()).until(|s| s == "done"),
        b.watch("job", make.clone()).until(|s| s == "done")
    );
    for r in [ra, rb] {
        assert!(
            matches!(r, Err(pollkit::Error::Exhausted { attempts: 3, .. })),
            "{r:?}"
        );
    }
    assert_eq!(made.load(Ordering::SeqCst), 1);
    for (hub, name) in [(&b, "b"), (&a, "a")] {
        let before = made.load(Ordering::SeqCst);
        let mut late = hub.watch("job", make.clone());
        let first = timeout(Duration::from_secs(5), late.next())
            .await
            .expect("a status within 5 s")
            .expect("the new watch goes on");
        assert!(first.is_ok(), "a watch on {name} after the end: {first:?}");
        assert_eq!(
            made.load(Ordering::SeqCst),
            before + 1,
            "a new poller on {name}"
        );
        // It runs to its own end.
        let end = timeout(Duration::from_secs(5), late.until(|s| s == "done"))
            .await
            .expect("the new poller ends");
        assert!(
            matches!(end, Err(pollkit::Error::Exhausted { .. })),
            "{end:?}"
        );
    }
}

/// The key's latest entry is one this crate cannot read (someone else's, or
/// one a release with another status type wrote): a late joiner gets the
/// newest status it can read and goes on from the latest entry, instead of
/// replaying the stream's whole history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_latest_entry_does_not_replay_the_history() {
    let server = RedisServer::start();
    let (head, source) = head();
    let holder: FleetHub<u64> = hub(&server.client(), "foreign").await;
    let s = source.clone();
    let mut on_holder = holder.watch("job", move |resume| change_log(s.clone(), resume));
    head.store(30, Ordering::SeqCst);
    while next(&mut on_holder).await != 30 {}
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: String = redis::cmd("XADD")
        .arg("pollkit:hub:foreign:stream:job")
        .arg("*")
        .arg("s")
        .arg("not json")
        .query_async(&mut conn)
        .await
        .unwrap();
    let late_hub: FleetHub<u64> = hub(&server.client(), "foreign").await;
    let s = source.clone();
    let mut late = late_hub.watch("job", move |resume| change_log(s.clone(), resume));
    assert_eq!(next(&mut late).await, 30, "the newest status it can read");
    head.store(31, Ordering::SeqCst);
    assert_eq!(next(&mut late).await, 31);
    assert!(late_hub.stats().read <= 3, "{:?}", late_hub.stats());
}

/// A key whose status does not change for longer than `retain` while its
/// lease is held keeps its stream: a late joiner gets the latest status at
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_key_keeps_its_stream_while_its_lease_is_held() {
    let server = RedisServer::start();
    let (head, source) = head();
    let config = config().retain(Duration::from_secs(1));
    let holder: FleetHub<u64> = FleetHub::with_config(&server.client(), "quiet", config.clone())
        .await
        .unwrap();
    let s = source.clone();
    let mut on_holder = holder.watch("job", move |resume| change_log(s.clone(), resume));
    head.store(1, Ordering::SeqCst);
    assert_eq!(next(&mut on_holder).await, 1);
    // Quiet for 2.5 retention times.
    sleep(Duration::from_millis(2_500)).await;
    let late_hub: FleetHub<u64> = FleetHub::with_config(&server.client(), "quiet", config)
        .await
        .unwrap();
    let s = source.clone();
    let mut late = late_hub.watch("job", move |resume| change_log(s.clone(), resume));
    let latest = timeout(Duration::from_secs(1), late.next()).await;
    assert!(
        matches!(latest, Ok(Some(Ok(1)))),
        "the latest status at once: {latest:?}"
    );
}

/// A status larger than `max_status` (as JSON) is not published: the key's
/// watch ends with an error that says so, and the other keys go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_over_max_status_ends_the_watch_with_a_clear_error() {
    let server = RedisServer::start();
    let config = config().max_status(64 * 1024);
    let hub: FleetHub<String> = FleetHub::with_config(&server.client(), "big", config)
        .await
        .unwrap();
    let sized = |len: usize| {
        move |_| {
            Stateless::new(
                ShortPoll::new(move || async move { Ok::<_, std::io::Error>("x".repeat(len)) })
                    .interval(Duration::from_millis(100)),
            )
        }
    };
    let mut small = hub.watch("small", sized(10));
    let mut big = hub.watch("big", sized(100 * 1024));
    let got = timeout(Duration::from_secs(5), big.next())
        .await
        .expect("an answer within 5 s");
    match got {
        Some(Err(pollkit::Error::Failed(e))) => {
            assert!(e.message().contains("max_status"), "{e}");
        }
        other => panic!(
            "expected a max_status error, got {:?}",
            other.map(|r| r.map(|s| s.len()))
        ),
    }
    for _ in 0..3 {
        let s = timeout(Duration::from_secs(5), small.next()).await.unwrap();
        assert_eq!(s.unwrap().unwrap().len(), 10);
    }
}

/// Redis comes back from a snapshot older than the statuses the waiters
/// got (as after a `DEL` of the stream, or a restart empty, when a new
/// holder starts afresh): the stream's sequence goes on from the snapshot's
/// latest entry, below where the waiters stand. The new holder's statuses
/// are news all the same: every waiter gets them, instead of dropping them
/// as seen until the sequence catches up (for a poller that publishes only
/// changes, maybe never: a job's "done" lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_watch_keeps_receiving_new_statuses_after_redis_loses_its_stream() {
    let server = RedisServer::start();
    // A job's state, read by a short poll that yields its changes: the
    // statuses are not their places in the sequence.
    let state = Arc::new(AtomicU64::new(10));
    let make = {
        let state = Arc::clone(&state);
        move |_| {
            let state = Arc::clone(&state);
            ShortPoll::new(move || {
                let now = state.load(Ordering::SeqCst);
                async move { Ok::<_, std::io::Error>(now) }
            })
            .interval(Duration::from_millis(50))
            .changes()
        }
    };
    let holder: FleetHub<u64> = hub(&server.client(), "lost").await;
    let reader: FleetHub<u64> = hub(&server.client(), "lost").await;
    let mut on_holder = holder.watch("job", make.clone());
    assert!(eventually(Duration::from_secs(5), || holder.stats().holding == 1).await);
    let mut on_reader = reader.watch("job", make.clone());
    assert_eq!(next(&mut on_holder).await, 10);
    assert_eq!(next(&mut on_reader).await, 10);
    state.store(20, Ordering::SeqCst);
    assert_eq!(next(&mut on_holder).await, 20);
    assert_eq!(next(&mut on_reader).await, 20);
    // A snapshot at the second status; three more after it.
    server.save();
    for v in [30, 40, 50] {
        state.store(v, Ordering::SeqCst);
        assert_eq!(next(&mut on_holder).await, v);
        assert_eq!(next(&mut on_reader).await, v);
    }
    // Whichever instance takes the key resumes from the second status.
    let _server = back_from_the_snapshot(server, [&holder, &reader]).await;
    // The job is done: every waiter gets it.
    state.store(60, Ordering::SeqCst);
    for (name, watch) in [("holder", &mut on_holder), ("reader", &mut on_reader)] {
        let mut got = Vec::new();
        while got.last() != Some(&60) {
            match timeout(Duration::from_secs(5), watch.next()).await {
                Ok(Some(Ok(v))) => got.push(v),
                other => panic!(
                    "the waiter on the {name} got {got:?} and then, instead of 60: {other:?}"
                ),
            }
        }
        // Nothing before it: the new holder resumed from 20 and published
        // the state it found, 50, which is no news here.
        assert_eq!(got, [60], "the waiter on the {name}");
    }
}

/// The same after a `DEL` of the key's stream, with a new holder that never
/// saw the key (a new instance): its sequence starts again at 1, with the
/// state it finds. The waiter on an instance that had 5 statuses gets its
/// news (not the state it already had again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_watch_keeps_receiving_new_statuses_from_a_new_holder_after_a_del_of_its_stream()
{
    let server = RedisServer::start();
    let proxy = Proxy::start(server.port()).await;
    let state = Arc::new(AtomicU64::new(10));
    let make = {
        let state = Arc::clone(&state);
        move |_| {
            let state = Arc::clone(&state);
            ShortPoll::new(move || {
                let now = state.load(Ordering::SeqCst);
                async move { Ok::<_, std::io::Error>(now) }
            })
            .interval(Duration::from_millis(50))
            .changes()
        }
    };
    let config = config().timeout(Duration::from_millis(200));
    let holder: FleetHub<u64> = hub(&server.client(), "deleted").await;
    let behind_proxy: FleetHub<u64> = FleetHub::with_config(&proxy.client(), "deleted", config)
        .await
        .unwrap();
    let mut on_holder = holder.watch("job", make.clone());
    assert!(eventually(Duration::from_secs(5), || holder.stats().holding == 1).await);
    let mut watch = behind_proxy.watch("job", make.clone());
    for v in [10, 20, 30, 40, 50] {
        state.store(v, Ordering::SeqCst);
        assert_eq!(next(&mut on_holder).await, v);
        assert_eq!(next(&mut watch).await, v);
    }
    // The stream is deleted; the holder leaves while the other instance
    // cannot reach Redis (so that a new instance takes the key).
    proxy.cut();
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg("pollkit:hub:deleted:stream:job")
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(on_holder);
    drop(holder);
    let new: FleetHub<u64> = hub(&server.client(), "deleted").await;
    let mut on_new = new.watch("job", make.clone());
    assert_eq!(next(&mut on_new).await, 50, "the new holder starts afresh");
    assert_eq!(new.stats().holding, 1);
    proxy.restore();
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = behind_proxy.stats();
            !s.degraded && s.local == 0
        })
        .await
    );
    sleep(Duration::from_millis(500)).await;
    state.store(60, Ordering::SeqCst);
    assert_eq!(next(&mut on_new).await, 60);
    let got = timeout(Duration::from_secs(5), watch.next()).await;
    assert!(
        matches!(got, Ok(Some(Ok(60)))),
        "the waiter that had 5 statuses gets 60: {got:?}"
    );
}

/// Stops Redis, restarts it from its snapshot once the leases in it have
/// expired (1.5 s: the lease is 1 s), and waits until one of `hubs` holds
/// the key again and none polls on its own.
async fn back_from_the_snapshot(mut server: RedisServer, hubs: [&FleetHub<u64>; 2]) -> RedisServer {
    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        std::thread::sleep(Duration::from_millis(1_500));
        server.restart();
        server.forget();
        server
    })
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            let stats = hubs.map(FleetHub::stats);
            stats.iter().all(|s| !s.degraded && s.local == 0)
                && stats.iter().map(|s| s.holding).sum::<usize>() == 1
        })
        .await,
        "one holder again: {:?}",
        hubs.map(FleetHub::stats)
    );
    server
}

/// The other side of the test above: a long poll resumes from the older
/// checkpoint the snapshot kept and yields again the changes Redis lost
/// (3, 4, 5, which every waiter got). They are no news: every waiter gets
/// 1..=6 once each, never `…5, 3, 4, 5, 6`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_never_step_back_when_a_new_holder_replays_what_redis_lost() {
    let server = RedisServer::start();
    let (head, source) = head();
    let holder: FleetHub<u64> = hub(&server.client(), "replay").await;
    let reader: FleetHub<u64> = hub(&server.client(), "replay").await;
    let s = source.clone();
    let mut on_holder = holder.watch("job", move |resume| change_log(s.clone(), resume));
    assert!(eventually(Duration::from_secs(5), || holder.stats().holding == 1).await);
    let s = source.clone();
    let mut on_reader = reader.watch("job", move |resume| change_log(s.clone(), resume));
    let mut got = [Vec::new(), Vec::new()];
    for n in 1..=5 {
        head.store(n, Ordering::SeqCst);
        got[0].push(next(&mut on_holder).await);
        got[1].push(next(&mut on_reader).await);
        if n == 2 {
            server.save();
        }
    }
    let _server = back_from_the_snapshot(server, [&holder, &reader]).await;
    head.store(6, Ordering::SeqCst);
    for (got, watch) in got.iter_mut().zip([&mut on_holder, &mut on_reader]) {
        while got.last() != Some(&6) {
            got.push(next(watch).await);
        }
    }
    for got in got {
        assert_eq!(got, (1..=6).collect::<Vec<_>>(), "in order, none twice");
    }
}
