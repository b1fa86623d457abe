//! Property tests of the schedule through the public API, on tokio's paused
//! clock: arbitrary intervals (0, 1 ns, huge, `Duration::MAX`), jitter kinds
//! and fractions (NaN, negative, above 1), backoff settings (factor huge or
//! NaN, base above the cap), per-request and overall timeouts, attempt limits,
//! start jitter and server hints, against scripted servers.
//!
//! For every request the test records when it started and ended, then checks
//! the documented rules (src/schedule/jitter.rs, src/schedule/backoff.rs,
//! src/builder.rs):
//! - the request instants are monotone, and a request never starts before
//!   the previous one ended;
//! - every gap lies in the documented bounds for what happened (an interval
//!   spread by the jitter, the backoff's nominal delay spread by its jitter,
//!   a hint clamped to the hint bounds, the long-poll bucket), each wait
//!   capped at about thirty years and at the deadline;
//! - no request starts after the deadline, and at most one (the last) at it;
//! - the poller ends with the error the first limit reached calls for (a
//!   request cut at or past the deadline ends it with `Timeout`).
//!
//! The only slack is tokio's timer resolution: a timer fires on the first
//! millisecond tick at or after its deadline.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, LocalBoxStream};
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Cadence, Error, Jitter, LongPoll, ShortPoll, SseStream};
use proptest::prelude::*;
use tokio::time::Instant;

/// Requests per case at most: a few hundred polls keep each case fast.
const MAX_REQUESTS: usize = 200;
/// pollkit's "never" for one wait: about thirty years (`schedule::later`).
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
/// tokio's timer resolution.
const TICK: Duration = Duration::from_millis(1);
/// The default hint bounds.
const HINT_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));

// ---------------------------------------------------------------------------
// The documented bounds
// ---------------------------------------------------------------------------

/// `[lo, hi]` of the delay a jitter draws for the nominal delay `d`, as
/// documented on `Jitter`; `decorrelated` is `(low, high)` for
/// `Jitter::Decorrelated` (`d/2, 3d/2` for intervals, `base, max_delay` for
/// backoff). Draws are in whole nanoseconds, which saturate at `u64::MAX`.
fn jitter_bounds(
    jitter: Jitter,
    d: Duration,
    decorrelated: (Duration, Duration),
) -> (Duration, Duration) {
    let nanos = |d: Duration| d.min(Duration::from_nanos(u64::MAX));
    let (lo, hi) = match jitter {
        Jitter::None => (d, d),
        Jitter::Proportional(f) => {
            // Outside 0..=1 clamped, NaN counts as 0.
            let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
            if f == 0.0 {
                (d, d)
            } else {
                let n = nanos(d).as_nanos() as f64;
                (
                    Duration::from_nanos((n * (1.0 - f)) as u64),
                    Duration::from_nanos((n * (1.0 + f)) as u64),
                )
            }
        }
        Jitter::Full => (Duration::ZERO, d),
        Jitter::Equal => (d / 2, d),
        Jitter::Decorrelated => decorrelated,
        other => panic!("a new jitter kind: {other:?}"),
    };
    (nanos(lo), nanos(hi))
}

fn interval_bounds(jitter: Jitter, d: Duration) -> (Duration, Duration) {
    jitter_bounds(jitter, d, (d / 2, d.saturating_add(d / 2)))
}

/// Backoff as its builder sets it, kept for the bounds.
#[derive(Clone, Debug)]
struct BackoffSetup {
    base: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    max_retries: u32,
}

impl BackoffSetup {
    fn build(&self) -> Backoff {
        Backoff::new()
            .base(self.base)
            .factor(self.factor)
            .max_delay(self.max_delay)
            .jitter(self.jitter)
            .max_retries(self.max_retries)
    }

    /// The documented nominal delay after `step + 1` consecutive errors:
    /// `min(max_delay, base × factor^step)`, factors below 1 and NaN taken
    /// as 1. Checks `Backoff::delay` against it and returns the latter.
    fn nominal(&self, step: u32) -> Duration {
        let got = self.build().delay(step);
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        let cap = self.max_delay;
        let want = if self.base >= cap {
            cap
        } else {
            let secs = self.base.as_secs_f64() * factor.powf(f64::from(step));
            if secs.is_finite() && secs < cap.as_secs_f64() {
                Duration::from_secs_f64(secs)
            } else {
                cap
            }
        };
        let slack = want.mul_f64(1e-9) + Duration::from_nanos(1);
        assert!(
            got.saturating_add(slack) >= want && got <= want.saturating_add(slack),
            "Backoff::delay({step}) = {got:?}, documented {want:?} ({self:?})"
        );
        got
    }

    /// `[lo, hi]` of the jittered backoff delay for `step`.
    fn bounds(&self, step: u32) -> (Duration, Duration) {
        let low = self.base.min(self.max_delay);
        jitter_bounds(self.jitter, self.nominal(step), (low, self.max_delay))
    }
}

fn clamp_hint(h: Duration, (min, max): (Duration, Duration)) -> Duration {
    h.max(min.min(max)).min(max.max(min))
}

/// A wait planned through `schedule::later`: capped at about thirty years.
fn far((lo, hi): (Duration, Duration)) -> (Duration, Duration) {
    (lo.min(FAR), hi.min(FAR))
}

/// Asserts that a request started at `next`, planned `[lo, hi]` after `end`
/// and capped at the deadline.
#[track_caller]
fn assert_next(
    next: Instant,
    end: Instant,
    (lo, hi): (Duration, Duration),
    deadline: Option<Instant>,
    what: &str,
) {
    let cap = |at: Instant| deadline.map_or(at, |d| at.min(d));
    let lo = cap(end + lo);
    let hi = cap(end + hi);
    // Float rounding in proportional jitter: a few nanoseconds either way.
    let slack = Duration::from_nanos(64);
    assert!(
        next + slack >= lo && next <= hi + TICK + slack,
        "{what}: next request {:?} after the previous ended, expected within [{:?}, {:?}]",
        next - end,
        lo - end,
        hi - end,
    );
}

// ---------------------------------------------------------------------------
// Strategies for the configuration
// ---------------------------------------------------------------------------

fn years(n: u64) -> Duration {
    Duration::from_secs(86_400 * 365 * n)
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        2 => Just(Duration::ZERO),
        1 => Just(Duration::from_nanos(1)),
        5 => (1u64..5_000).prop_map(Duration::from_millis),
        1 => Just(Duration::from_secs(1)),
        1 => Just(years(100)),
        1 => Just(Duration::MAX),
    ]
}

/// Deadlines in whole milliseconds, so that they fall on tokio's timer ticks.
fn any_timeout() -> impl Strategy<Value = Option<Duration>> {
    prop::option::weighted(
        0.6,
        prop_oneof![
            1 => Just(Duration::ZERO),
            6 => (1u64..30_000).prop_map(Duration::from_millis),
            1 => Just(years(100)),
            1 => Just(Duration::MAX),
        ],
    )
}

fn any_fraction() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1.0),
        Just(5.0),
        -2.0f64..3.0,
    ]
}

fn any_jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        any_fraction().prop_map(Jitter::Proportional),
    ]
}

fn any_backoff() -> impl Strategy<Value = BackoffSetup> {
    let factor = prop_oneof![
        Just(f64::NAN),
        Just(0.0),
        Just(-1.0),
        Just(1.0),
        Just(2.0),
        Just(1e308),
        Just(f64::INFINITY),
        0.5f64..10.0,
    ];
    let retries = prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX)];
    (
        any_duration(),
        factor,
        any_duration(),
        any_jitter(),
        retries,
    )
        .prop_map(
            |(base, factor, max_delay, jitter, max_retries)| BackoffSetup {
                base,
                factor,
                max_delay,
                jitter,
                max_retries,
            },
        )
}

fn any_hint() -> impl Strategy<Value = Option<Duration>> {
    prop::option::weighted(0.3, any_duration())
}

fn any_bounds() -> impl Strategy<Value = Option<(Duration, Duration)>> {
    prop::option::weighted(0.5, (any_duration(), any_duration()))
}

fn any_latency() -> impl Strategy<Value = Duration> {
    prop_oneof![
        4 => Just(Duration::ZERO),
        4 => (1u64..50).prop_map(Duration::from_millis),
        1 => Just(Duration::from_secs(3)),
        1 => Just(Duration::from_secs(10)),
    ]
}

fn any_max_attempts() -> impl Strategy<Value = Option<u32>> {
    prop::option::weighted(0.3, prop_oneof![Just(0u32), 1u32..60, Just(u32::MAX)])
}

/// 64 cases each (`PROPTEST_CASES` overrides); failures are reported, not
/// written next to the sources.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime")
}

// ---------------------------------------------------------------------------
// Recording requests
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Record {
    start: Instant,
    /// When the request future finished or was dropped.
    end: Option<Instant>,
    /// It finished (rather than being dropped by a per-request timeout).
    completed: bool,
}

#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<Record>>>);

impl Recorder {
    fn start(&self) -> (usize, EndGuard) {
        let mut records = self.0.borrow_mut();
        records.push(Record {
            start: Instant::now(),
            end: None,
            completed: false,
        });
        (records.len() - 1, EndGuard(self.clone(), records.len() - 1))
    }

    fn len(&self) -> usize {
        self.0.borrow().len()
    }

    fn records(&self) -> Vec<Record> {
        self.0.borrow().clone()
    }
}

/// Records when a request future ends, whether it finished or was dropped.
struct EndGuard(Recorder, usize);

impl EndGuard {
    fn complete(&self) {
        self.0.0.borrow_mut()[self.1].completed = true;
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        let mut records = self.0.0.borrow_mut();
        if records[self.1].end.is_none() {
            records[self.1].end = Some(Instant::now());
        }
    }
}

/// A transient error with an optional "retry after".
#[derive(Clone, Debug, PartialEq)]
struct Unavailable(Option<Duration>);

/// How the poller ended, if it did within `MAX_REQUESTS`.
#[derive(Debug, PartialEq)]
enum Ending {
    Running,
    Timeout,
    Exhausted,
    Fetch,
    AttemptTimeout,
    Other(String),
}

fn ending<E: std::fmt::Debug>(e: &Error<E>) -> Ending {
    match e {
        Error::Timeout { .. } => Ending::Timeout,
        Error::Exhausted { .. } => Ending::Exhausted,
        Error::Fetch(_) => Ending::Fetch,
        Error::AttemptTimeout { .. } => Ending::AttemptTimeout,
        other => Ending::Other(format!("{other:?}")),
    }
}

/// Polls `poller` until it ends or `MAX_REQUESTS` requests were made; checks
/// that an `Err` is the last item. Returns how it ended.
async fn drive<S, E, P>(mut poller: P, recorder: &Recorder) -> Ending
where
    P: futures::Stream<Item = Result<S, Error<E>>> + Unpin,
    E: std::fmt::Debug,
{
    while recorder.len() < MAX_REQUESTS {
        match poller.next().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                assert!(poller.next().await.is_none(), "an Err is the last item");
                return ending(&e);
            }
            None => return Ending::Other("ended without an error".into()),
        }
    }
    Ending::Running
}

/// The documented stop after a request that ended at `end` (the deadline
/// first, then the attempt limit), or `None` to go on.
fn stop_after(
    end: Instant,
    attempts: usize,
    deadline: Option<Instant>,
    max_attempts: Option<u32>,
) -> Option<Ending> {
    if deadline.is_some_and(|d| end >= d) {
        return Some(Ending::Timeout);
    }
    let limit = max_attempts.map(|m| m.max(1) as usize);
    limit.filter(|&m| attempts >= m).map(|_| Ending::Exhausted)
}

/// Checks the deadline over all records: nothing after it, at most the last
/// request at it.
fn check_deadline(records: &[Record], deadline: Option<Instant>) {
    let Some(deadline) = deadline else { return };
    for (i, r) in records.iter().enumerate() {
        assert!(
            r.start <= deadline,
            "request {i} started after the deadline"
        );
        if r.start == deadline {
            assert_eq!(
                i,
                records.len() - 1,
                "request {i} at the deadline is not the last"
            );
        }
    }
}

fn check_monotone(records: &[Record]) {
    for (i, w) in records.windows(2).enumerate() {
        let end = w[0].end.expect("a request ends before the next starts");
        assert!(
            w[0].start <= end && end <= w[1].start,
            "request {} overlaps",
            i + 1
        );
    }
}

// ---------------------------------------------------------------------------
// ShortPoll, fixed delay
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Outcome {
    /// A status, with the server's "ask again in".
    Ok(Option<Duration>),
    /// A transient error, with its "retry after".
    Err(Option<Duration>),
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => any_hint().prop_map(Outcome::Ok),
        2 => any_hint().prop_map(Outcome::Err),
    ]
}

#[derive(Clone, Debug)]
struct ShortSetup {
    interval: Duration,
    jitter: Jitter,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    backoff: BackoffSetup,
    hint_bounds: Option<(Duration, Duration)>,
    /// Start jitter: the first request waits up to this.
    stagger: Option<Duration>,
    /// `(latency, outcome)` of each request; later ones answer `Ok` at once.
    script: Vec<(Duration, Outcome)>,
    seed: u64,
}

fn any_short() -> impl Strategy<Value = ShortSetup> {
    (
        (any_duration(), any_jitter(), any_timeout()),
        (
            prop::option::weighted(0.3, any_duration()),
            any_max_attempts(),
        ),
        (
            any_backoff(),
            any_bounds(),
            prop::option::weighted(0.3, any_duration()),
        ),
        prop::collection::vec((any_latency(), any_outcome()), 1..120),
        any::<u64>(),
    )
        .prop_map(
            |(
                (interval, jitter, timeout),
                (attempt_timeout, max_attempts),
                (backoff, hint_bounds, stagger),
                script,
                seed,
            )| ShortSetup {
                interval,
                jitter,
                timeout,
                attempt_timeout,
                max_attempts,
                backoff,
                hint_bounds,
                stagger,
                script,
                seed,
            },
        )
}

type StatusFuture = Pin<Box<dyn Future<Output = Result<Option<Duration>, Unavailable>>>>;

fn short_fetch(
    recorder: &Recorder,
    script: &[(Duration, Outcome)],
) -> impl FnMut() -> StatusFuture {
    let recorder = recorder.clone();
    let script = script.to_vec();
    move || {
        let (i, guard) = recorder.start();
        let (latency, outcome) = script
            .get(i)
            .cloned()
            .unwrap_or((Duration::ZERO, Outcome::Ok(None)));
        Box::pin(async move {
            tokio::time::sleep(latency).await;
            guard.complete();
            match outcome {
                Outcome::Ok(hint) => Ok(hint),
                Outcome::Err(hint) => Err(Unavailable(hint)),
            }
        })
    }
}

fn run_short(setup: &ShortSetup, cadence: Cadence) -> (Instant, Vec<Record>, Ending) {
    paused_runtime().block_on(async {
        let recorder = Recorder::default();
        let mut poller = ShortPoll::new(short_fetch(&recorder, &setup.script))
            .interval(setup.interval)
            .cadence(cadence)
            .jitter(setup.jitter)
            .backoff(setup.backoff.build())
            .poll_after(|hint: &Option<Duration>| *hint)
            .retry_after(|e: &Unavailable| e.0)
            .seed(setup.seed);
        if let Some(t) = setup.timeout {
            poller = poller.timeout(t);
        }
        if let Some(t) = setup.attempt_timeout {
            poller = poller.attempt_timeout(t);
        }
        if let Some(n) = setup.max_attempts {
            poller = poller.max_attempts(n);
        }
        if let Some((min, max)) = setup.hint_bounds {
            poller = poller.hint_bounds(min, max);
        }
        if let Some(max) = setup.stagger {
            poller = poller.stagger(max);
        }
        let t0 = Instant::now();
        let how = drive(poller, &recorder).await;
        (t0, recorder.records(), how)
    })
}

fn check_short(setup: &ShortSetup, t0: Instant, records: &[Record], how: &Ending) {
    let deadline = setup.timeout.and_then(|t| t0.checked_add(t));
    let bounds = setup.hint_bounds.unwrap_or(HINT_BOUNDS);
    check_monotone(records);
    check_deadline(records, deadline);
    // The first request goes out at once, or up to the stagger later.
    let stagger = setup.stagger.unwrap_or(Duration::ZERO);
    assert_next(
        records[0].start,
        t0,
        far((Duration::ZERO, stagger)),
        deadline,
        "the first request",
    );
    let mut errors = 0u32;
    for (i, r) in records.iter().enumerate() {
        let Some(end) = r.end else {
            assert_eq!(
                i,
                records.len() - 1,
                "only the last request can be in flight"
            );
            return;
        };
        let outcome = match (&setup.script.get(i), r.completed) {
            (_, false) => Outcome::Err(None), // timed out: a transient error
            (Some((_, o)), true) => o.clone(),
            (None, true) => Outcome::Ok(None),
        };
        let planned = match outcome {
            Outcome::Ok(hint) => {
                errors = 0;
                match hint {
                    Some(h) => (clamp_hint(h, bounds), clamp_hint(h, bounds)),
                    None => interval_bounds(setup.jitter, setup.interval),
                }
            }
            Outcome::Err(_) if !r.completed && deadline.is_some_and(|d| end >= d) => {
                // A request cut at or past the deadline (by its own limit or
                // the deadline's grace) is the deadline passing.
                assert_eq!(how, &Ending::Timeout, "request {i} cut past the deadline");
                assert_eq!(i, records.len() - 1, "no request after the deadline");
                return;
            }
            Outcome::Err(hint) => {
                let step = errors;
                errors += 1;
                if step >= setup.backoff.max_retries {
                    let want = if r.completed {
                        Ending::Fetch
                    } else {
                        Ending::AttemptTimeout
                    };
                    assert_eq!(how, &want, "retries ran out after request {i}");
                    assert_eq!(i, records.len() - 1, "no request after the retries ran out");
                    return;
                }
                let backoff = setup.backoff.bounds(step);
                hint.map_or(backoff, |h| (clamp_hint(h, bounds), clamp_hint(h, bounds)))
            }
        };
        if let Some(stop) = stop_after(end, i + 1, deadline, setup.max_attempts) {
            assert_eq!(how, &stop, "after request {i}");
            assert_eq!(i, records.len() - 1, "no request after the {stop:?}");
            return;
        }
        let Some(next) = records.get(i + 1) else {
            assert_eq!(how, &Ending::Running);
            return;
        };
        assert_next(
            next.start,
            end,
            far(planned),
            deadline,
            &format!("after request {i}"),
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn short_poll_gaps_stay_within_the_documented_bounds(setup in any_short()) {
        let (t0, records, how) = run_short(&setup, Cadence::FixedDelay);
        check_short(&setup, t0, &records, &how);
    }
}

// ---------------------------------------------------------------------------
// ShortPoll, fixed rate: the grid
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// With every request succeeding, each start is the request's tick moved
    /// by the jitter (never before the previous response ended); ticks stay on
    /// the grid `t0 + k × interval`, and ticks a slow response missed are
    /// skipped, not made up in a burst.
    #[test]
    fn fixed_rate_stays_on_the_grid(
        interval_ms in 1u64..5_000,
        jitter in any_jitter(),
        latencies in prop::collection::vec(
            prop_oneof![Just(0.0), 0.0f64..1.0, 0.9f64..3.5],
            1..150,
        ),
        seed in any::<u64>(),
    ) {
        let interval = Duration::from_millis(interval_ms);
        let script: Vec<_> = latencies
            .iter()
            .map(|&f| (interval.mul_f64(f), Outcome::Ok(None)))
            .collect();
        let setup = ShortSetup {
            interval,
            jitter,
            timeout: None,
            attempt_timeout: None,
            max_attempts: None,
            backoff: BackoffSetup {
                base: Duration::ZERO,
                factor: 1.0,
                max_delay: Duration::ZERO,
                jitter: Jitter::None,
                max_retries: 0,
            },
            hint_bounds: None,
            stagger: None,
            script,
            seed,
        };
        let (t0, records, _) = run_short(&setup, Cadence::FixedRate);
        check_monotone(&records);
        let (lo, hi) = interval_bounds(jitter, interval);
        let mut tick = t0;
        for (i, w) in records.windows(2).enumerate() {
            let end = w[0].end.unwrap();
            tick += interval;
            while tick < end {
                tick += interval;
            }
            // The jitter moves the request around its tick: by `delay - interval`.
            let early = (tick + lo).checked_sub(interval).unwrap().max(end);
            let late = (tick + hi).checked_sub(interval).unwrap().max(end);
            let slack = Duration::from_nanos(64);
            prop_assert!(
                w[1].start + slack >= early && w[1].start <= late + TICK + slack,
                "request {}: {:?} after t0, tick at {:?}, expected [{:?}, {:?}]",
                i + 1, w[1].start - t0, tick - t0, early - t0, late - t0
            );
            if jitter == Jitter::None {
                prop_assert_eq!(w[1].start, tick, "no drift without jitter");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// LongPoll
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum LongOutcome {
    Changed,
    Unchanged,
    Advanced,
    Reset,
    Err(Option<Duration>),
}

#[derive(Clone, Debug)]
struct LongSetup {
    wait: Duration,
    burst: u32,
    period: Duration,
    jitter: Jitter,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    backoff: BackoffSetup,
    hint_bounds: Option<(Duration, Duration)>,
    script: Vec<(Duration, LongOutcome)>,
    seed: u64,
}

fn any_long() -> impl Strategy<Value = LongSetup> {
    let outcome = prop_oneof![
        3 => Just(LongOutcome::Changed),
        3 => Just(LongOutcome::Unchanged),
        1 => Just(LongOutcome::Advanced),
        1 => Just(LongOutcome::Reset),
        2 => any_hint().prop_map(LongOutcome::Err),
    ];
    let period = prop_oneof![
        1 => Just(Duration::ZERO),
        4 => (1u64..3_000).prop_map(Duration::from_millis),
        1 => Just(years(100)),
    ];
    (
        (any_duration(), 0u32..4, period, any_jitter()),
        (
            any_timeout(),
            prop::option::weighted(0.3, any_duration()),
            any_max_attempts(),
        ),
        (any_backoff(), any_bounds()),
        prop::collection::vec((any_latency(), outcome), 1..120),
        any::<u64>(),
    )
        .prop_map(
            |(
                (wait, burst, period, jitter),
                (timeout, attempt_timeout, max_attempts),
                (backoff, hint_bounds),
                script,
                seed,
            )| LongSetup {
                wait,
                burst,
                period,
                jitter,
                timeout,
                attempt_timeout,
                max_attempts,
                backoff,
                hint_bounds,
                script,
                seed,
            },
        )
}

type ReplyFuture = Pin<Box<dyn Future<Output = Result<Reply<u32, u32>, Unavailable>>>>;

/// Runs a long poller; returns t0, the records, each request's `wait()` and
/// `attempt()`, and how it ended.
fn run_long(setup: &LongSetup) -> (Instant, Vec<Record>, Vec<(Duration, u32)>, Ending) {
    paused_runtime().block_on(async {
        let recorder = Recorder::default();
        let asked = Rc::new(RefCell::new(Vec::new()));
        let (r, a, script) = (recorder.clone(), asked.clone(), setup.script.clone());
        let fetch = move |req: Request<u32>| -> ReplyFuture {
            let (i, guard) = r.start();
            a.borrow_mut().push((req.wait(), req.attempt()));
            let (latency, outcome) = script
                .get(i)
                .cloned()
                .unwrap_or((Duration::ZERO, LongOutcome::Changed));
            let n = i as u32;
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                guard.complete();
                match outcome {
                    LongOutcome::Changed => Ok(Reply::changed(n, n)),
                    LongOutcome::Unchanged => Ok(Reply::unchanged()),
                    LongOutcome::Advanced => Ok(Reply::advanced(n)),
                    LongOutcome::Reset => Ok(Reply::reset()),
                    LongOutcome::Err(hint) => Err(Unavailable(hint)),
                }
            })
        };
        let mut poller = LongPoll::new(fetch)
            .wait(setup.wait)
            .rate_limit(setup.burst, setup.period)
            .jitter(setup.jitter)
            .backoff(setup.backoff.build())
            .retry_after(|e: &Unavailable| e.0)
            .seed(setup.seed);
        if let Some(t) = setup.timeout {
            poller = poller.timeout(t);
        }
        if let Some(t) = setup.attempt_timeout {
            poller = poller.attempt_timeout(t);
        }
        if let Some(n) = setup.max_attempts {
            poller = poller.max_attempts(n);
        }
        if let Some((min, max)) = setup.hint_bounds {
            poller = poller.hint_bounds(min, max);
        }
        let t0 = Instant::now();
        let how = drive(poller, &recorder).await;
        let asked = asked.borrow().clone();
        (t0, recorder.records(), asked, how)
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn long_poll_gaps_stay_within_the_documented_bounds(setup in any_long()) {
        let (t0, records, asked, how) = run_long(&setup);
        let deadline = setup.timeout.and_then(|t| t0.checked_add(t));
        let bounds = setup.hint_bounds.unwrap_or(HINT_BOUNDS);
        check_monotone(&records);
        check_deadline(&records, deadline);
        // The bucket: no wait for a token is longer than the refill period
        // spread by the jitter's upper bound.
        let (_, token_hi) = interval_bounds(setup.jitter, setup.period);
        let (mut errors, mut quick) = (0u32, 0u32);
        for (i, r) in records.iter().enumerate() {
            // The server is asked to hold the request for the wait, never past
            // the deadline; requests count from 1.
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(r.start));
            prop_assert_eq!(asked[i], (setup.wait.min(left), i as u32 + 1));
            let Some(end) = r.end else {
                prop_assert_eq!(i, records.len() - 1);
                break;
            };
            let outcome = match (setup.script.get(i), r.completed) {
                (_, false) => LongOutcome::Err(None),
                (Some((_, o)), true) => o.clone(),
                (None, true) => LongOutcome::Changed,
            };
            let planned = match outcome {
                LongOutcome::Err(_) if !r.completed && deadline.is_some_and(|d| end >= d) => {
                    // Cut at or past the deadline: the deadline passing.
                    prop_assert_eq!(&how, &Ending::Timeout);
                    prop_assert_eq!(i, records.len() - 1);
                    break;
                }
                LongOutcome::Err(hint) => {
                    let step = errors;
                    errors += 1;
                    if step >= setup.backoff.max_retries {
                        let want = if r.completed { Ending::Fetch } else { Ending::AttemptTimeout };
                        prop_assert_eq!(&how, &want);
                        prop_assert_eq!(i, records.len() - 1);
                        break;
                    }
                    far(hint.map_or(setup.backoff.bounds(step), |h| {
                        (clamp_hint(h, bounds), clamp_hint(h, bounds))
                    }))
                }
                LongOutcome::Unchanged
                    if end - r.start < (asked[i].0 / 10).min(Duration::from_secs(1)) =>
                {
                    // An empty reply much faster than the wait: backoff that
                    // never ends polling on its own.
                    let step = quick;
                    quick += 1;
                    far(setup.backoff.bounds(step))
                }
                _ => {
                    errors = 0;
                    quick = 0;
                    // Not capped at thirty years: the bucket's own instant.
                    (Duration::ZERO, token_hi)
                }
            };
            if let Some(stop) = stop_after(end, i + 1, deadline, setup.max_attempts) {
                prop_assert_eq!(&how, &stop, "after request {}", i);
                prop_assert_eq!(i, records.len() - 1);
                break;
            }
            let Some(next) = records.get(i + 1) else {
                prop_assert_eq!(&how, &Ending::Running);
                break;
            };
            assert_next(next.start, end, planned, deadline, &format!("after request {i}"));
        }
    }
}

// ---------------------------------------------------------------------------
// SseStream: reconnect delays and resume
// ---------------------------------------------------------------------------

/// `retry` values a server might send, valid or not.
const RETRIES: [&str; 10] = [
    "0",
    "1",
    "250",
    "3000",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "abc",
    "-5",
    "",
];

#[derive(Clone, Debug)]
enum ConnEnd {
    /// The body ends cleanly.
    Close,
    /// The body fails with this "retry after".
    Fail(Option<Duration>),
}

#[derive(Clone, Debug)]
struct Conn {
    /// `Some(hint)`: the connection is refused with this "retry after".
    refused: Option<Option<Duration>>,
    latency: Duration,
    retry: Option<usize>,
    events: u8,
    /// A cut block follows the events (its `id` must not be resumed from).
    partial: bool,
    end: ConnEnd,
}

#[derive(Clone, Debug)]
struct SseSetup {
    reconnect_time: Duration,
    jitter: Jitter,
    timeout: Option<Duration>,
    max_attempts: Option<u32>,
    backoff: BackoffSetup,
    hint_bounds: Option<(Duration, Duration)>,
    conns: Vec<Conn>,
    seed: u64,
}

fn any_sse() -> impl Strategy<Value = SseSetup> {
    let end = prop_oneof![
        3 => Just(ConnEnd::Close),
        1 => any_hint().prop_map(ConnEnd::Fail),
    ];
    let conn = (
        prop::option::weighted(0.25, any_hint()),
        prop_oneof![
            Just(Duration::ZERO),
            (1u64..100).prop_map(Duration::from_millis)
        ],
        prop::option::weighted(0.4, 0..RETRIES.len()),
        0u8..3,
        any::<bool>(),
        end,
    )
        .prop_map(|(refused, latency, retry, events, partial, end)| Conn {
            refused,
            latency,
            retry,
            events,
            partial,
            end,
        });
    (
        (
            any_duration(),
            any_jitter(),
            any_timeout(),
            any_max_attempts(),
        ),
        (any_backoff(), any_bounds()),
        prop::collection::vec(conn, 1..100),
        any::<u64>(),
    )
        .prop_map(
            |(
                (reconnect_time, jitter, timeout, max_attempts),
                (backoff, hint_bounds),
                conns,
                seed,
            )| {
                SseSetup {
                    reconnect_time,
                    jitter,
                    timeout,
                    max_attempts,
                    backoff,
                    hint_bounds,
                    conns,
                    seed,
                }
            },
        )
}

type Body = LocalBoxStream<'static, Result<Vec<u8>, Unavailable>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Body, Unavailable>>>>;

/// What the scripted server saw: per connection, the `Last-Event-ID` and the
/// instant the body was dropped (or the refusal came).
type Seen = Rc<RefCell<Vec<Option<String>>>>;

fn run_sse(setup: &SseSetup) -> (Instant, Vec<Record>, Vec<Option<String>>, Vec<u64>, Ending) {
    paused_runtime().block_on(async {
        let recorder = Recorder::default();
        let seen: Seen = Rc::default();
        let (r, s, conns) = (recorder.clone(), seen.clone(), setup.conns.clone());
        let connect = move |last: Option<String>| -> ConnectFuture {
            let (i, guard) = r.start();
            s.borrow_mut().push(last.clone());
            let conn = conns.get(i).cloned().unwrap_or(Conn {
                refused: None,
                latency: Duration::ZERO,
                retry: None,
                events: 1,
                partial: false,
                end: ConnEnd::Close,
            });
            let from = last.map_or(1, |id| id.parse::<u64>().expect("a numeric id") + 1);
            Box::pin(async move {
                tokio::time::sleep(conn.latency).await;
                guard.complete();
                if let Some(hint) = conn.refused {
                    // The guard drops here: the connection ends with the refusal.
                    return Err(Unavailable(hint));
                }
                let mut text = String::new();
                if let Some(r) = conn.retry {
                    text += &format!("retry: {}\n", RETRIES[r]);
                }
                for n in from..from + u64::from(conn.events) {
                    text += &format!("id: {n}\ndata: event {n}\n\n");
                }
                if conn.partial {
                    text += "id: 999999\ndata: cut";
                }
                let chunks: Vec<Result<Vec<u8>, Unavailable>> =
                    text.as_bytes().chunks(7).map(|c| Ok(c.to_vec())).collect();
                let tail: Body = match conn.end {
                    ConnEnd::Close => stream::empty().boxed_local(),
                    ConnEnd::Fail(hint) => stream::iter([Err(Unavailable(hint))]).boxed_local(),
                };
                // The body keeps the guard: the connection ends when it drops.
                let body = stream::iter(chunks).chain(tail).map(move |c| {
                    let _keep = &guard;
                    c
                });
                Ok(body.boxed_local())
            })
        };
        let mut stream = SseStream::new(connect)
            .reconnect_time(setup.reconnect_time)
            .jitter(setup.jitter)
            .backoff(setup.backoff.build())
            .retry_after(|e: &Unavailable| e.0)
            .seed(setup.seed);
        if let Some(t) = setup.timeout {
            stream = stream.timeout(t);
        }
        if let Some(n) = setup.max_attempts {
            stream = stream.max_attempts(n);
        }
        if let Some((min, max)) = setup.hint_bounds {
            stream = stream.hint_bounds(min, max);
        }
        let t0 = Instant::now();
        let mut ids = Vec::new();
        let how = loop {
            if recorder.len() >= MAX_REQUESTS {
                break Ending::Running;
            }
            match stream.next().await {
                Some(Ok(event)) => ids.push(event.last_event_id().parse::<u64>().unwrap()),
                Some(Err(e)) => {
                    assert!(stream.next().await.is_none(), "an Err is the last item");
                    break ending(&e);
                }
                None => break Ending::Other("ended without an error".into()),
            }
        };
        let seen = seen.borrow().clone();
        (t0, recorder.records(), seen, ids, how)
    })
}

/// The reconnection time the parser has after the `retry` lines so far.
fn parse_retry(value: &str) -> Option<Duration> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(Duration::from_millis)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sse_reconnects_stay_within_the_documented_bounds(setup in any_sse()) {
        let (t0, records, seen, ids, how) = run_sse(&setup);
        let deadline = setup.timeout.and_then(|t| t0.checked_add(t));
        let bounds = setup.hint_bounds.unwrap_or(HINT_BOUNDS);
        check_monotone(&records);
        check_deadline(&records, deadline);
        // Every event exactly once, in order, and each connection resumes
        // from the last complete one.
        let want: Vec<u64> = (1..=ids.len() as u64).collect();
        prop_assert_eq!(&ids, &want);
        let default_conn = Conn {
            refused: None,
            latency: Duration::ZERO,
            retry: None,
            events: 1,
            partial: false,
            end: ConnEnd::Close,
        };
        let (mut errors, mut empties, mut delivered_total) = (0u32, 0u32, 0u64);
        let mut retry: Option<Duration> = None;
        for (i, r) in records.iter().enumerate() {
            let resume = (delivered_total > 0).then(|| delivered_total.to_string());
            prop_assert_eq!(&seen[i], &resume, "Last-Event-ID of connection {}", i);
            let Some(end) = r.end else {
                prop_assert_eq!(i, records.len() - 1);
                break;
            };
            let conn = setup.conns.get(i).unwrap_or(&default_conn);
            let delivered = conn.refused.is_none() && conn.events > 0;
            if conn.refused.is_none() {
                if let Some(v) = conn.retry.and_then(|r| parse_retry(RETRIES[r])) {
                    retry = Some(v);
                }
                delivered_total += u64::from(conn.events);
            }
            let base = retry.map_or(setup.reconnect_time, |r| clamp_hint(r, bounds));
            let failed = match (&conn.refused, &conn.end) {
                (Some(hint), _) | (None, ConnEnd::Fail(hint)) => Some(*hint),
                (None, ConnEnd::Close) => None,
            };
            if delivered {
                errors = 0;
                empties = 0;
            }
            let planned = match failed {
                Some(hint) => {
                    let step = errors;
                    errors += 1;
                    if step >= setup.backoff.max_retries {
                        prop_assert_eq!(&how, &Ending::Fetch);
                        prop_assert_eq!(i, records.len() - 1);
                        break;
                    }
                    match hint {
                        Some(h) => (clamp_hint(h, bounds), clamp_hint(h, bounds)),
                        None if step == 0 => interval_bounds(setup.jitter, base),
                        None => {
                            let (lo, hi) = setup.backoff.bounds(step);
                            let (lo, _) = interval_bounds(setup.jitter, base.max(lo));
                            let (_, hi) = interval_bounds(setup.jitter, base.max(hi));
                            (lo, hi)
                        }
                    }
                }
                None if delivered => interval_bounds(setup.jitter, base),
                None => {
                    // A quiet connection: the reconnection time, then growing.
                    let step = empties;
                    empties += 1;
                    let d = match step.checked_sub(1) {
                        None => base,
                        Some(s) => base.max(setup.backoff.build().delay(s)),
                    };
                    interval_bounds(setup.jitter, d)
                }
            };
            if let Some(stop) = stop_after(end, i + 1, deadline, setup.max_attempts) {
                prop_assert_eq!(&how, &stop, "after connection {}", i);
                prop_assert_eq!(i, records.len() - 1);
                break;
            }
            let Some(next) = records.get(i + 1) else {
                prop_assert_eq!(&how, &Ending::Running);
                break;
            };
            assert_next(next.start, end, far(planned), deadline, &format!("after connection {i}"));
        }
    }
}
