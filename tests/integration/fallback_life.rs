//! What `Fallback::unusable_after` takes for a sign of life from a long
//! poll, on tokio's paused clock: a held request within its own limit is
//! one; a request that runs past its limit is not.

use crate::common;

use std::time::Duration;

use common::secs;
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Fallback, LongPoll, Poller, ShortPoll};

/// The transports of `examples/fallback.rs`, as it ships them: long polling
/// first (a quiet resource, each request held for the whole wait, or
/// swallowed when `black_hole`), short polling next, 10 s of silence to
/// give up on one.
fn watch(black_hole: bool) -> Fallback<u64, String> {
    Fallback::new()
        .then("long", move |_: Option<&u64>| {
            LongPoll::new(move |req: Request<u64>| async move {
                if req.cursor().is_none() {
                    return Ok::<_, String>(Reply::changed(1, 1));
                }
                if black_hole {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(req.wait()).await;
                Ok(Reply::unchanged())
            })
            .rate_limit(4, Duration::from_millis(250))
            .boxed_poller()
        })
        .then("short", |_: Option<&u64>| {
            ShortPoll::new(|| async { Ok::<u64, String>(1) })
                .interval(Duration::from_millis(500))
                .boxed_poller()
        })
        .unusable_after(secs(10))
        .retry_better_after(secs(60))
}

#[tokio::test(start_paused = true)]
async fn a_quiet_held_long_poll_is_kept_for_an_hour() {
    let mut watch = watch(false);
    assert_eq!(watch.next().await.unwrap().unwrap(), 1);
    let next = tokio::time::timeout(secs(3600), watch.next()).await;
    assert!(next.is_err(), "{next:?}");
    assert_eq!((watch.active(), watch.switches()), (Some("long"), 0));
}

#[tokio::test(start_paused = true)]
async fn held_requests_that_run_past_their_limit_are_no_sign_of_life() {
    // Every held request is swallowed: the first runs to its per-request
    // limit (25 s + 25/16 s + 5 s), and nothing after it counts.
    let mut watch = watch(true);
    let start = tokio::time::Instant::now();
    assert_eq!(watch.next().await.unwrap().unwrap(), 1);
    tokio::time::timeout(secs(120), async {
        while watch.active() == Some("long") {
            watch.next().await;
        }
    })
    .await
    .unwrap();
    assert!(
        start.elapsed() <= secs(32 + 10 + 10),
        "{:?}",
        start.elapsed()
    );
}

/// Review find: a held request was a sign of life once *any* answer had
/// come, a failure included, so a long poll whose every request fails (a
/// gateway's 504 after 29 s, in front of a dead upstream) kept `Fallback`
/// "alive"; with an event stream first (`examples/fallback.rs`'s order),
/// every `retry_better_after` went back to it and started its failure bound
/// afresh: the dead path was watched forever.
#[tokio::test(start_paused = true)]
async fn a_long_poll_that_only_fails_is_no_sign_of_life() {
    let dead = Fallback::new()
        .then("sse", |_: Option<&u64>| {
            ShortPoll::new(|| async { Err::<u64, _>("502 Bad Gateway".to_owned()) })
                .backoff(pollkit::Backoff::new().give_up_after(secs(60)))
                .boxed_poller()
        })
        .then("long", |_: Option<&u64>| {
            LongPoll::new(|_: Request<u64>| async {
                tokio::time::sleep(secs(29)).await;
                Err::<Reply<u64, u64>, _>("504 Gateway Timeout".to_owned())
            })
            .backoff(pollkit::Backoff::new().give_up_after(secs(300)))
            .boxed_poller()
        })
        .then("short", |_: Option<&u64>| {
            ShortPoll::new(|| async { Err::<u64, _>("502 Bad Gateway".to_owned()) })
                .backoff(pollkit::Backoff::new().give_up_after(secs(60)))
                .boxed_poller()
        })
        .unusable_after(secs(60))
        .retry_better_after(secs(60));
    let end = tokio::time::timeout(secs(6 * 3600), dead.until(|_| true)).await;
    assert!(matches!(end, Ok(Err(_))), "{end:?}");
}
