//! An expired cursor restarts a long poll instead of ending it, on tokio's
//! paused clock: `LongPoll::expired_if` names the errors that mean it (the
//! `reqwest` helpers: `410 Gone`, etcd's `errorCode 401`), and the poller
//! relists with a fresh first request, yields the current state, and goes
//! on; an expiry that keeps coming backs off instead of spinning.

use crate::common;

use common::{Log, secs};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{LongPoll, Stats};

#[derive(Debug, PartialEq)]
enum Failure {
    /// "The event in the requested index is outdated and cleared."
    Cleared,
}

#[tokio::test(start_paused = true)]
async fn an_expired_cursor_relists_at_once_and_the_watch_goes_on() {
    let log = Log::new();
    let l = log.clone();
    let stats = Stats::new();
    let mut watch = LongPoll::new(move |req: Request<u64>| {
        l.hit();
        async move {
            match req.cursor() {
                // The history starts at 5: index 1 is gone.
                Some(c) if *c < 5 => Err(Failure::Cleared),
                Some(c) => {
                    tokio::time::sleep(secs(10)).await;
                    Ok(Reply::changed(c + 1, c + 1))
                }
                None => Ok(Reply::changed(7, 7)),
            }
        }
    })
    .cursor(1)
    .expired_if(|e| *e == Failure::Cleared)
    .stats(stats.clone());
    let seen: Vec<u64> = (&mut watch).take(3).map(Result::unwrap).collect().await;
    assert_eq!(seen, [7, 8, 9]);
    // The expiry, the relist at once, then held requests.
    assert_eq!(log.secs(), [0, 0, 0, 10]);
    assert_eq!(stats.errors(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cursor_that_keeps_expiring_backs_off_without_ending() {
    // Every cursor is already outdated (a watcher slower than the history).
    let log = Log::new();
    let l = log.clone();
    let watch = LongPoll::new(move |req: Request<u64>| {
        l.hit();
        async move {
            match req.cursor() {
                Some(_) => Err(Failure::Cleared),
                None => Ok(Reply::changed(1u64, 1u64)),
            }
        }
    })
    .expired_if(|e| *e == Failure::Cleared);
    let items = tokio::time::timeout(secs(600), watch.collect::<Vec<_>>()).await;
    assert!(items.is_err(), "the watch never ends: {items:?}");
    // Relisting every time at once would be hundreds of thousands of
    // requests; backing off like quick empty replies (up to 30 s), a few
    // dozen.
    let n = log.count();
    assert!((10..100).contains(&n), "{n} requests in 10 minutes");
}
