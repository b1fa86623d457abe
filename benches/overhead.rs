//! Per-poll CPU overhead of pollkit beside the loops it replaces.
//!
//! Every benchmark makes 10,000 requests with a fetch that is ready at once
//! (`std::future::ready`), so what is left to measure is the poller itself:
//! scheduling, timers, yields and the runtime work they cause. Criterion
//! reports the time per 10,000 polls and, through `Throughput::Elements`, the
//! time per poll.
//!
//! All of it runs on a current-thread Tokio runtime whose clock is PAUSED
//! (`start_paused(true)`): when the runtime has nothing ready to run it jumps
//! the clock to the next timer instead of waiting for it. A 1 ms sleep then
//! costs only the CPU to register, fire and wake its timer, never the wait
//! itself. On a real clock the figure would be wall time dominated by waiting
//! (and Tokio rounds every sleep up to its 1 ms tick), which says nothing about
//! overhead. The runtime is built once per benchmark function and reused by
//! every iteration (`to_async(&rt)` runs each batch of iterations in one
//! `block_on`), so building it is not measured. The virtual clock keeps
//! running from one iteration to the next; only CPU time is measured.
//!
//! Note that the paused clock is not free: with `tokio/test-util` (a
//! dev-dependency, so unified into every build of the bench) and the clock
//! paused, each `tokio::time::Instant::now()` takes the runtime handle from a
//! thread local and locks the clock's mutex. Code that reads the clock more
//! often pays more here than it would on a real clock.
//!
//! Groups:
//! - `short_1ms`: `ShortPoll` at a 1 ms interval, a hand-written
//!   fetch-then-sleep loop, and backon's retry loop with a constant 1 ms delay:
//!   each makes 10,000 fetch calls and awaits 9,999 sleeps of 1 ms.
//! - `long_changed`: `LongPoll` with a fetch that always reports a change and
//!   the rate limiter off, beside hand-written loops that thread the cursor and
//!   yield once per request as `LongPoll` does.
//! - `short_zero_interval`: `ShortPoll` with a zero interval (no timer, one
//!   yield per poll) beside a hand-written fetch-then-yield loop.

use std::future::{Ready, ready};
use std::hint::black_box;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use backon::{ConstantBuilder, Retryable, TokioSleeper};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Jitter, LongPoll, ShortPoll};
use tokio::runtime::Runtime;

const POLLS: u64 = 10_000;
const INTERVAL: Duration = Duration::from_millis(1);
/// The wait a `LongPoll` asks for by default; it sets its per-request timeout
/// to `wait + wait / 16 + 5 s`. The hand-written timeout loop uses the same.
const LONG_WAIT: Duration = Duration::from_secs(30);
const LONG_LIMIT: Duration = Duration::from_millis(30_000 + 30_000 / 16 + 5_000);

type Job = Pin<Box<dyn Future<Output = u64>>>;

fn paused_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime with a paused clock")
}

/// The fetch every short-poll variant calls: always ready, returns a counter.
fn counter() -> impl FnMut() -> Ready<Result<u64, io::Error>> {
    let mut n = 0u64;
    move || {
        n += 1;
        ready(Ok(n))
    }
}

/// The long-poll fetch: always ready, always a change, the next cursor.
fn long_fetch(cursor: Option<u64>) -> Ready<Result<Reply<u64, u64>, io::Error>> {
    let next = cursor.unwrap_or(0) + 1;
    ready(Ok(Reply::changed(next, next)))
}

/// `ShortPoll`: 10,000 items, so 10,000 fetch calls and 9,999 awaited timer
/// waits (the timer is reset after the last item too, but never awaited).
async fn short_pollkit(interval: Duration) -> u64 {
    let poller = ShortPoll::new(counter()).interval(interval);
    let mut polls = poller.take(POLLS as usize);
    let mut sum = 0;
    while let Some(item) = polls.next().await {
        sum += item.expect("the fetch never fails");
    }
    sum
}

/// Hand-written: fetch, then `tokio::time::sleep` (a new `Sleep` each time)
/// between requests: 10,000 fetch calls and 9,999 sleeps.
async fn short_hand_sleep(interval: Duration) -> u64 {
    let mut fetch = counter();
    let mut sum = 0;
    for i in 0..POLLS {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        sum += fetch().await.expect("the fetch never fails");
    }
    sum
}

/// Hand-written, zero interval: fetch, then `tokio::task::yield_now` between
/// requests (as `ShortPoll` yields once when no timer is due): 10,000 fetch
/// calls and 9,999 yields.
async fn short_hand_yield() -> u64 {
    let mut fetch = counter();
    let mut sum = 0;
    for i in 0..POLLS {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        sum += fetch().await.expect("the fetch never fails");
    }
    sum
}

/// backon: the same counter fetch, its value passed on as an "error" so that
/// backon sleeps its constant 1 ms delay (`TokioSleeper`, a new
/// `tokio::time::sleep` each time) and retries. `max_times` counts retries,
/// so 9,999 retries make 10,000 fetch calls and 9,999 sleeps; `notify` sees
/// each value before its sleep, and the last comes back as the result.
async fn short_backon(interval: Duration) -> u64 {
    let mut fetch = counter();
    let mut sum = 0;
    let backoff = ConstantBuilder::new()
        .with_delay(interval)
        .with_max_times(POLLS as usize - 1);
    let last = (|| {
        let n = fetch().into_inner().expect("the fetch never fails");
        ready(Err::<(), u64>(n))
    })
    .retry(backoff)
    .sleep(TokioSleeper)
    .notify(|n: &u64, _| sum += *n)
    .await
    .expect_err("every attempt asks for a retry");
    sum + last
}

/// `LongPoll`, every reply a change, no rate limit (a zero period means none)
/// and no jitter. Per poll it clones the cursor into a `Request`, computes its
/// per-request time limit (the wait + wait/16 + 5 s; the timer is armed, and
/// the clock read for it, only if the request has to wait, which a ready fetch
/// never does) and, the next request being due at once, yields to the runtime
/// once: 10,000 fetch calls and 9,999 yields.
async fn long_pollkit() -> u64 {
    let poller = LongPoll::new(|req: Request<u64>| long_fetch(req.cursor().copied()))
        .wait(LONG_WAIT)
        .rate_limit(u32::MAX, Duration::ZERO)
        .jitter(Jitter::None);
    let mut polls = poller.take(POLLS as usize);
    let mut sum = 0;
    while let Some(item) = polls.next().await {
        sum += item.expect("the fetch never fails");
    }
    sum
}

/// Hand-written long-poll loop: thread the cursor, yield once between
/// requests (as `LongPoll` does): 10,000 fetch calls and 9,999 yields. No
/// per-request timeout, no rate limiter.
async fn long_hand() -> u64 {
    let mut cursor = None;
    let mut sum = 0;
    for i in 0..POLLS {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        let reply = long_fetch(cursor).await.expect("the fetch never fails");
        if let Reply::Changed { status, cursor: c } = reply {
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
async fn long_hand_timeout() -> u64 {
    let mut cursor = None;
    let mut sum = 0;
    for i in 0..POLLS {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        let reply = tokio::time::timeout(LONG_LIMIT, long_fetch(cursor))
            .await
            .expect("the fetch is ready at once")
            .expect("the fetch never fails");
        if let Reply::Changed { status, cursor: c } = reply {
            sum += status;
            cursor = Some(c);
        }
    }
    sum
}

fn short_1ms(c: &mut Criterion) {
    let rt = paused_runtime();
    let mut group = c.benchmark_group("short_1ms");
    group.throughput(Throughput::Elements(POLLS));
    group.bench_function("pollkit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_pollkit(INTERVAL).await) });
    });
    group.bench_function("hand_written", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_hand_sleep(INTERVAL).await) });
    });
    group.bench_function("backon", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_backon(INTERVAL).await) });
    });
    group.finish();
}

fn long_changed(c: &mut Criterion) {
    let rt = paused_runtime();
    let mut group = c.benchmark_group("long_changed");
    group.throughput(Throughput::Elements(POLLS));
    group.bench_function("pollkit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(long_pollkit().await) });
    });
    group.bench_function("hand_written", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(long_hand().await) });
    });
    group.bench_function("hand_written_timeout", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(long_hand_timeout().await) });
    });
    group.finish();
}

fn short_zero_interval(c: &mut Criterion) {
    let rt = paused_runtime();
    let mut group = c.benchmark_group("short_zero_interval");
    group.throughput(Throughput::Elements(POLLS));
    group.bench_function("pollkit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_pollkit(Duration::ZERO).await) });
    });
    group.bench_function("hand_written", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_hand_yield().await) });
    });
    group.finish();
}

/// Checks once, outside the measurements, that every side of a group does the
/// same work: the same sum of statuses and, for the timed ones, the same
/// 9,999 ms of (virtual) sleeping.
fn check_equivalence() {
    let rt = paused_runtime();
    let expected = POLLS * (POLLS + 1) / 2;
    let timed = |f: Job| {
        rt.block_on(async {
            let start = tokio::time::Instant::now();
            let sum = f.await;
            (sum, start.elapsed())
        })
    };
    let slept = INTERVAL * (POLLS as u32 - 1);
    for (name, f) in [
        (
            "short_1ms/pollkit",
            Box::pin(short_pollkit(INTERVAL)) as Job,
        ),
        (
            "short_1ms/hand_written",
            Box::pin(short_hand_sleep(INTERVAL)),
        ),
        ("short_1ms/backon", Box::pin(short_backon(INTERVAL))),
    ] {
        assert_eq!(timed(f), (expected, slept), "{name}");
    }
    for (name, f) in [
        ("long_changed/pollkit", Box::pin(long_pollkit()) as Job),
        ("long_changed/hand_written", Box::pin(long_hand())),
        (
            "long_changed/hand_written_timeout",
            Box::pin(long_hand_timeout()),
        ),
        (
            "short_zero_interval/pollkit",
            Box::pin(short_pollkit(Duration::ZERO)),
        ),
        (
            "short_zero_interval/hand_written",
            Box::pin(short_hand_yield()),
        ),
    ] {
        assert_eq!(timed(f), (expected, Duration::ZERO), "{name}");
    }
}

fn benches(c: &mut Criterion) {
    check_equivalence();
    short_1ms(c);
    long_changed(c);
    short_zero_interval(c);
}

criterion_group!(overhead, benches);
criterion_main!(overhead);
