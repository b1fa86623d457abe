//! The loops `benches/overhead.rs` times and `examples/per_poll.rs` counts:
//! each makes `polls` requests with a fetch that is ready at once, so what is
//! left to measure is the poller (or the hand-written loop) itself.

use std::future::{Ready, ready};
use std::io;
use std::time::Duration;

use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Jitter, LongPoll, ShortPoll};

/// The wait a `LongPoll` asks for by default; it sets its per-request timeout
/// to `wait + wait / 16 + 5 s`. The hand-written timeout loop uses the same.
pub const LONG_WAIT: Duration = Duration::from_secs(30);
pub const LONG_LIMIT: Duration = Duration::from_millis(30_000 + 30_000 / 16 + 5_000);

/// The fetch every short-poll variant calls: always ready, returns a counter.
pub fn counter() -> impl FnMut() -> Ready<Result<u64, io::Error>> {
    let mut n = 0u64;
    move || {
        n += 1;
        ready(Ok(n))
    }
}

/// The long-poll fetch: always ready, always a change, the next cursor.
pub fn long_fetch(cursor: Option<u64>) -> Ready<Result<Reply<u64, u64>, io::Error>> {
    let next = cursor.unwrap_or(0) + 1;
    ready(Ok(Reply::changed(next, next)))
}

/// `ShortPoll`: `polls` items, so `polls` fetch calls and `polls - 1` awaited timer
/// waits (the timer is reset after the last item too, but never awaited).
pub async fn short_pollkit(interval: Duration, polls: u64) -> u64 {
    let poller = ShortPoll::new(counter()).interval(interval);
    let mut polls = poller.take(polls as usize);
    let mut sum = 0;
    while let Some(item) = polls.next().await {
        sum += item.expect("the fetch never fails");
    }
    sum
}

/// Hand-written: fetch, then `tokio::time::sleep` (a new `Sleep` each time)
/// between requests: `polls` fetch calls and `polls - 1` sleeps.
pub async fn short_hand_sleep(interval: Duration, polls: u64) -> u64 {
    let mut fetch = counter();
    let mut sum = 0;
    for i in 0..polls {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        sum += fetch().await.expect("the fetch never fails");
    }
    sum
}

/// Hand-written, zero interval: fetch, then `tokio::task::yield_now` between
/// requests (as `ShortPoll` yields once when no timer is due): 10,000 fetch
/// calls and `polls - 1` yields.
pub async fn short_hand_yield(polls: u64) -> u64 {
    let mut fetch = counter();
    let mut sum = 0;
    for i in 0..polls {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        sum += fetch().await.expect("the fetch never fails");
    }
    sum
}

/// `LongPoll`, every reply a change, no rate limit (a zero period means none)
/// and no jitter. Per poll it clones the cursor into a `Request`, computes its
/// per-request time limit (the wait + wait/16 + 5 s; the timer is armed, and
/// the clock read for it, only if the request has to wait, which a ready fetch
/// never does) and, the next request being due at once, yields to the runtime
/// once: `polls` fetch calls and `polls - 1` yields.
pub async fn long_pollkit(polls: u64) -> u64 {
    let poller = LongPoll::new(|req: Request<u64>| long_fetch(req.cursor().copied()))
        .wait(LONG_WAIT)
        .rate_limit(u32::MAX, Duration::ZERO)
        .jitter(Jitter::None);
    let mut polls = poller.take(polls as usize);
    let mut sum = 0;
    while let Some(item) = polls.next().await {
        sum += item.expect("the fetch never fails");
    }
    sum
}

/// Hand-written long-poll loop: thread the cursor, yield once between
/// requests (as `LongPoll` does): `polls` fetch calls and `polls - 1` yields. No
/// per-request timeout, no rate limiter.
pub async fn long_hand(polls: u64) -> u64 {
    let mut cursor = None;
    let mut sum = 0;
    for i in 0..polls {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        let reply = long_fetch(cursor).await.expect("the fetch never fails");
        if let Reply::Changed {
            status, cursor: c, ..
        } = reply
        {
            sum += status;
            cursor = Some(c);
        }
    }
    sum
}

/// As [`long_hand`], plus the per-request timeout `LongPoll` applies, with
/// `tokio::time::timeout` (which reads the clock and builds a `Sleep` per
/// request, but only registers the timer if the request is pending; here it
/// never is).
pub async fn long_hand_timeout(polls: u64) -> u64 {
    let mut cursor = None;
    let mut sum = 0;
    for i in 0..polls {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        let reply = tokio::time::timeout(LONG_LIMIT, long_fetch(cursor))
            .await
            .expect("the fetch is ready at once")
            .expect("the fetch never fails");
        if let Reply::Changed {
            status, cursor: c, ..
        } = reply
        {
            sum += status;
            cursor = Some(c);
        }
    }
    sum
}
