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

use std::future::ready;
use std::hint::black_box;
use std::pin::Pin;
use std::time::Duration;

use backon::{ConstantBuilder, Retryable, TokioSleeper};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

#[path = "common/loops.rs"]
mod loops;

use loops::{
    counter, long_hand, long_hand_timeout, long_pollkit, short_hand_sleep, short_hand_yield,
    short_pollkit,
};

const POLLS: u64 = 10_000;
const INTERVAL: Duration = Duration::from_millis(1);
type Job = Pin<Box<dyn Future<Output = u64>>>;

fn paused_runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime with a paused clock")
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

fn short_1ms(c: &mut Criterion) {
    let rt = paused_runtime();
    let mut group = c.benchmark_group("short_1ms");
    group.throughput(Throughput::Elements(POLLS));
    group.bench_function("pollkit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_pollkit(INTERVAL, POLLS).await) });
    });
    group.bench_function("hand_written", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_hand_sleep(INTERVAL, POLLS).await) });
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
            .iter(|| async { black_box(long_pollkit(POLLS).await) });
    });
    group.bench_function("hand_written", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(long_hand(POLLS).await) });
    });
    group.bench_function("hand_written_timeout", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(long_hand_timeout(POLLS).await) });
    });
    group.finish();
}

fn short_zero_interval(c: &mut Criterion) {
    let rt = paused_runtime();
    let mut group = c.benchmark_group("short_zero_interval");
    group.throughput(Throughput::Elements(POLLS));
    group.bench_function("pollkit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_pollkit(Duration::ZERO, POLLS).await) });
    });
    group.bench_function("hand_written", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(short_hand_yield(POLLS).await) });
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
            Box::pin(short_pollkit(INTERVAL, POLLS)) as Job,
        ),
        (
            "short_1ms/hand_written",
            Box::pin(short_hand_sleep(INTERVAL, POLLS)),
        ),
        ("short_1ms/backon", Box::pin(short_backon(INTERVAL))),
    ] {
        assert_eq!(timed(f), (expected, slept), "{name}");
    }
    for (name, f) in [
        ("long_changed/pollkit", Box::pin(long_pollkit(POLLS)) as Job),
        ("long_changed/hand_written", Box::pin(long_hand(POLLS))),
        (
            "long_changed/hand_written_timeout",
            Box::pin(long_hand_timeout(POLLS)),
        ),
        (
            "short_zero_interval/pollkit",
            Box::pin(short_pollkit(Duration::ZERO, POLLS)),
        ),
        (
            "short_zero_interval/hand_written",
            Box::pin(short_hand_yield(POLLS)),
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
