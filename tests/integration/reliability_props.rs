//! Property tests of the schedule through the public API, on tokio's paused
//! clock: arbitrary intervals (0, 1 ns, huge, `Duration::MAX`), jitter kinds
//! and fractions (NaN, negative, above 1), backoff settings (factor huge or
//! NaN, base above the cap, retry limits, time bounds), per-request and
//! overall timeouts, attempt limits, start jitter, rate limits and server
//! hints, against scripted servers.
//!
//! For every request the test records when it started and ended, then checks
//! it against reference models of the documented rules
//! (src/schedule/{jitter,backoff,streak,bucket}.rs, src/builder.rs,
//! src/long/mod.rs, src/sse/stream.rs):
//! - the request instants are monotone, and a request never starts before
//!   the previous one ended;
//! - every gap lies in the documented bounds for what happened: an interval
//!   spread by the jitter; the backoff's nominal delay spread by its jitter
//!   (decorrelated jitter growing from the base at the start of each error
//!   streak); a hint clamped to the hint bounds and spread above, up to a
//!   fifth more; SSE's reconnection time spread above by the jitter; at once
//!   after a long-poll reply (a quick reply without progress backing off);
//!   the long-poll rate limit as a ceiling on every start; each wait capped
//!   at about thirty years and at the deadline;
//! - an error streak gives up when its unhinted failures ran out of retries,
//!   or at the first failure that comes `give_up_after` or more after the
//!   streak's first failure (hinted ones count toward the time only);
//! - no request starts after the deadline, and at most one (the last) at it;
//! - the poller ends with the error the first limit reached calls for (a
//!   request cut at or past the deadline ends it with `Timeout`), carrying
//!   the last error of a failing streak;
//! - the long poller asks for the documented wait, with the cursor threaded
//!   from reply to reply, and lowers it as the path's learned limit says;
//! - `Stats` counts every request and every failed one, the last included.
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
use pollkit::{Backoff, Cadence, Error, Jitter, LongPoll, ShortPoll, SseStream, Stats};
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
/// A server hint is waited in full and spread up to this share above it.
const HINT_SPREAD: f64 = 0.2;
/// `Backoff`'s default time bound on an error streak.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);
/// The shortest SSE reconnection time a user may set.
const MIN_RECONNECT: Duration = Duration::from_millis(100);
/// A long-poll failure faster than this is a refusal, not a cut by the path.
const MIN_CUT: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------
// The documented bounds
// ---------------------------------------------------------------------------

/// A duration as pollkit draws it: in whole nanoseconds, saturating at
/// `u64::MAX`.
fn saturate(d: Duration) -> Duration {
    d.min(Duration::from_nanos(u64::MAX))
}

/// A proportional jitter's fraction: clamped into `0..=1`, NaN counting as 0.
fn fraction(f: f64) -> f64 {
    if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) }
}

/// `[lo, hi]` of the delay a jitter draws for the nominal delay `d`, as
/// documented on `Jitter`; `decorrelated` is `(low, high)` of the draw for
/// `Jitter::Decorrelated` (see [`interval_bounds`], [`BackoffSetup::bounds`]).
fn jitter_bounds(
    jitter: Jitter,
    d: Duration,
    decorrelated: (Duration, Duration),
) -> (Duration, Duration) {
    let (lo, hi) = match jitter {
        Jitter::None => (d, d),
        Jitter::Proportional(f) => {
            let f = fraction(f);
            if f == 0.0 {
                (d, d)
            } else {
                let n = saturate(d).as_nanos() as f64;
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
    (saturate(lo), saturate(hi))
}

/// An interval `d` spread by the jitter; decorrelated jitter stays within
/// half an interval of it.
fn interval_bounds(jitter: Jitter, d: Duration) -> (Duration, Duration) {
    jitter_bounds(jitter, d, (d / 2, d.saturating_add(d / 2)))
}

/// `[lo, hi]` of `Jitter::above(d)`: never below `d`, spread above it by the
/// width of the kind's range (`d × f` for `Proportional(f)`, `d` for `Full`,
/// `d / 2` for `Equal` and `Decorrelated`), in whole nanoseconds, saturating.
fn above_bounds(jitter: Jitter, d: Duration) -> (Duration, Duration) {
    let extra = match jitter {
        Jitter::None => Duration::ZERO,
        Jitter::Proportional(f) => {
            Duration::from_nanos((saturate(d).as_nanos() as f64 * fraction(f)) as u64)
        }
        Jitter::Full => d,
        Jitter::Equal | Jitter::Decorrelated => d / 2,
        other => panic!("a new jitter kind: {other:?}"),
    };
    (d, d.saturating_add(saturate(extra)))
}

/// A server hint clamped to the hint bounds, then spread above by a fifth.
fn hint_bounds(h: Duration, bounds: (Duration, Duration)) -> (Duration, Duration) {
    above_bounds(Jitter::Proportional(HINT_SPREAD), clamp_hint(h, bounds))
}

/// Backoff as its builder sets it, kept for the bounds.
#[derive(Clone, Debug)]
struct BackoffSetup {
    base: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    /// `None`: no limit (the default).
    max_retries: Option<u32>,
    /// `None`: the default time bound.
    give_up_after: Option<Duration>,
}

impl BackoffSetup {
    fn build(&self) -> Backoff {
        let mut backoff = Backoff::new()
            .base(self.base)
            .factor(self.factor)
            .max_delay(self.max_delay)
            .jitter(self.jitter);
        if let Some(n) = self.max_retries {
            backoff = backoff.max_retries(n);
        }
        if let Some(d) = self.give_up_after {
            backoff = backoff.give_up_after(d);
        }
        backoff
    }

    /// How long an error streak may last.
    fn time_bound(&self) -> Duration {
        self.give_up_after.unwrap_or(GIVE_UP_AFTER)
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

    /// `[lo, hi]` of the jittered backoff delay for the `step`-th draw of a
    /// streak (from 0). Decorrelated jitter draws from `[low, 3 × previous]`
    /// capped at `high` (`low` the base, at most the cap, `high` the cap),
    /// the first draw of a streak from `[low, 3 × low]`: the `step`-th draw
    /// is at most `low × 3^(step + 1)`, capped.
    fn bounds(&self, step: u32) -> (Duration, Duration) {
        let low = self.base.min(self.max_delay);
        let mut top = low;
        for _ in 0..=step {
            let next = top.saturating_mul(3).min(self.max_delay).max(low);
            if next == top {
                break;
            }
            top = next;
        }
        jitter_bounds(self.jitter, self.nominal(step), (low, top))
    }
}

fn clamp_hint(h: Duration, (min, max): (Duration, Duration)) -> Duration {
    h.max(min.min(max)).min(max.max(min))
}

/// A wait planned through `schedule::later`: capped at about thirty years.
fn far((lo, hi): (Duration, Duration)) -> (Duration, Duration) {
    (lo.min(FAR), hi.min(FAR))
}

/// What a failure in an error streak calls for (`Streak::failed`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// Wait the server's hint (not yet clamped or spread).
    Hinted(Duration),
    /// Back off: the failure's place among the streak's unhinted ones.
    Backoff(u32),
    /// Give up.
    GiveUp,
}

/// The error streak: failures since the last success, as documented on
/// `Backoff` and `Streak`.
#[derive(Clone, Debug, Default)]
struct StreakModel {
    /// Unhinted failures so far: the backoff step and the retry count.
    counted: u32,
    /// The instant of the streak's first failure.
    since: Option<Instant>,
}

impl StreakModel {
    /// A failure at `now`: the time bound first (hinted failures count
    /// toward it), then the hint, then the retry limit.
    ///
    /// A hint past `hint_max`, or past the time the bound has left, gives
    /// up at once (the client will not wait for it in full).
    fn failed(
        &mut self,
        now: Instant,
        hint: Option<Duration>,
        backoff: &BackoffSetup,
        (a, b): (Duration, Duration),
    ) -> Verdict {
        // The bounds are given in either order.
        let (min, max) = (a.min(b), a.max(b));
        if hint.is_some_and(|h| h > max) {
            return Verdict::GiveUp;
        }
        let since = *self.since.get_or_insert(now);
        if now - since >= backoff.time_bound() {
            return Verdict::GiveUp;
        }
        if let Some(h) = hint {
            let h = h.max(min);
            let left = backoff.time_bound().saturating_sub(now - since);
            if h > left {
                return Verdict::GiveUp;
            }
            return Verdict::Hinted(h);
        }
        let step = self.counted;
        self.counted = self.counted.saturating_add(1);
        if backoff.max_retries.is_some_and(|max| step >= max) {
            return Verdict::GiveUp;
        }
        Verdict::Backoff(step)
    }

    /// A success ends the streak.
    fn reset(&mut self) {
        *self = StreakModel::default();
    }
}

/// `[lo, hi]` of the instant at which a wait planned `[lo, hi]` after `end`
/// is over: capped at the deadline, and up to a timer tick late unless there
/// is no wait at all (then the request goes out at `end` itself).
fn wake(
    end: Instant,
    (lo, hi): (Duration, Duration),
    deadline: Option<Instant>,
) -> (Instant, Instant) {
    let cap = |at: Instant| deadline.map_or(at, |d| at.min(d));
    let (lo, hi) = (cap(end + lo), cap(end + hi));
    (lo, if hi > end { hi + TICK } else { hi })
}

/// Asserts that a request started at `next`, planned `[lo, hi]` after `end`
/// and capped at the deadline.
#[track_caller]
fn assert_next(
    next: Instant,
    end: Instant,
    planned: (Duration, Duration),
    deadline: Option<Instant>,
    what: &str,
) {
    let (lo, hi) = wake(end, planned, deadline);
    assert!(
        next >= lo && next <= hi,
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
    let retries = prop::option::weighted(0.5, prop_oneof![Just(0u32), 1u32..10, Just(u32::MAX)]);
    let give_up_after = prop::option::weighted(
        0.5,
        prop_oneof![
            1 => Just(Duration::ZERO),
            1 => Just(Duration::from_nanos(1)),
            6 => (1u64..60_000).prop_map(Duration::from_millis),
            1 => Just(years(100)),
            1 => Just(Duration::MAX),
        ],
    );
    (
        (any_duration(), factor, any_duration(), any_jitter()),
        (retries, give_up_after),
    )
        .prop_map(
            |((base, factor, max_delay, jitter), (max_retries, give_up_after))| BackoffSetup {
                base,
                factor,
                max_delay,
                jitter,
                max_retries,
                give_up_after,
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
    /// `Error::Timeout`, with its `last_error`.
    Timeout(Option<Unavailable>),
    /// `Error::Exhausted`, with its `last_error`.
    Exhausted(Option<Unavailable>),
    Fetch(Unavailable),
    AttemptTimeout,
    Other(String),
}

fn ending(e: &Error<Unavailable>) -> Ending {
    match e {
        Error::Timeout { last_error, .. } => Ending::Timeout(last_error.clone()),
        Error::Exhausted { last_error, .. } => Ending::Exhausted(last_error.clone()),
        Error::Fetch(e) => Ending::Fetch(e.clone()),
        Error::AttemptTimeout { .. } => Ending::AttemptTimeout,
        other => Ending::Other(format!("{other:?}")),
    }
}

/// Polls `poller` until it ends or `MAX_REQUESTS` requests were made; checks
/// that an `Err` is the last item. Returns how it ended.
async fn drive<S, P>(mut poller: P, recorder: &Recorder) -> Ending
where
    P: futures::Stream<Item = Result<S, Error<Unavailable>>> + Unpin,
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
/// first, then the attempt limit), or `None` to go on; `last_error` is the
/// error of the failing streak, if any.
fn stop_after(
    end: Instant,
    attempts: usize,
    deadline: Option<Instant>,
    max_attempts: Option<u32>,
    last_error: &Option<Unavailable>,
) -> Option<Ending> {
    if deadline.is_some_and(|d| end >= d) {
        return Some(Ending::Timeout(last_error.clone()));
    }
    let limit = max_attempts.map(|m| m.max(1) as usize);
    limit
        .filter(|&m| attempts >= m)
        .map(|_| Ending::Exhausted(last_error.clone()))
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

/// What `Stats` counted: requests, errors, SSE reconnects, waits lowered.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counts {
    requests: u64,
    errors: u64,
    reconnects: u64,
    lowered: u64,
}

impl Counts {
    fn of(stats: &Stats) -> Self {
        Counts {
            requests: stats.requests(),
            errors: stats.errors(),
            reconnects: stats.reconnects(),
            lowered: stats.waits_lowered(),
        }
    }
}

/// Checks `Stats` (when the case gave the poller one): every request, and
/// every failed one (an error or a cut, the one that ended polling
/// included), that ended.
fn check_stats(
    got: Option<Counts>,
    records: &[Record],
    failed: impl Fn(usize, &Record) -> bool,
    reconnects: bool,
    lowered: u64,
) {
    let Some(got) = got else { return };
    let errors = records
        .iter()
        .enumerate()
        .filter(|(i, r)| r.end.is_some() && failed(*i, r))
        .count() as u64;
    let requests = records.len() as u64;
    let want = Counts {
        requests,
        errors,
        reconnects: if reconnects {
            requests.saturating_sub(1)
        } else {
            0
        },
        lowered,
    };
    assert_eq!(got, want, "Stats");
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
    /// Count in a `Stats`.
    stats: bool,
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
        (any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |(
                (interval, jitter, timeout),
                (attempt_timeout, max_attempts),
                (backoff, hint_bounds, stagger),
                script,
                (seed, stats),
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
                stats,
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

fn run_short(
    setup: &ShortSetup,
    cadence: Cadence,
) -> (Instant, Vec<Record>, Option<Counts>, Ending) {
    paused_runtime().block_on(async {
        let recorder = Recorder::default();
        let stats = setup.stats.then(Stats::new);
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
        if let Some(stats) = &stats {
            poller = poller.stats(stats.clone());
        }
        let t0 = Instant::now();
        let how = drive(poller, &recorder).await;
        (t0, recorder.records(), stats.as_ref().map(Counts::of), how)
    })
}

/// The outcome request `i` had: scripted, `Ok` past the script, a transient
/// error without a hint when its per-request timeout cut it.
fn short_outcome(setup: &ShortSetup, i: usize, r: &Record) -> Outcome {
    match (setup.script.get(i), r.completed) {
        (_, false) => Outcome::Err(None),
        (Some((_, o)), true) => o.clone(),
        (None, true) => Outcome::Ok(None),
    }
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
    let mut streak = StreakModel::default();
    // The error of the failing streak (a cut carries none: the last one stays).
    let mut last_error: Option<Unavailable> = None;
    for (i, r) in records.iter().enumerate() {
        let Some(end) = r.end else {
            assert_eq!(
                i,
                records.len() - 1,
                "only the last request can be in flight"
            );
            return;
        };
        let planned = match short_outcome(setup, i, r) {
            Outcome::Ok(hint) => {
                streak.reset();
                last_error = None;
                match hint {
                    Some(h) => hint_bounds(h, bounds),
                    None => interval_bounds(setup.jitter, setup.interval),
                }
            }
            Outcome::Err(_) if !r.completed && deadline.is_some_and(|d| end >= d) => {
                // A request cut at or past the deadline (by its own limit or
                // the deadline's grace) is the deadline passing.
                assert_eq!(
                    how,
                    &Ending::Timeout(last_error),
                    "request {i} cut past the deadline"
                );
                assert_eq!(i, records.len() - 1, "no request after the deadline");
                return;
            }
            Outcome::Err(hint) => match streak.failed(end, hint, &setup.backoff, bounds) {
                Verdict::GiveUp => {
                    let want = if r.completed {
                        Ending::Fetch(Unavailable(hint))
                    } else {
                        Ending::AttemptTimeout
                    };
                    assert_eq!(how, &want, "the streak gave up after request {i}");
                    assert_eq!(i, records.len() - 1, "no request after giving up");
                    return;
                }
                verdict => {
                    if r.completed {
                        last_error = Some(Unavailable(hint));
                    }
                    match verdict {
                        Verdict::Hinted(h) => hint_bounds(h, bounds),
                        Verdict::Backoff(step) => setup.backoff.bounds(step),
                        Verdict::GiveUp => unreachable!(),
                    }
                }
            },
        };
        if let Some(stop) = stop_after(end, i + 1, deadline, setup.max_attempts, &last_error) {
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
        let (t0, records, stats, how) = run_short(&setup, Cadence::FixedDelay);
        check_short(&setup, t0, &records, &how);
        let failed = |i, r: &Record| matches!(short_outcome(&setup, i, r), Outcome::Err(_));
        check_stats(stats, &records, failed, false, 0);
    }
}

/// The documented defaults of `Backoff`.
#[test]
fn backoff_defaults_are_documented() {
    let documented = Backoff::new()
        .base(Duration::from_secs(1))
        .factor(2.0)
        .max_delay(Duration::from_secs(30))
        .jitter(Jitter::Equal)
        .give_up_after(GIVE_UP_AFTER);
    assert_eq!(Backoff::new(), documented);
    assert_eq!(Backoff::default(), documented);
    assert_eq!(Backoff::new().retries(), None);
    assert_eq!(Backoff::new().time_bound(), GIVE_UP_AFTER);
    assert_eq!(Backoff::new().max_retries(3).retries(), Some(3));
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
                max_retries: Some(0),
                give_up_after: None,
            },
            hint_bounds: None,
            stagger: None,
            script,
            seed,
            stats: false,
        };
        let (t0, records, _, _) = run_short(&setup, Cadence::FixedRate);
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
            prop_assert!(
                w[1].start >= early && w[1].start <= late + TICK,
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
    /// A status with a cursor: a new one, or (`true`) the request's own.
    Changed(bool),
    Unchanged,
    /// A cursor without a status: a new one, or (`true`) the request's own.
    Advanced(bool),
    Reset,
    Err(Option<Duration>),
}

#[derive(Clone, Debug)]
struct LongSetup {
    wait: Duration,
    /// `rate_limit(burst, period)`, if set.
    rate: Option<(u32, Duration)>,
    jitter: Jitter,
    timeout: Option<Duration>,
    attempt_timeout: Option<Duration>,
    max_attempts: Option<u32>,
    backoff: BackoffSetup,
    hint_bounds: Option<(Duration, Duration)>,
    script: Vec<(Duration, LongOutcome)>,
    seed: u64,
    /// Count in a `Stats`.
    stats: bool,
}

fn any_long() -> impl Strategy<Value = LongSetup> {
    let outcome = prop_oneof![
        2 => Just(LongOutcome::Changed(false)),
        1 => Just(LongOutcome::Changed(true)),
        3 => Just(LongOutcome::Unchanged),
        1 => Just(LongOutcome::Advanced(false)),
        1 => Just(LongOutcome::Advanced(true)),
        1 => Just(LongOutcome::Reset),
        2 => any_hint().prop_map(LongOutcome::Err),
    ];
    // Besides the usual latencies, failures a path might cut at: a second
    // or more, some close to each other.
    let latency = prop_oneof![
        5 => any_latency(),
        1 => (1_000u64..12_000).prop_map(Duration::from_millis),
    ];
    // Periods beyond "never" (30 years) included: they must still allow
    // only the burst.
    let period = prop_oneof![
        4 => (1u64..3_000).prop_map(Duration::from_millis),
        1 => Just(years(29)),
        1 => Just(years(100)),
    ];
    let wait = prop_oneof![
        3 => any_duration(),
        2 => (1_000u64..40_000).prop_map(Duration::from_millis),
    ];
    (
        (
            wait,
            prop::option::weighted(0.4, (0u32..4, period)),
            any_jitter(),
        ),
        (
            any_timeout(),
            prop::option::weighted(0.3, any_duration()),
            any_max_attempts(),
        ),
        (any_backoff(), any_bounds()),
        prop::collection::vec((latency, outcome), 1..120),
        (any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |(
                (wait, rate, jitter),
                (timeout, attempt_timeout, max_attempts),
                (backoff, hint_bounds),
                script,
                (seed, stats),
            )| LongSetup {
                wait,
                rate,
                jitter,
                timeout,
                attempt_timeout,
                max_attempts,
                backoff,
                hint_bounds,
                script,
                seed,
                stats,
            },
        )
}

type ReplyFuture = Pin<Box<dyn Future<Output = Result<Reply<u32, u32>, Unavailable>>>>;

/// What request `i` asked for: `wait()`, `attempt()` and `cursor()`.
type Asked = (Duration, u32, Option<u32>);

/// Runs a long poller; returns t0, the records, what each request asked
/// for, the stats and how it ended. Reply `i` carries the cursor `i` (or
/// the request's own, scripted so).
fn run_long(setup: &LongSetup) -> (Instant, Vec<Record>, Vec<Asked>, Option<Counts>, Ending) {
    paused_runtime().block_on(async {
        let recorder = Recorder::default();
        let stats = setup.stats.then(Stats::new);
        let asked = Rc::new(RefCell::new(Vec::new()));
        let (r, a, script) = (recorder.clone(), asked.clone(), setup.script.clone());
        let fetch = move |req: Request<u32>| -> ReplyFuture {
            let (i, guard) = r.start();
            let cursor = req.cursor().copied();
            a.borrow_mut().push((req.wait(), req.attempt(), cursor));
            let (latency, outcome) = script
                .get(i)
                .cloned()
                .unwrap_or((Duration::ZERO, LongOutcome::Changed(false)));
            let n = i as u32;
            let next = move |same: bool| if same { cursor.unwrap_or(n) } else { n };
            Box::pin(async move {
                tokio::time::sleep(latency).await;
                guard.complete();
                match outcome {
                    LongOutcome::Changed(same) => Ok(Reply::changed(n, next(same))),
                    LongOutcome::Unchanged => Ok(Reply::unchanged()),
                    LongOutcome::Advanced(same) => Ok(Reply::advanced(next(same))),
                    LongOutcome::Reset => Ok(Reply::reset()),
                    LongOutcome::Err(hint) => Err(Unavailable(hint)),
                }
            })
        };
        let mut poller = LongPoll::new(fetch)
            .wait(setup.wait)
            .jitter(setup.jitter)
            .backoff(setup.backoff.build())
            .retry_after(|e: &Unavailable| e.0)
            .seed(setup.seed);
        if let Some((burst, period)) = setup.rate {
            poller = poller.rate_limit(burst, period);
        }
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
        if let Some(stats) = &stats {
            poller = poller.stats(stats.clone());
        }
        let t0 = Instant::now();
        let how = drive(poller, &recorder).await;
        let asked = asked.borrow().clone();
        (
            t0,
            recorder.records(),
            asked,
            stats.as_ref().map(Counts::of),
            how,
        )
    })
}

/// The outcome request `i` had: scripted, `Changed` past the script, a
/// transient error without a hint when its per-request timeout cut it.
fn long_outcome(setup: &LongSetup, i: usize, r: &Record) -> LongOutcome {
    match (setup.script.get(i), r.completed) {
        (_, false) => LongOutcome::Err(None),
        (Some((_, o)), true) => o.clone(),
        (None, true) => LongOutcome::Changed(false),
    }
}

/// `rate_limit(burst, period)` as documented: a token bucket (the generic
/// cell rate algorithm) of `burst` tokens (at least 1), one refilled per
/// `period` (at most 30 years: "never"), a token taken at every start.
#[derive(Clone, Debug)]
struct BucketModel {
    burst: u32,
    period: Duration,
    /// When the bucket would be full again.
    full_at: Option<Instant>,
}

impl BucketModel {
    fn new((burst, period): (u32, Duration)) -> Self {
        BucketModel {
            burst: burst.max(1),
            period: period.min(FAR),
            full_at: None,
        }
    }

    /// The earliest instant the next start may have, if any is too early.
    fn slot(&self) -> Option<Instant> {
        let slack = self.period.saturating_mul(self.burst - 1);
        self.full_at.and_then(|f| f.checked_sub(slack))
    }

    /// A request started at `at`.
    fn take(&mut self, at: Instant) {
        let full = self.full_at.map_or(at, |f| f.max(at));
        self.full_at = Some(full + self.period);
    }
}

/// `[lo, hi]` of the next start when the gate opens within `[lo, hi]` and
/// the rate limit's next slot is `slot`: at once if the slot has come,
/// else at the slot spread above by the jitter (capped at the deadline,
/// which a start never passes). `None` when the slot lies past the
/// deadline: polling stops with `Timeout` instead. The `bool` says whether
/// that stop may happen (the jitter may push the start past the deadline).
fn admitted(
    (lo, hi): (Instant, Instant),
    slot: Option<Instant>,
    jitter: Jitter,
    deadline: Option<Instant>,
) -> (Option<(Instant, Instant)>, bool) {
    let Some(slot) = slot.filter(|&s| s > lo) else {
        return (Some((lo, hi)), false);
    };
    // The latest start: the gate opening at `lo`, the jitter's widest
    // spread, the timer's tick.
    let early = slot - lo;
    let latest = slot + (above_bounds(jitter, early).1 - early);
    match deadline {
        Some(d) if slot > d => (None, true),
        // The jitter never pushes a start past the deadline.
        Some(d) => (Some((slot, hi.max((latest + TICK).min(d)))), false),
        None => (Some((slot, hi.max(latest + TICK))), false),
    }
}

/// What the path taught the long poller (see "Behind proxies" on
/// `LongPoll`): a cut is an unhinted failure after at least 1 s, or a
/// per-request timeout (silence). Two answer cuts within a tenth (at least
/// 0.5 s) of each other teach three quarters of the shorter; two silences
/// at the same wait halve it (not below 1 s); three cuts in a row with no
/// pair among them teach three quarters of the shortest answer cut among
/// them; a lesson lowers the wait only; a silent lesson's check (a request
/// at its wait before any was answered, of more than 25 s) silenced too
/// halves it again at once. A probe cut by silence under a silent lesson doubles the learned
/// wait, up to half the probe's.
/// Ten minutes after a lesson, one request probes the configured wait: cut,
/// the next probe goes 10 minutes later, and each cut again waits twice as
/// long (up to 4 h); answered after holding as long as the cut (or its
/// whole wait), the lesson is gone.
#[derive(Clone, Debug, Default)]
struct PathModel {
    /// The last cut (`None` inside: silence) and the wait it asked for.
    candidate: Option<(Option<Duration>, Duration)>,
    learned: Option<LessonModel>,
    /// The last request failed: a probe cut right after it is no evidence.
    down: bool,
    /// Cuts in a row, and the shortest answer cut among them.
    run: (u32, Option<Duration>),
}

/// A learned limit: a probe cut the same way (silence again, or an answer
/// no later than the cut) backs the next probe off, unless the request
/// after it fails too (the path was down): then the backoff is undone.
#[derive(Clone, Debug)]
struct LessonModel {
    wait: Duration,
    cut_at: Duration,
    silent: bool,
    since: Instant,
    after: Duration,
    suspect: Option<(Instant, Duration, u32)>,
    probes_cut: u32,
    /// A request at the learned wait was answered.
    verified: bool,
}

impl LessonModel {
    fn undo(&mut self) {
        if let Some((since, after, cut)) = self.suspect.take() {
            self.since = since;
            self.after = after;
            self.probes_cut = cut;
        }
    }
}

/// What a cut did, in the model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PathLesson {
    Taught,
    ProbeCut,
    Nothing,
}

impl PathModel {
    fn wait(&self, wait: Duration, now: Instant) -> (Duration, bool) {
        match &self.learned {
            Some(l) if l.wait < wait => {
                if now - l.since >= l.after {
                    (wait, true)
                } else {
                    (l.wait, false)
                }
            }
            _ => (wait, false),
        }
    }

    /// A reset reply came between: the next cut does not make a pair with
    /// the last one ("in a row").
    fn not_cut(&mut self) {
        self.candidate = None;
        self.run = (0, None);
        self.down = false;
    }

    /// A failure that is no cut: not in a row, and a probe's cut before it
    /// was the path being down.
    fn failed(&mut self) {
        self.candidate = None;
        self.run = (0, None);
        self.down = true;
        if let Some(l) = self.learned.as_mut() {
            l.undo();
        }
    }

    /// A request that asked for `asked` was cut at `now` (`took` for an
    /// answer, `None` for silence).
    fn cut(
        &mut self,
        took: Option<Duration>,
        asked: Duration,
        probe: bool,
        now: Instant,
    ) -> PathLesson {
        if took.is_some_and(|t| t < MIN_CUT) {
            self.failed();
            return PathLesson::Nothing;
        }
        let after_failure = std::mem::replace(&mut self.down, true);
        let tolerance = |d: Duration| (d / 10).max(Duration::from_millis(500));
        if let Some(l) = self.learned.as_mut() {
            let same = match took {
                None => l.silent,
                Some(t) => !l.silent && t <= l.cut_at + tolerance(l.cut_at),
            };
            if probe && same && !after_failure {
                l.suspect = Some((l.since, l.after, l.probes_cut));
                l.since = now;
                l.probes_cut += 1;
                if l.probes_cut > 1 {
                    l.after = (l.after * 2).min(Duration::from_secs(4 * 3600));
                }
                if l.silent {
                    let climbed = l.wait.saturating_mul(2).min(asked / 2).max(l.wait);
                    if climbed > l.wait {
                        l.wait = climbed;
                        l.suspect = None;
                    }
                }
                self.candidate = None;
                self.run = (0, None);
                return PathLesson::ProbeCut;
            }
            l.undo();
            // A silent lesson's unanswered check silenced too: halve at once.
            if l.silent
                && !l.verified
                && !probe
                && took.is_none()
                && asked == l.wait
                && asked > Duration::from_secs(25)
            {
                let halved = (asked / 2).max(Duration::from_secs(1));
                if halved < asked {
                    l.wait = halved;
                    l.cut_at = asked;
                    l.since = now;
                    self.candidate = None;
                    self.run = (0, None);
                    return PathLesson::Taught;
                }
            }
        }
        let previous = self.candidate.replace((took, asked));
        self.run.0 += 1;
        if let Some(t) = took {
            self.run.1 = Some(self.run.1.map_or(t, |s| s.min(t)));
        }
        let (count, shortest) = self.run;
        let (wait, cut_at, silent) = match (previous, took) {
            (Some((Some(before), _)), Some(took)) if before.abs_diff(took) <= tolerance(took) => {
                (before.min(took) * 3 / 4, before.min(took), false)
            }
            (Some((None, before)), None) if before == asked => {
                ((asked / 2).max(Duration::from_secs(1)), asked, true)
            }
            _ => match shortest {
                Some(s) if count >= 3 => (s * 3 / 4, s, false),
                _ => return PathLesson::Nothing,
            },
        };
        if wait >= asked {
            return PathLesson::Nothing;
        }
        self.candidate = None;
        self.run = (0, None);
        self.learned = Some(LessonModel {
            wait,
            cut_at,
            silent,
            since: now,
            after: Duration::from_secs(600),
            suspect: None,
            probes_cut: 0,
            verified: false,
        });
        PathLesson::Taught
    }

    /// A normal reply after `took` to a request that asked for `asked`.
    fn answered(&mut self, took: Duration, asked: Duration, probe: bool) {
        self.candidate = None;
        self.run = (0, None);
        self.down = false;
        let Some(l) = self.learned.as_mut() else {
            return;
        };
        if !probe {
            l.suspect = None;
            l.verified = true;
        }
        if probe && took >= l.cut_at.min(asked) {
            self.learned = None;
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn long_poll_gaps_stay_within_the_documented_bounds(setup in any_long()) {
        let (t0, records, asked, stats, how) = run_long(&setup);
        let deadline = setup.timeout.and_then(|t| t0.checked_add(t));
        let bounds = setup.hint_bounds.unwrap_or(HINT_BOUNDS);
        check_monotone(&records);
        check_deadline(&records, deadline);
        let mut bucket = setup.rate.map(BucketModel::new);
        let mut streak = StreakModel::default();
        let mut path = PathModel::default();
        let (mut quick, mut lowered, mut expiries) = (0u32, 0u64, 0u32);
        let mut probe_cuts: Vec<usize> = Vec::new();
        let mut cursor: Option<u32> = None;
        let mut last_error: Option<Unavailable> = None;
        // The first request is due at once.
        let mut due = Some((t0, t0));
        for (i, r) in records.iter().enumerate() {
            let Some((lo, hi)) = due else {
                prop_assert!(false, "request {} started past a rate-limit slot beyond the deadline", i);
                break;
            };
            prop_assert!(
                lo <= r.start && r.start <= hi,
                "request {}: started {:?} after t0, expected within [{:?}, {:?}]",
                i, r.start - t0, lo - t0, hi - t0
            );
            if let Some(bucket) = &mut bucket {
                bucket.take(r.start);
            }
            // The wait: the configured one, lowered by the path's limit,
            // capped at 3/4 of the per-request timeout and at the deadline;
            // the cursor of the last reply that set one; requests count
            // from 1.
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(r.start));
            let (mut wait, probe) = path.wait(setup.wait, r.start);
            if let Some(t) = setup.attempt_timeout {
                wait = wait.min(t - t / 4);
            }
            let wait = wait.min(left);
            prop_assert_eq!(asked[i], (wait, i as u32 + 1, cursor), "request {}", i);
            let Some(end) = r.end else {
                prop_assert_eq!(i, records.len() - 1);
                break;
            };
            let took = end - r.start;
            let outcome = long_outcome(&setup, i, r);
            let at_deadline = !r.completed && deadline.is_some_and(|d| end >= d);
            // A cut: an unhinted failure that held, or silence (not the
            // deadline's grace).
            let lesson = match outcome {
                LongOutcome::Err(None) if r.completed => path.cut(Some(took), wait, probe, end),
                LongOutcome::Err(_) if !r.completed && !at_deadline => path.cut(None, wait, probe, end),
                LongOutcome::Err(_) if r.completed => {
                    path.failed();
                    PathLesson::Nothing
                }
                _ => PathLesson::Nothing,
            };
            let planned = match outcome {
                LongOutcome::Err(_) if at_deadline => {
                    // Cut at or past the deadline: the deadline passing.
                    prop_assert_eq!(&how, &Ending::Timeout(last_error));
                    prop_assert_eq!(i, records.len() - 1);
                    break;
                }
                LongOutcome::Err(hint) if lesson != PathLesson::Nothing => {
                    // Taught (the streak goes on from the first cut) or a
                    // cut probe (no error at all): again at once.
                    if lesson == PathLesson::Taught {
                        lowered += 1;
                    } else {
                        probe_cuts.push(i);
                    }
                    if r.completed {
                        last_error = Some(Unavailable(hint));
                    }
                    (Duration::ZERO, Duration::ZERO)
                }
                LongOutcome::Err(hint) => match streak.failed(end, hint, &setup.backoff, bounds) {
                    Verdict::GiveUp => {
                        let want = if r.completed {
                            Ending::Fetch(Unavailable(hint))
                        } else {
                            Ending::AttemptTimeout
                        };
                        prop_assert_eq!(&how, &want, "gave up after request {}", i);
                        prop_assert_eq!(i, records.len() - 1);
                        break;
                    }
                    Verdict::Hinted(h) => {
                        last_error = Some(Unavailable(hint));
                        hint_bounds(h, bounds)
                    }
                    Verdict::Backoff(step) => {
                        if r.completed {
                            last_error = Some(Unavailable(hint));
                        }
                        setup.backoff.bounds(step)
                    }
                },
                reply => {
                    let before = cursor;
                    let next = |same: bool| if same { before.unwrap_or(i as u32) } else { i as u32 };
                    match reply {
                        LongOutcome::Changed(same) | LongOutcome::Advanced(same) => {
                            cursor = Some(next(same));
                        }
                        LongOutcome::Reset => cursor = None,
                        _ => {}
                    }
                    // The first reset of a cursor starts over at once; one
                    // right after a fresh start backs off, more each time.
                    let mut again = None;
                    if matches!(reply, LongOutcome::Reset) {
                        if before.is_some() {
                            expiries += 1;
                            if expiries > 1 {
                                again = Some(setup.backoff.bounds(expiries - 2));
                            }
                        }
                    } else {
                        if before.is_some() {
                            expiries = 0;
                        }
                        path.answered(took, wait, probe);
                    }
                    let restart = matches!(reply, LongOutcome::Reset)
                        && before.is_some()
                        && expiries == 1;
                    let progress = restart
                        || matches!(reply, LongOutcome::Changed(_) | LongOutcome::Advanced(_))
                            && cursor != before;
                    // A reply ends the error streak, and a pair of cuts.
                    streak.reset();
                    path.not_cut();
                    last_error = None;
                    let threshold = (wait / 10)
                        .min(Duration::from_secs(1))
                        .max(Duration::from_millis(10));
                    if let Some(bounds) = again {
                        quick = 0;
                        bounds
                    } else if !progress && took < threshold {
                        // No progress, much faster than the wait: a backoff
                        // of its own that never ends polling.
                        let step = quick;
                        quick += 1;
                        setup.backoff.bounds(step)
                    } else {
                        // The server's wait paces the requests.
                        quick = 0;
                        (Duration::ZERO, Duration::ZERO)
                    }
                }
            };
            if let Some(stop) = stop_after(end, i + 1, deadline, setup.max_attempts, &last_error) {
                prop_assert_eq!(&how, &stop, "after request {}", i);
                prop_assert_eq!(i, records.len() - 1);
                break;
            }
            let slot = bucket.as_ref().and_then(BucketModel::slot);
            let (next, may_stop) = admitted(wake(end, far(planned), deadline), slot, setup.jitter, deadline);
            due = next;
            if i + 1 == records.len() {
                // Polling went on past `MAX_REQUESTS`, or stopped because
                // the rate limit's next slot (jittered) came past the
                // deadline: it must if the slot itself did.
                let stopped = Ending::Timeout(last_error);
                if due.is_none() {
                    prop_assert_eq!(&how, &stopped, "after request {}", i);
                } else if !(may_stop && how == stopped) {
                    prop_assert_eq!(&how, &Ending::Running, "after request {}", i);
                }
                break;
            }
        }
        // A cut probe is no error.
        let failed = |i, r: &Record| {
            matches!(long_outcome(&setup, i, r), LongOutcome::Err(_)) && !probe_cuts.contains(&i)
        };
        check_stats(stats, &records, failed, false, lowered);
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

impl Conn {
    /// Whether the body delivered any byte (a `retry` line, an event, a cut
    /// block): that ends the error streak.
    fn bytes(&self) -> bool {
        self.refused.is_none() && (self.retry.is_some() || self.events > 0 || self.partial)
    }

    /// Whether the connection failed: refused, or its body failed.
    fn failed(&self) -> Option<Option<Duration>> {
        match (self.refused, &self.end) {
            (Some(hint), _) | (None, &ConnEnd::Fail(hint)) => Some(hint),
            (None, ConnEnd::Close) => None,
        }
    }
}

/// The connection the scripted server makes past the script: one event,
/// then a clean end.
const DEFAULT_CONN: Conn = Conn {
    refused: None,
    latency: Duration::ZERO,
    retry: None,
    events: 1,
    partial: false,
    end: ConnEnd::Close,
};

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
    /// Count in a `Stats`.
    stats: bool,
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
        (any::<u64>(), any::<bool>()),
    )
        .prop_map(
            |(
                (reconnect_time, jitter, timeout, max_attempts),
                (backoff, hint_bounds),
                conns,
                (seed, stats),
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
                    stats,
                }
            },
        )
}

type Body = LocalBoxStream<'static, Result<Vec<u8>, Unavailable>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Body, Unavailable>>>>;

/// What the scripted server saw: per connection, the `Last-Event-ID` and the
/// instant the body was dropped (or the refusal came).
type Seen = Rc<RefCell<Vec<Option<String>>>>;

/// What `run_sse` returns: t0, the records, the `Last-Event-ID` of each
/// connection, the ids of the events in order, the stats and the ending.
type SseRun = (
    Instant,
    Vec<Record>,
    Vec<Option<String>>,
    Vec<u64>,
    Option<Counts>,
    Ending,
);

fn run_sse(setup: &SseSetup) -> SseRun {
    paused_runtime().block_on(async {
        let recorder = Recorder::default();
        let stats = setup.stats.then(Stats::new);
        let seen: Seen = Rc::default();
        let (r, s, conns) = (recorder.clone(), seen.clone(), setup.conns.clone());
        let connect = move |last: Option<String>| -> ConnectFuture {
            let (i, guard) = r.start();
            s.borrow_mut().push(last.clone());
            let conn = conns.get(i).cloned().unwrap_or(DEFAULT_CONN);
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
        if let Some(stats) = &stats {
            stream = stream.stats(stats.clone());
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
        let counts = stats.as_ref().map(Counts::of);
        (t0, recorder.records(), seen, ids, counts, how)
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
        let (t0, records, seen, ids, stats, how) = run_sse(&setup);
        let deadline = setup.timeout.and_then(|t| t0.checked_add(t));
        let bounds = setup.hint_bounds.unwrap_or(HINT_BOUNDS);
        let jitter = setup.jitter;
        check_monotone(&records);
        check_deadline(&records, deadline);
        // Every event exactly once, in order, and each connection resumes
        // from the last complete one.
        let want: Vec<u64> = (1..=ids.len() as u64).collect();
        prop_assert_eq!(&ids, &want);
        let mut streak = StreakModel::default();
        // Connections in a row that ended cleanly without a byte.
        let mut empties = 0u32;
        let mut delivered_total = 0u64;
        let mut retry: Option<Duration> = None;
        let mut last_error: Option<Unavailable> = None;
        for (i, r) in records.iter().enumerate() {
            let resume = (delivered_total > 0).then(|| delivered_total.to_string());
            prop_assert_eq!(&seen[i], &resume, "Last-Event-ID of connection {}", i);
            let Some(end) = r.end else {
                prop_assert_eq!(i, records.len() - 1);
                break;
            };
            let conn = setup.conns.get(i).unwrap_or(&DEFAULT_CONN);
            if conn.refused.is_none() {
                if let Some(v) = conn.retry.and_then(|r| parse_retry(RETRIES[r])) {
                    retry = Some(v);
                }
                delivered_total += u64::from(conn.events);
            }
            // The reconnection time: the server's, clamped, or the
            // configured one (at least 100 ms).
            let base = retry.map_or(setup.reconnect_time.max(MIN_RECONNECT), |r| {
                clamp_hint(r, bounds).max(MIN_RECONNECT)
            });
            if conn.bytes() {
                // A connection that works ends the error streak.
                streak.reset();
                empties = 0;
                last_error = None;
            }
            let planned = match conn.failed() {
                Some(hint) => match streak.failed(end, hint, &setup.backoff, bounds) {
                    Verdict::GiveUp => {
                        prop_assert_eq!(&how, &Ending::Fetch(Unavailable(hint)), "connection {}", i);
                        prop_assert_eq!(i, records.len() - 1);
                        break;
                    }
                    verdict => {
                        last_error = Some(Unavailable(hint));
                        match verdict {
                            // The hint, spread above, instead of the jitter.
                            Verdict::Hinted(h) => hint_bounds(h, bounds),
                            // The first failure of a streak: the
                            // reconnection time, as a browser.
                            Verdict::Backoff(0) => above_bounds(jitter, base),
                            // Then the backoff, never below the
                            // reconnection time, spread above.
                            Verdict::Backoff(step) => {
                                let (lo, hi) = setup.backoff.bounds(step);
                                let (lo, _) = above_bounds(jitter, base.max(lo));
                                let (_, hi) = above_bounds(jitter, base.max(hi));
                                (lo, hi)
                            }
                            Verdict::GiveUp => unreachable!(),
                        }
                    }
                },
                None if conn.bytes() => above_bounds(jitter, base),
                None => {
                    // A quiet connection: the reconnection time, then
                    // growing as the (unjittered) backoff, never ending.
                    // The server answered the connect: the error streak
                    // is over.
                    streak.reset();
                    let step = empties;
                    empties += 1;
                    let d = match step.checked_sub(1) {
                        None => base,
                        Some(s) => base.max(setup.backoff.nominal(s)),
                    };
                    above_bounds(jitter, d)
                }
            };
            if let Some(stop) = stop_after(end, i + 1, deadline, setup.max_attempts, &last_error) {
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
        let failed = |i: usize, _: &Record| setup.conns.get(i).unwrap_or(&DEFAULT_CONN).failed().is_some();
        check_stats(stats, &records, failed, true, 0);
    }
}
