//! Bad configuration and bad input, on tokio's paused clock: zero, huge and
//! `Duration::MAX` durations everywhere, jitter fractions outside `0..=1` and
//! NaN, silly backoff settings, hostile server hints and SSE `retry` values.
//! Each must give the documented clamp or a clear error: never a panic, an
//! overflow (tests build with overflow checks) or a hang.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ApiError, Log, ms, secs};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use pollkit::long::{Reply, Request};
use pollkit::sse::Event;
use pollkit::{
    Backoff, Budget, Cadence, Checkpoint, Error, Jitter, LongPoll, Poller, ShortPoll, SseStream,
    Stats,
};

/// One year. pollkit's "never" for one wait is about thirty of them
/// (`schedule::later`, like tokio's own `far_future`).
const YEAR: Duration = Duration::from_secs(86_400 * 365);

fn gaps(log: &Log) -> Vec<Duration> {
    log.times().windows(2).map(|w| w[1] - w[0]).collect()
}

/// A fetch that records each request and answers `n` at once.
fn counter(log: &Log) -> impl FnMut() -> std::future::Ready<Result<usize, ApiError>> + use<> {
    let log = log.clone();
    move || std::future::ready(Ok(log.hit()))
}

/// A fetch that records each request and always fails (transiently).
fn failing(log: &Log) -> impl FnMut() -> std::future::Ready<Result<usize, ApiError>> + use<> {
    let log = log.clone();
    move || {
        log.hit();
        std::future::ready(Err(ApiError::Unavailable { retry_after: None }))
    }
}

// ---------------------------------------------------------------------------
// Intervals, deadlines, per-request timeouts
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn interval_duration_max_waits_about_thirty_years_per_request() {
    let log = Log::new();
    let got: Vec<_> = ShortPoll::new(counter(&log))
        .interval(Duration::MAX)
        .take(3)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(got, [1, 2, 3]);
    for gap in gaps(&log) {
        assert!(gap >= 29 * YEAR && gap <= 31 * YEAR, "{gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn interval_duration_max_with_a_deadline_makes_the_final_request_at_it() {
    let log = Log::new();
    let items: Vec<_> = ShortPoll::new(counter(&log))
        .interval(Duration::MAX)
        .jitter(Jitter::Proportional(1.0))
        .timeout(secs(10))
        .collect()
        .await;
    assert_eq!(log.secs(), [0, 10]);
    assert!(matches!(
        items.last(),
        Some(Err(Error::Timeout { attempts: 2, elapsed, .. })) if *elapsed == secs(10)
    ));
}

#[tokio::test(start_paused = true)]
async fn zero_timeout_makes_one_request_then_times_out() {
    for strategy in 0..3 {
        let log = Log::new();
        let r = until_any(strategy, &log, |p| p.timeout(Duration::ZERO)).await;
        assert!(
            matches!(
                r,
                Err(Error::Timeout {
                    attempts: 1,
                    elapsed: Duration::ZERO,
                    ..
                })
            ),
            "strategy {strategy}: {r:?}"
        );
        assert_eq!(log.count(), 1, "strategy {strategy}");
    }
}

#[tokio::test(start_paused = true)]
async fn duration_max_timeout_is_no_deadline() {
    let log = Log::new();
    let r = ShortPoll::new(counter(&log))
        .interval(secs(3600))
        .timeout(Duration::MAX)
        .max_attempts(50)
        .until(|_| false)
        .await;
    // 49 hours passed and the deadline never fired: the attempt limit did.
    assert!(
        matches!(r, Err(Error::Exhausted { attempts: 50, .. })),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_century_long_timeout_neither_overflows_nor_fires_early() {
    let log = Log::new();
    let r = ShortPoll::new(counter(&log))
        .interval(Duration::MAX)
        .timeout(100 * YEAR)
        .until(|_| false)
        .await;
    // Waits of about 30 years, the last one shortened to end at the deadline.
    match r {
        Err(Error::Timeout {
            elapsed, attempts, ..
        }) => {
            assert_eq!(elapsed, 100 * YEAR);
            assert_eq!(attempts, 5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.times().last(), Some(&(100 * YEAR)));
}

#[tokio::test(start_paused = true)]
async fn zero_attempt_timeout_cuts_every_pending_request_at_once() {
    let log = Log::new();
    let l = log.clone();
    let r = ShortPoll::new(move || {
        l.hit();
        std::future::pending::<Result<(), ApiError>>()
    })
    .attempt_timeout(Duration::ZERO)
    .backoff(
        Backoff::new()
            .base(ms(10))
            .jitter(Jitter::None)
            .max_retries(2),
    )
    .until(|_| true)
    .await;
    match r {
        Err(Error::AttemptTimeout {
            timeout, attempts, ..
        }) => {
            assert_eq!((timeout, attempts), (Duration::ZERO, 3));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.millis(), [0, 10, 30]);

    // A request that is ready at once still gets its answer through.
    let log = Log::new();
    let r = ShortPoll::new(counter(&log))
        .attempt_timeout(Duration::ZERO)
        .until(|n| *n == 3)
        .await;
    assert_eq!(r.unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn duration_max_attempt_timeout_is_no_limit() {
    let r = ShortPoll::new(|| async {
        tokio::time::sleep(secs(1000)).await;
        Ok::<_, ApiError>(7)
    })
    .attempt_timeout(Duration::MAX)
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 7);
}

// ---------------------------------------------------------------------------
// Jitter fractions
// ---------------------------------------------------------------------------

async fn jittered_gaps(jitter: Jitter) -> Vec<Duration> {
    let log = Log::new();
    let _ = ShortPoll::new(counter(&log))
        .interval(secs(10))
        .jitter(jitter)
        .seed(11)
        .take(400)
        .collect::<Vec<_>>()
        .await;
    gaps(&log)
}

#[tokio::test(start_paused = true)]
async fn proportional_fractions_below_zero_and_nan_count_as_zero() {
    for f in [f64::NAN, -0.5, -1.0, f64::NEG_INFINITY, -0.0, 0.0] {
        let gaps = jittered_gaps(Jitter::Proportional(f)).await;
        assert!(
            gaps.iter().all(|g| *g == secs(10)),
            "fraction {f}: {gaps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn proportional_fractions_above_one_count_as_one() {
    for f in [1.0, 1.5, 5.0, 1e300, f64::INFINITY] {
        let gaps = jittered_gaps(Jitter::Proportional(f)).await;
        let (lo, hi) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
        // [d × 0, d × 2]: the full range is used, nothing falls outside it.
        assert!(*hi <= secs(20), "fraction {f}: {hi:?}");
        assert!(
            *lo < secs(1) && *hi > secs(19),
            "fraction {f}: {lo:?} {hi:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_jitter_kind_on_a_zero_interval_stays_zero() {
    for jitter in [
        Jitter::None,
        Jitter::Proportional(1.0),
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ] {
        let log = Log::new();
        let _ = ShortPoll::new(counter(&log))
            .interval(Duration::ZERO)
            .jitter(jitter)
            .take(100)
            .collect::<Vec<_>>()
            .await;
        assert!(log.times().iter().all(|t| t.is_zero()), "{jitter:?}");
    }
}

// ---------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------

#[test]
fn backoff_delay_never_overflows_and_respects_the_cap() {
    let cap = secs(30);
    for factor in [1e308, f64::INFINITY, f64::MAX, 1e10] {
        let b = Backoff::new().factor(factor);
        assert_eq!(b.delay(0), secs(1), "factor {factor}");
        for step in [1, 2, 100, 1024, 1025, u32::MAX] {
            assert_eq!(b.delay(step), cap, "factor {factor} step {step}");
        }
    }
    // Below 1 and NaN: a constant delay, never a shrinking one.
    for factor in [f64::NAN, 0.0, -3.0, 0.5, f64::NEG_INFINITY, 1.0] {
        let b = Backoff::new().factor(factor);
        for step in [0, 1, 50, u32::MAX] {
            assert_eq!(b.delay(step), secs(1), "factor {factor} step {step}");
        }
    }
    // A base at or above the cap gives the cap.
    assert_eq!(Backoff::new().base(Duration::MAX).delay(0), cap);
    assert_eq!(Backoff::new().base(secs(31)).delay(7), cap);
    let huge = Backoff::new().base(Duration::MAX).max_delay(Duration::MAX);
    assert_eq!(huge.delay(0), Duration::MAX);
    assert_eq!(huge.factor(1e308).delay(u32::MAX), Duration::MAX);
    let b = Backoff::new().factor(1e308).max_delay(Duration::MAX);
    assert_eq!(b.delay(1000), Duration::MAX);
    assert_eq!(
        Backoff::new().max_delay(Duration::ZERO).delay(3),
        Duration::ZERO
    );
}

async fn retry_gaps(backoff: Backoff, errors: usize) -> Vec<Duration> {
    let log = Log::new();
    let l = log.clone();
    let r = ShortPoll::new(move || {
        let n = l.hit();
        std::future::ready(if n <= errors {
            Err(ApiError::Unavailable { retry_after: None })
        } else {
            Ok(n)
        })
    })
    .backoff(backoff)
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), errors + 1);
    gaps(&log)
}

#[tokio::test(start_paused = true)]
async fn silly_factors_give_a_constant_backoff() {
    for factor in [f64::NAN, 0.0, -1.0, 0.25] {
        let b = Backoff::new()
            .factor(factor)
            .base(secs(2))
            .jitter(Jitter::None)
            .max_retries(10);
        assert_eq!(retry_gaps(b, 6).await, [secs(2); 6], "factor {factor}");
    }
}

#[tokio::test(start_paused = true)]
async fn overflowing_factors_grow_to_the_cap_and_stay_there() {
    for factor in [1e308, f64::INFINITY] {
        let b = Backoff::new()
            .factor(factor)
            .base(ms(10))
            .max_delay(secs(5))
            .jitter(Jitter::None)
            .max_retries(10);
        let gaps = retry_gaps(b, 6).await;
        assert_eq!(gaps[0], ms(10));
        assert!(gaps[1..].iter().all(|g| *g == secs(5)), "{gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn duration_max_backoff_waits_about_thirty_years() {
    for jitter in [Jitter::None, Jitter::Equal, Jitter::Decorrelated] {
        let b = Backoff::new()
            .base(Duration::MAX)
            .max_delay(Duration::MAX)
            .factor(1e308)
            .jitter(jitter)
            .give_up_after(Duration::MAX);
        let gaps = retry_gaps(b, 2).await;
        for gap in gaps {
            assert!(gap >= 29 * YEAR && gap <= 31 * YEAR, "{jitter:?}: {gap:?}");
        }
    }
    // Full jitter draws anywhere in [0, Duration::MAX], capped the same way.
    let b = Backoff::new()
        .base(Duration::MAX)
        .max_delay(Duration::MAX)
        .jitter(Jitter::Full)
        .give_up_after(Duration::MAX);
    assert!(retry_gaps(b, 3).await.iter().all(|g| *g <= 31 * YEAR));
}

#[tokio::test(start_paused = true)]
async fn base_above_the_cap_waits_the_cap() {
    let b = Backoff::new()
        .base(secs(100))
        .max_delay(secs(3))
        .jitter(Jitter::None);
    assert_eq!(retry_gaps(b, 3).await, [secs(3); 3]);
}

#[tokio::test(start_paused = true)]
async fn zero_backoff_retries_at_once_without_a_timer() {
    let b = Backoff::new()
        .base(Duration::ZERO)
        .max_delay(Duration::ZERO)
        .max_retries(100);
    assert_eq!(retry_gaps(b, 50).await, [Duration::ZERO; 50]);
}

#[tokio::test(start_paused = true)]
async fn max_retries_zero_ends_at_the_first_error() {
    let log = Log::new();
    let r = ShortPoll::new(failing(&log))
        .backoff(Backoff::new().max_retries(0))
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::Unavailable { .. }))));
    assert_eq!(log.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn max_retries_u32_max_keeps_retrying() {
    let b = Backoff::new()
        .base(ms(1))
        .max_delay(ms(1))
        .jitter(Jitter::None)
        .max_retries(u32::MAX);
    assert_eq!(retry_gaps(b, 2000).await.len(), 2000);
}

// ---------------------------------------------------------------------------
// Attempt limits, on every strategy
// ---------------------------------------------------------------------------

type Body = BoxStream<'static, Result<Vec<u8>, ApiError>>;

/// Runs strategy 0 (short), 1 (long) or 2 (SSE) with a fetch that records
/// each request and never satisfies `until`, configured by `tune`.
async fn until_any(
    strategy: u8,
    log: &Log,
    tune: impl Fn(Knobs) -> Knobs,
) -> Result<(), Error<ApiError>> {
    let knobs = tune(Knobs::default());
    let l = log.clone();
    match strategy {
        0 => {
            knobs
                .apply(ShortPoll::new(move || {
                    l.hit();
                    std::future::ready(Ok::<_, ApiError>(()))
                }))
                .until(|_| false)
                .await
        }
        1 => {
            knobs
                .apply(LongPoll::new(move |_req: Request<u64>| {
                    l.hit();
                    std::future::ready(Ok::<_, ApiError>(Reply::changed((), 1)))
                }))
                .until(|_| false)
                .await
        }
        _ => knobs
            .apply(SseStream::new(move |_id: Option<String>| {
                l.hit();
                let body: Body = stream::iter([Ok(b"data: x\n\n".to_vec())]).boxed();
                std::future::ready(Ok::<_, ApiError>(body))
            }))
            .until(|_| false)
            .await
            .map(|_| ()),
    }
}

/// The shared knobs a test sets, applied the same way to every strategy.
#[derive(Default, Clone)]
struct Knobs {
    timeout: Option<Duration>,
    max_attempts: Option<u32>,
}

impl Knobs {
    fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    fn apply<P: Shared>(&self, mut p: P) -> P {
        if let Some(t) = self.timeout {
            p = p.set_timeout(t);
        }
        if let Some(n) = self.max_attempts {
            p = p.set_max_attempts(n);
        }
        p
    }
}

/// The two shared setters, as a trait, so `Knobs` can apply them to any strategy.
trait Shared: Sized {
    fn set_timeout(self, d: Duration) -> Self;
    fn set_max_attempts(self, n: u32) -> Self;
}

impl<F, Fut, S, E> Shared for ShortPoll<F, Fut>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<S, E>>,
{
    fn set_timeout(self, d: Duration) -> Self {
        self.timeout(d)
    }
    fn set_max_attempts(self, n: u32) -> Self {
        self.max_attempts(n)
    }
}

impl<F, Fut, S, C, E> Shared for LongPoll<F, Fut, S, C>
where
    F: FnMut(Request<C>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply<S, C>, E>>,
    C: Clone + PartialEq,
{
    fn set_timeout(self, d: Duration) -> Self {
        self.timeout(d)
    }
    fn set_max_attempts(self, n: u32) -> Self {
        self.max_attempts(n)
    }
}

impl<F, Fut, B, T, E> Shared for SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<B, E>>,
    B: futures::Stream<Item = Result<T, E>>,
    T: AsRef<[u8]>,
{
    fn set_timeout(self, d: Duration) -> Self {
        self.timeout(d)
    }
    fn set_max_attempts(self, n: u32) -> Self {
        self.max_attempts(n)
    }
}

#[tokio::test(start_paused = true)]
async fn max_attempts_zero_is_taken_as_one_on_every_strategy() {
    for strategy in 0..3 {
        let log = Log::new();
        let r = until_any(strategy, &log, |k| k.max_attempts(0)).await;
        assert!(
            matches!(r, Err(Error::Exhausted { attempts: 1, .. })),
            "strategy {strategy}: {r:?}"
        );
        assert_eq!(log.count(), 1, "strategy {strategy}");
    }
}

#[tokio::test(start_paused = true)]
async fn max_attempts_u32_max_does_not_overflow() {
    for strategy in 0..3 {
        let log = Log::new();
        let r = until_any(strategy, &log, |k| {
            k.max_attempts(u32::MAX).timeout(secs(5))
        })
        .await;
        assert!(
            matches!(r, Err(Error::Timeout { .. })),
            "strategy {strategy}: {r:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Server hints
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn poll_after_duration_max_is_clamped_to_the_default_ten_minutes() {
    let log = Log::new();
    let _ = ShortPoll::new(counter(&log))
        .poll_after(|_| Some(Duration::MAX))
        .take(3)
        .collect::<Vec<_>>()
        .await;
    // Clamped to 10 min, then spread up to a fifth above.
    for gap in gaps(&log) {
        assert!(gap >= secs(600) && gap <= secs(720), "{gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn hints_with_unbounded_bounds_wait_about_thirty_years_not_forever() {
    // hint_bounds given in reverse order are swapped.
    for (min, max) in [
        (Duration::ZERO, Duration::MAX),
        (Duration::MAX, Duration::ZERO),
    ] {
        let log = Log::new();
        let _ = ShortPoll::new(counter(&log))
            .poll_after(|_| Some(Duration::MAX))
            .hint_bounds(min, max)
            .take(2)
            .collect::<Vec<_>>()
            .await;
        let gap = gaps(&log)[0];
        assert!(gap >= 29 * YEAR && gap <= 31 * YEAR, "{gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_extremes_are_clamped_and_still_count() {
    let log = Log::new();
    let l = log.clone();
    // At `hint_max` (honoured in full), under `hint_min` (raised to it).
    let hints = [secs(600), Duration::ZERO, ms(1), secs(600)];
    let r = ShortPoll::new(move || {
        let n = l.hit();
        std::future::ready(match hints.get(n - 1) {
            Some(&h) => Err(ApiError::Unavailable {
                retry_after: Some(h),
            }),
            None => Ok(n),
        })
    })
    .retry_after(ApiError::retry_after)
    .backoff(Backoff::new().max_retries(4).give_up_after(secs(3600)))
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 5);
    // Default bounds 1 s ..= 10 min, then spread up to a fifth above.
    let g = gaps(&log);
    for (gap, hint) in g.iter().zip([secs(600), secs(1), secs(1), secs(600)]) {
        assert!(*gap >= hint && *gap <= hint + hint / 5, "{g:?}");
    }

    // Past `hint_max`: the hint cannot be honoured, the first error ends.
    for hint in [Duration::MAX, secs(99_999_999), secs(601)] {
        let log = Log::new();
        let l = log.clone();
        let r = ShortPoll::new(move || {
            l.hit();
            std::future::ready(Err::<(), _>(ApiError::Unavailable {
                retry_after: Some(hint),
            }))
        })
        .retry_after(ApiError::retry_after)
        .until(|_| true)
        .await;
        assert!(matches!(r, Err(Error::Fetch(_))));
        assert_eq!(log.count(), 1, "{hint:?}");
    }

    // Hinted errors count toward the time bound, not toward max_retries:
    // with max_retries(3), 10-minute hints still end after 30 minutes.
    let log = Log::new();
    let l = log.clone();
    let r = ShortPoll::new(move || {
        l.hit();
        std::future::ready(Err::<(), _>(ApiError::Unavailable {
            retry_after: Some(secs(600)),
        }))
    })
    .retry_after(ApiError::retry_after)
    .backoff(Backoff::new().max_retries(3).give_up_after(secs(1800)))
    .until(|_| true)
    .await;
    assert!(matches!(r, Err(Error::Fetch(_))));
    let n = log.count();
    assert!(
        (3..=4).contains(&n),
        "{n} requests in 30 min of 10-12 min hints"
    );
}

// ---------------------------------------------------------------------------
// LongPoll: waits and pacing
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn long_poll_zero_wait_gets_the_margin_as_its_timeout() {
    let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let w = waits.clone();
    let r = LongPoll::new(move |req: Request<u64>| {
        w.lock().unwrap().push(req.wait());
        std::future::pending::<Result<Reply<(), u64>, ApiError>>()
    })
    .wait(Duration::ZERO)
    .backoff(Backoff::new().max_retries(0))
    .until(|_| true)
    .await;
    // wait + wait/16 + 5 s.
    assert!(
        matches!(r, Err(Error::AttemptTimeout { timeout, attempts: 1, .. }) if timeout == secs(5)),
        "{r:?}"
    );
    assert_eq!(*waits.lock().unwrap(), [Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn long_poll_duration_max_wait_is_capped_by_the_deadline() {
    let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let w = waits.clone();
    let start = tokio::time::Instant::now();
    let r = LongPoll::new(move |req: Request<u64>| {
        w.lock().unwrap().push(req.wait());
        let wait = req.wait();
        async move {
            tokio::time::sleep(wait).await;
            Ok::<Reply<(), u64>, ApiError>(Reply::unchanged())
        }
    })
    .wait(Duration::MAX)
    .timeout(secs(60))
    .until(|_| true)
    .await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert_eq!(start.elapsed(), secs(60));
    assert_eq!(waits.lock().unwrap()[0], secs(60));
    // Without a deadline the wait is passed on as is, and the default
    // per-request timeout saturates instead of overflowing.
    let r = LongPoll::new(|req: Request<u64>| {
        assert_eq!(req.wait(), Duration::MAX);
        std::future::ready(Ok::<_, ApiError>(Reply::changed(1, 1)))
    })
    .wait(Duration::MAX)
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 1);
}

/// Request instants of a long poller whose server ignores the wait (every
/// reply is an immediate change), with the given pacing.
async fn paced(burst: u32, period: Duration, jitter: Jitter, n: usize) -> Vec<Duration> {
    let log = Log::new();
    let l = log.clone();
    let _ = LongPoll::new(move |_req: Request<u64>| {
        let n = l.hit();
        std::future::ready(Ok::<_, ApiError>(Reply::changed(n, n as u64)))
    })
    .rate_limit(burst, period)
    .jitter(jitter)
    .take(n)
    .collect::<Vec<_>>()
    .await;
    log.times()
}

#[tokio::test(start_paused = true)]
async fn long_poll_burst_zero_is_taken_as_one() {
    assert_eq!(
        paced(0, secs(1), Jitter::None, 4).await,
        [secs(0), secs(1), secs(2), secs(3)]
    );
}

#[tokio::test(start_paused = true)]
async fn long_poll_zero_period_means_no_pacing() {
    assert_eq!(
        paced(1, Duration::ZERO, Jitter::None, 50).await,
        [Duration::ZERO; 50]
    );
}

#[tokio::test(start_paused = true)]
async fn long_poll_huge_period_paces_one_request_per_thirty_years() {
    // A period too long for any timer: after the burst, the next token is
    // "never" (about thirty years away). With jitter the cost is drawn in
    // nanoseconds, which saturate at about 584 years.
    for (jitter, period) in [
        (Jitter::Equal, 1000 * YEAR),
        (Jitter::Equal, Duration::MAX),
        (Jitter::Full, Duration::MAX),
        (Jitter::None, 1000 * YEAR),
    ] {
        let times = paced(1, period, jitter, 3).await;
        assert_eq!(times[0], Duration::ZERO, "{jitter:?} {period:?}");
        assert!(times[1] >= 29 * YEAR, "{jitter:?} {period:?}: {times:?}");
    }
}

/// Regression, bug 1 (fixed in 1181526): in `TokenBucket::take`,
/// `full_at + cost` overflowed the `Instant` for `Duration::MAX` and
/// `unwrap_or(full_at)` left the bucket full: a period of `Duration::MAX`
/// without jitter meant no pacing at all, so a server that ignores the wait
/// got a request per runtime tick.
#[tokio::test(start_paused = true)]
async fn regression_rate_limit_of_duration_max_without_jitter_still_paces() {
    let times = paced(1, Duration::MAX, Jitter::None, 3).await;
    assert_eq!(times[0], Duration::ZERO);
    assert!(times[1] >= 29 * YEAR, "second request at {:?}", times[1]);
}

// ---------------------------------------------------------------------------
// Shared budget and stats
// ---------------------------------------------------------------------------

async fn budgeted(budget: Budget, n: usize) -> Vec<Duration> {
    let log = Log::new();
    let _ = ShortPoll::new(counter(&log))
        .interval(Duration::ZERO)
        .budget(budget)
        .take(n)
        .collect::<Vec<_>>()
        .await;
    log.times()
}

#[tokio::test(start_paused = true)]
async fn budget_rate_and_burst_zero_are_taken_as_one() {
    let times = budgeted(Budget::per_second(0).burst(0), 3).await;
    assert_eq!(times, [secs(0), secs(1), secs(2)]);
}

#[tokio::test(start_paused = true)]
async fn budget_of_zero_period_is_taken_as_one_nanosecond() {
    // One request per nanosecond: a limit, not none. On tokio's 1 ms timer a
    // reserved slot 1 ns away is reached at the next tick, where a fresh
    // token is free at once: two requests per tick.
    let times = budgeted(Budget::every(Duration::ZERO), 20).await;
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    for tick in 0..10 {
        let at = times.iter().filter(|t| **t == ms(tick)).count();
        assert!(at <= 2, "{at} requests at {tick} ms: {times:?}");
    }
    assert_eq!(times[19], ms(10), "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn budget_of_one_request_per_millennium_allows_one_request() {
    let times = budgeted(Budget::every(1000 * YEAR), 2).await;
    assert!(times[1] >= 29 * YEAR, "{times:?}");
}

/// Regression, bug 1 (fixed in 1181526): the same overflow, reached through
/// the budget, made `Budget::every(Duration::MAX)` (a natural way to write
/// "one request, then never") no budget at all.
#[tokio::test(start_paused = true)]
async fn regression_budget_of_one_request_per_duration_max_allows_one_request() {
    let times = budgeted(Budget::every(Duration::MAX), 2).await;
    assert!(times[1] >= 29 * YEAR, "second request at {:?}", times[1]);
}

/// Regression, bug 2 (fixed in 1181526): `Stats::wait` did a `fetch_add` on
/// a `u64` of nanoseconds, which wraps silently after about 584 years of
/// waits in total. One `Stats` is meant to total a fleet: 10,000 pollers that
/// are always waiting add 10,000 s per second, so the total wrapped after
/// about 21 days of uptime.
#[tokio::test(start_paused = true)]
async fn regression_stats_waited_saturates_instead_of_wrapping() {
    // Twenty waits of about 30 years: 600 years, past u64::MAX nanoseconds
    // (about 584 years).
    let stats = Stats::new();
    let log = Log::new();
    let _ = ShortPoll::new(counter(&log))
        .interval(Duration::MAX)
        .stats(stats.clone())
        .take(21)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(stats.requests(), 21);
    let total: Duration = gaps(&log).iter().sum();
    assert!(total > Duration::from_nanos(u64::MAX));
    assert!(
        stats.waited() >= Duration::from_nanos(u64::MAX) - secs(1),
        "waited {:?} after {total:?} of waits",
        stats.waited()
    );
}

// ---------------------------------------------------------------------------
// Checkpoints and adaptive pacing at the extremes
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn resuming_from_an_exhausted_checkpoint_ends_cleanly() {
    let spent = Checkpoint::new(u32::MAX, Duration::MAX, None);
    let log = Log::new();
    let r = ShortPoll::new(counter(&log))
        .timeout(secs(60))
        .resume(spent.clone())
        .until(|_| false)
        .await;
    assert!(
        matches!(
            r,
            Err(Error::Timeout {
                attempts: u32::MAX,
                elapsed: Duration::MAX,
                ..
            })
        ),
        "{r:?}"
    );
    let r = ShortPoll::new(counter(&log))
        .max_attempts(5)
        .resume(spent)
        .until(|_| false)
        .await;
    assert!(
        matches!(
            r,
            Err(Error::Exhausted {
                attempts: u32::MAX,
                ..
            })
        ),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn adaptive_bounds_at_the_extremes() {
    // Bounds given in either order; an eta of Duration::MAX is clamped to the cap.
    for (floor, cap) in [(ms(10), secs(60)), (secs(60), ms(10))] {
        let log = Log::new();
        let l = log.clone();
        let _ = ShortPoll::new(move || {
            let n = l.hit();
            std::future::ready(Ok::<_, ApiError>(n))
        })
        .interval(Duration::MAX)
        .adaptive(floor, cap)
        .eta(|_| Some(Duration::MAX))
        .take(3)
        .collect::<Vec<_>>()
        .await;
        assert_eq!(gaps(&log), [secs(60); 2]);
    }
    let log = Log::new();
    let l = log.clone();
    let _ = ShortPoll::new(move || {
        l.hit();
        std::future::ready(Ok::<_, ApiError>("queued"))
    })
    .interval(secs(1))
    .adaptive(Duration::ZERO, Duration::MAX)
    .take(60)
    .collect::<Vec<_>>()
    .await;
    // No change: the interval grows by half each time, up to ~30-year waits.
    let last = *gaps(&log).last().unwrap();
    assert!(last >= 29 * YEAR && last <= 31 * YEAR, "{last:?}");
}

// ---------------------------------------------------------------------------
// SSE: reconnect times, idle timeouts, hostile `retry` values
// ---------------------------------------------------------------------------

/// A connect function: connection `k` (from 0) sends `bodies[k]` then closes;
/// later connections hang.
fn sse_server(
    log: &Log,
    bodies: Vec<&'static str>,
) -> impl FnMut(Option<String>) -> std::future::Ready<Result<Body, ApiError>> + use<> {
    let log = log.clone();
    let mut bodies = bodies.into_iter();
    move |_id| {
        log.hit();
        let body: Body = match bodies.next() {
            Some(b) => stream::iter([Ok(b.as_bytes().to_vec())]).boxed(),
            None => stream::pending().boxed(),
        };
        std::future::ready(Ok(body))
    }
}

#[tokio::test(start_paused = true)]
async fn sse_retry_past_u64_is_ignored_and_u64_max_is_clamped() {
    let log = Log::new();
    let bodies = vec![
        "retry: 18446744073709551616\ndata: a\n\n",
        "retry: 18446744073709551615\ndata: b\n\n",
        "retry: 99999999999999999999999999999\ndata: c\n\n",
        "retry: 2500\ndata: d\n\n",
        "retry: 18446744073709551616\ndata: e\n\n",
        "data: f\n\n",
    ];
    let events: Vec<Event> = SseStream::new(sse_server(&log, bodies))
        .jitter(Jitter::None)
        .reconnect_time(secs(3))
        .take(6)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), 6);
    // 2^64 is ignored (the 3 s default stays); 2^64 - 1 ms is clamped to the
    // default 10 min; the absurd value is ignored (10 min stays); 2.5 s;
    // 2^64 again ignored (2.5 s stays).
    assert_eq!(
        gaps(&log),
        [secs(3), secs(600), secs(600), ms(2500), ms(2500)]
    );
}

#[tokio::test(start_paused = true)]
async fn sse_u64_max_retry_with_unbounded_hints_waits_about_thirty_years() {
    let log = Log::new();
    let bodies = vec!["retry: 18446744073709551615\ndata: a\n\n", "data: b\n\n"];
    let events: Vec<Event> = SseStream::new(sse_server(&log, bodies))
        .jitter(Jitter::None)
        .hint_bounds(Duration::ZERO, Duration::MAX)
        .take(2)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    let gap = gaps(&log)[0];
    assert!(gap >= 29 * YEAR && gap <= 31 * YEAR, "{gap:?}");
}

#[tokio::test(start_paused = true)]
async fn sse_reconnect_time_zero_and_max() {
    let log = Log::new();
    let bodies = vec!["data: a\n\n", "data: b\n\n", "data: c\n\n"];
    let _: Vec<Event> = SseStream::new(sse_server(&log, bodies))
        .reconnect_time(Duration::ZERO)
        .jitter(Jitter::None)
        .take(3)
        .try_collect()
        .await
        .unwrap();
    // Zero would spin: taken as the 100 ms minimum.
    assert_eq!(log.times(), [Duration::ZERO, ms(100), ms(200)]);

    let log = Log::new();
    let bodies = vec!["data: a\n\n", "data: b\n\n"];
    let _: Vec<Event> = SseStream::new(sse_server(&log, bodies))
        .reconnect_time(Duration::MAX)
        .take(2)
        .try_collect()
        .await
        .unwrap();
    let gap = gaps(&log)[0];
    assert!(gap >= 29 * YEAR && gap <= 31 * YEAR, "{gap:?}");
}

#[tokio::test(start_paused = true)]
async fn sse_zero_idle_timeout_is_taken_as_one_millisecond() {
    let log = Log::new();
    let l = log.clone();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    // Each connection sends one event, then goes quiet.
    let events: Vec<Event> = SseStream::new(move |_id: Option<String>| {
        let n = l.hit();
        let flag = common::DropFlag(d.clone());
        let body: Body = stream::iter([Ok(format!("id: {n}\ndata: {n}\n\n").into_bytes())])
            .chain(stream::pending())
            .map(move |c| {
                let _keep = &flag;
                c
            })
            .boxed();
        std::future::ready(Ok::<_, ApiError>(body))
    })
    .jitter(Jitter::None)
    .idle_timeout(Duration::ZERO)
    .reconnect_time(secs(1))
    .take(5)
    .try_collect()
    .await
    .unwrap();
    let ids: Vec<_> = events.iter().map(Event::last_event_id).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    // Quiet for the 1 ms minimum, then the 1 s reconnection time.
    assert_eq!(gaps(&log), [ms(1001); 4]);
    // Every quiet connection was closed, the last one with the stream.
    assert_eq!(dropped.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn sse_duration_max_idle_timeout_is_no_idle_timeout() {
    let log = Log::new();
    let bodies = vec!["data: a\n\n"];
    let mut stream = SseStream::new(sse_server(&log, bodies)).idle_timeout(Duration::MAX);
    assert_eq!(stream.next().await.unwrap().unwrap().data(), "a");
    // The first body ends; the second connection hangs and is never dropped
    // for being idle within a week.
    let next = tokio::time::timeout(secs(7 * 86_400), stream.next()).await;
    assert!(next.is_err());
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn sse_max_event_size_zero_ends_with_the_typed_error() {
    let log = Log::new();
    let bodies = vec![": comments are fine\nretry: 5\n\ndata: x\n\n"];
    let items: Vec<_> = SseStream::new(sse_server(&log, bodies))
        .max_event_size(0)
        .collect()
        .await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(matches!(
        items[0],
        Err(Error::Sse(pollkit::sse::Error::EventTooLarge { limit: 0 }))
    ));
    assert_eq!(
        log.count(),
        1,
        "a refused event ends the stream: no reconnect"
    );
}

#[tokio::test(start_paused = true)]
async fn sse_max_event_size_usize_max_does_not_overflow() {
    let log = Log::new();
    let big: &'static str =
        Box::leak(format!("data: {}\n\n", "x".repeat(3 << 20)).into_boxed_str());
    let events: Vec<Event> = SseStream::new(sse_server(&log, vec![big]))
        .max_event_size(usize::MAX)
        .take(1)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events[0].data().len(), 3 << 20);
}

#[tokio::test(start_paused = true)]
async fn stagger_zero_huge_and_past_the_deadline() {
    let log = Log::new();
    let _ = ShortPoll::new(counter(&log))
        .stagger(Duration::ZERO)
        .take(1)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(log.times(), [Duration::ZERO]);

    // Duration::MAX: somewhere in the next ~30 years, never an overflow.
    let log = Log::new();
    let _ = ShortPoll::new(counter(&log))
        .stagger(Duration::MAX)
        .seed(5)
        .take(1)
        .collect::<Vec<_>>()
        .await;
    assert!(log.times()[0] <= 31 * YEAR, "{:?}", log.times());

    // Never past the deadline: the first request is then the final one.
    for strategy in 0..3 {
        let log = Log::new();
        let l = log.clone();
        let r = match strategy {
            0 => {
                ShortPoll::new(move || std::future::ready(Ok::<_, ApiError>(l.hit())))
                    .stagger(Duration::MAX)
                    .timeout(secs(10))
                    .until(|_| false)
                    .await
            }
            1 => {
                LongPoll::new(move |_req: Request<u64>| {
                    l.hit();
                    std::future::ready(Ok::<_, ApiError>(Reply::changed(0, 1)))
                })
                .stagger(Duration::MAX)
                .timeout(secs(10))
                .until(|_| false)
                .await
            }
            _ => SseStream::new(sse_server(&l, vec!["data: x\n\n"]))
                .stagger(Duration::MAX)
                .timeout(secs(10))
                .until(|_| false)
                .await
                .map(|_| 0),
        };
        assert!(
            matches!(r, Err(Error::Timeout { attempts: 1, .. })),
            "{strategy}: {r:?}"
        );
        assert!(log.times()[0] <= secs(10), "{strategy}: {:?}", log.times());
    }
}

// ---------------------------------------------------------------------------
// Backoff past a thousand steps
// ---------------------------------------------------------------------------

/// Regression, bug 3 (fixed in 1181526): `Backoff::delay` capped the
/// exponent at 1024 on the assumption that the product is then far beyond
/// any cap, which does not hold for factors close to 1, so past step 1024 it
/// did not follow the documented `min(max_delay, base × factor^step)`.
/// Reachable through the steps that never end polling (quick empty
/// long-poll replies, quiet SSE connections).
#[test]
fn regression_backoff_delay_follows_the_formula_past_step_1024() {
    let b = Backoff::new()
        .base(secs(1))
        .factor(1.001)
        .max_delay(secs(86_400));
    for step in [1024_u32, 2000, 5000] {
        let want = 1.001_f64.powf(f64::from(step));
        let got = b.delay(step).as_secs_f64();
        assert!(
            (got - want).abs() < want * 1e-9,
            "delay({step}) = {got} s, documented {want} s"
        );
    }
}

// ---------------------------------------------------------------------------
// Durations of 2^64 ns and more in the compact per-request state
// ---------------------------------------------------------------------------

/// Fixed-rate cadence with an interval of `Duration::MAX` and jitter: the
/// next request is ~30 years away (the grid tick). With the pacer's interval
/// stored as ~584 years instead of `Duration::MAX`, the jittered delay could
/// fall below it by more than 30 years and the request started at once.
#[tokio::test(start_paused = true)]
async fn fixed_rate_duration_max_interval_with_jitter_never_repolls_at_once() {
    for jitter in [
        Jitter::Full,
        Jitter::Proportional(0.2),
        Jitter::Decorrelated,
    ] {
        for seed in 0..8 {
            let log = Log::new();
            let l = log.clone();
            let _ = ShortPoll::new(move || std::future::ready(Ok::<_, ApiError>(l.hit())))
                .interval(Duration::MAX)
                .cadence(Cadence::FixedRate)
                .jitter(jitter)
                .seed(seed)
                .take(2)
                .collect::<Vec<_>>()
                .await;
            let gap = gaps(&log)[0];
            assert!(gap >= 29 * YEAR, "{jitter:?} seed {seed}: gap {gap:?}");
        }
    }
}

/// Adaptive pacing with a `Duration::MAX` cap, starting from a
/// `Duration::MAX` interval, and a status that changes every time: the
/// interval halves from `Duration::MAX` and is still "never" after 7
/// halvings (from ~584 years it would be below 30 years after 5).
#[tokio::test(start_paused = true)]
async fn adaptive_halving_from_a_duration_max_interval() {
    let log = Log::new();
    let l = log.clone();
    let _ = ShortPoll::new(move || std::future::ready(Ok::<_, ApiError>(l.hit())))
        .interval(Duration::MAX)
        .adaptive(ms(1), Duration::MAX)
        .take(8)
        .collect::<Vec<_>>()
        .await;
    for (i, gap) in gaps(&log).into_iter().enumerate() {
        assert!(gap >= 29 * YEAR, "gap {i}: {gap:?}");
    }
}

/// A per-request timeout of `Duration::MAX` on a request that never
/// answers: the request timer is set to `later(start, MAX)` (30 years), so
/// the poller ends with `AttemptTimeout { timeout: MAX }` after two cut
/// requests (~60 years): a limit of 2^64 ns or more is kept, not taken for
/// none.
#[tokio::test(start_paused = true)]
async fn duration_max_attempt_timeout_cuts_at_thirty_years_as_before() {
    let r = tokio::time::timeout(
        100 * YEAR,
        ShortPoll::new(std::future::pending::<Result<(), ApiError>>)
            .attempt_timeout(Duration::MAX)
            .next(),
    )
    .await;
    assert!(
        matches!(
            r,
            Ok(Some(Err(Error::AttemptTimeout {
                timeout: Duration::MAX,
                attempts: 2,
                ..
            })))
        ),
        "{r:?}"
    );
}

/// A rate limit that refused a slot before the deadline (the poller waits
/// for the deadline to stop there with `Timeout`, making no request over
/// the limit), then switched off while that wait is under way: the refusal
/// stands, and no request is made over the limit at the deadline.
#[tokio::test(start_paused = true)]
async fn switching_the_rate_limit_off_mid_wait_keeps_a_refusal() {
    let log = Log::new();
    let l = log.clone();
    let mut p = LongPoll::new(move |_req: Request<u64>| {
        let n = l.hit() as u64;
        std::future::ready(Ok::<_, ApiError>(Reply::changed(n, n)))
    })
    .rate_limit(1, secs(3600))
    .timeout(secs(600));
    assert_eq!(p.next().await.unwrap().unwrap(), 1);
    // Into the wait for the deadline (a yield first, then the refusal).
    for _ in 0..3 {
        assert!(futures::poll!(p.next()).is_pending());
    }
    let mut p = p.rate_limit(1, Duration::ZERO);
    let next = p.next().await;
    assert!(
        matches!(next, Some(Err(Error::Timeout { attempts: 1, .. }))),
        "{next:?}"
    );
    assert_eq!(log.count(), 1);
}

/// Same root cause for LongPoll: a wait of 1000 years gives a request limit
/// (wait + wait/16 + margin) above 2^64 ns: the held request is still cut
/// at 30 years (then retried).
#[tokio::test(start_paused = true)]
async fn long_poll_huge_wait_request_is_cut_at_thirty_years_as_before() {
    let log = Log::new();
    let l = log.clone();
    let p = LongPoll::new(move |_req: Request<u64>| {
        l.hit();
        std::future::pending::<Result<Reply<(), u64>, ApiError>>()
    })
    .wait(1000 * YEAR);
    let r = tokio::time::timeout(31 * YEAR, p.take(1).collect::<Vec<_>>()).await;
    assert!(r.is_err()); // no item either way; what differs is the retry
    assert_eq!(log.count(), 2, "a second request after the 30-year cut");
}
