//! When to ask next, and why.
//!
//! Every strategy asks one question of its [`Schedule`], after each answer
//! from the server ("a success", "an error with this hint", "a connection
//! ended like this"): when does the next request start, or does polling
//! stop? The schedule answers by consulting small policies, each one rule
//! in one file, none of which a strategy reaches into:
//!
//! | policy | file | rule |
//! |---|---|---|
//! | pacing | `pacing.rs` | the interval after a success: fixed delay or fixed rate, adaptive, near the status's ETA, or at once |
//! | retry | `streak.rs`, `backoff.rs`, `retry.rs` | the error streak: backoff, its time bound and `max_retries`; hints count toward time only |
//! | quiet answers | `quiet.rs` | quick replies without progress and empty connections back off, never ending polling |
//! | hints | here (`spread_hint`) | a server hint is clamped, waited in full and spread above |
//! | limits | `limits.rs` | the deadline, the attempt limit, the time and requests spent (checkpoints) |
//! | admission | `admit.rs`, `bucket.rs`, `budget.rs` | the rate limit and the shared budget every start passes |
//! | jitter | `jitter.rs`, `rng.rs` | how a delay is spread |
//!
//! It is plain data and arithmetic on instants (no futures), so each rule is
//! tested on its own and every strategy gets the same behaviour.

mod admit;
mod asked;
mod backoff;
mod bucket;
mod budget;
mod cadence;
mod jitter;
mod limits;
mod nanos;
mod pacing;
mod quiet;
mod retry;
mod rng;
mod streak;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) use admit::Admit;
pub(crate) use asked::Asked;
pub use backoff::Backoff;
pub(crate) use bucket::TokenBucket;
pub use budget::Budget;
pub use cadence::Cadence;
pub use jitter::Jitter;
pub(crate) use limits::Stop;
pub(crate) use nanos::Nanos;
pub(crate) use pacing::Pacing;
#[cfg(feature = "backoff")]
pub(crate) use retry::ExternalBackoff;
pub(crate) use retry::RetryPolicy;

use admit::Admitter;
use limits::Limits;
use pacing::Pacer;
use quiet::Quiet;
use rng::Rng;
use streak::{Streak, Verdict};

/// The knobs that are not a policy's own, as the builders set them.
///
/// Only the jitter is read on every request; every knob that is off by
/// default lives in [`Cold`], boxed only once one is set, so that a poller
/// that sets none keeps them out of the cache lines its requests touch.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) jitter: Jitter,
    /// Knobs read only when set, or once in a while.
    cold: Option<Box<Cold>>,
}

/// The knobs that are off by default, or read once in a while (a hint, the
/// first request, a trace).
#[derive(Debug)]
pub(crate) struct Cold {
    /// The per-request timeout.
    pub(crate) attempt_timeout: Option<Duration>,
    /// Counters shared with the user.
    pub(crate) stats: Option<crate::Stats>,
    pub(crate) retry: RetryPolicy,
    pub(crate) hint_min: Duration,
    pub(crate) hint_max: Duration,
    /// The first request waits a random time up to this (start jitter).
    pub(crate) stagger: Option<Duration>,
    /// The poller's name in traces.
    pub(crate) key: Option<String>,
}

/// The cold knobs' defaults.
const COLD: Cold = Cold {
    attempt_timeout: None,
    stats: None,
    retry: RetryPolicy::Default,
    hint_min: HINT_MIN,
    hint_max: HINT_MAX,
    stagger: None,
    key: None,
};

impl Config {
    /// The knobs read once in a while.
    #[inline]
    pub(crate) fn cold(&self) -> &Cold {
        self.cold.as_deref().unwrap_or(&COLD)
    }

    /// The same, to set one (boxed on the first).
    pub(crate) fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(|| Box::new(COLD))
    }

    /// The retry policy, to draw a delay from or reset: the one set, or
    /// `default` (the default policy keeps no state, so a fresh one stands
    /// in when none is set).
    #[inline]
    fn retry<'a>(&'a mut self, default: &'a mut RetryPolicy) -> &'a mut RetryPolicy {
        match self.cold.as_deref_mut() {
            Some(cold) => &mut cold.retry,
            None => default,
        }
    }
}

/// Default lower bound on a server's "ask again in" hint.
pub(crate) const HINT_MIN: Duration = Duration::from_secs(1);
/// Default upper bound on a server's "ask again in" hint.
pub(crate) const HINT_MAX: Duration = Duration::from_secs(600);
/// A server hint is waited in full and spread up to this share above it
/// (one fifth), so a fleet told `Retry-After: 7` comes back over 1.4 s
/// instead of in the same millisecond.
pub(crate) const HINT_SPREAD: f64 = 0.2;

impl Default for Config {
    fn default() -> Self {
        Config {
            jitter: Jitter::None,
            cold: None,
        }
    }
}

/// What to do next, once a request or connection has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Stop with this error.
    Stop(Stop),
    /// Go on at once (after yielding to the runtime).
    Now,
    /// Go on at this instant.
    At(Instant),
}

/// How a streaming connection ended (SSE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disconnect {
    /// It delivered bytes, then ended: reconnect after the reconnection time.
    Delivered,
    /// It ended, or went silent, without a byte: back off, but never give up
    /// on this account alone.
    Empty,
    /// It failed with a transient error: back off, and give up when the retry
    /// policy says so. `hint` is the server's "retry after".
    Failed { hint: Option<Duration> },
}

/// Why the next request waits as long as it does (for traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The first request.
    Start,
    /// The interval (adaptive or not).
    Interval,
    /// The status's expected time left.
    Eta,
    /// Error backoff, or backoff after quick empty replies or quiet connections.
    Backoff,
    /// A server hint (`Retry-After`, a poll-after field).
    Hint,
    /// At once after progress, or the rate limit.
    Pacing,
    /// The SSE reconnection time.
    Reconnect,
    /// The shared request budget pushed it later.
    Budget,
}

impl Reason {
    /// The reason as a word for logs.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Interval => "interval",
            Reason::Eta => "eta",
            Reason::Backoff => "backoff",
            Reason::Hint => "hint",
            Reason::Pacing => "pacing",
            Reason::Reconnect => "reconnect",
            Reason::Budget => "budget",
        }
    }
}

/// The running schedule of one poller: its knobs and its policies.
///
/// Laid out in the order a request reads it (`repr(C)`): the fields every
/// request and every success read first, the ones only failures, setup or
/// checkpoints read last, so that with many pollers a request touches as
/// few cache lines as it can.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Schedule {
    /// First: the limits start with their own rarely read field.
    limits: Limits,
    /// Why the last planned wait is as long as it is.
    reason: Reason,
    /// Whether a streak of failures or quiet answers may be under way: set
    /// whenever one grows, so that a success resets them only then and
    /// otherwise reads neither.
    unsettled: bool,
    rng: Rng,
    /// Boxed only when a rate limit or an admission is set.
    admitter: Option<Box<Admitter>>,
    pub(crate) config: Config,
    /// The pacer ends with its own rarely read fields.
    pacer: Pacer,
    /// Failures in a row; a success resets it.
    streak: Streak,
    /// Quiet answers in a row; a change resets it.
    quiet: Quiet,
    /// The jitter's seed (inline: simulations seed every poller).
    seed: Option<u64>,
}

impl Schedule {
    pub(crate) fn new(interval: Duration, pacing: Pacing) -> Self {
        Schedule {
            limits: Limits::default(),
            reason: Reason::Start,
            unsettled: false,
            rng: Rng::from_entropy(),
            admitter: None,
            config: Config::default(),
            pacer: Pacer::new(interval, pacing),
            streak: Streak::default(),
            quiet: Quiet::default(),
            seed: None,
        }
    }

    // ----- configuration -------------------------------------------------

    pub(crate) fn set_interval(&mut self, interval: Duration) {
        self.pacer.set_interval(interval);
    }

    pub(crate) fn set_cadence(&mut self, cadence: Cadence) {
        self.pacer.set_cadence(cadence);
    }

    pub(crate) fn set_adaptive(&mut self, floor: Duration, cap: Duration) {
        self.pacer.set_adaptive(floor, cap);
    }

    pub(crate) fn set_rate(&mut self, rate: Option<TokenBucket>) {
        let admitter = self.admitter.get_or_insert_default();
        admitter.set_rate(rate);
        if admitter.idle() {
            // No rate limit, no shared admission and no answer pending
            // (a refusal still ends the wait at the deadline): nothing to ask.
            self.admitter = None;
        }
    }

    pub(crate) fn set_admission(&mut self, admission: Arc<dyn crate::Admission>) {
        self.admitter.get_or_insert_default().set_shared(admission);
    }

    /// Sets the overall deadline; after the first poll it still counts from
    /// the first poll.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.limits.set_timeout(timeout);
    }

    pub(crate) fn set_max_attempts(&mut self, max: u32) {
        self.limits.set_max_attempts(max);
    }

    /// Seeds the jitter; after the first poll the sequence restarts now.
    pub(crate) fn set_seed(&mut self, seed: u64) {
        self.seed = Some(seed);
        self.rng = Rng::seeded(seed);
    }

    /// Goes on from a checkpoint (see [`Limits::resume`]).
    pub(crate) fn resume(&mut self, attempts: u32, elapsed: Duration) {
        self.limits.resume(attempts, elapsed);
    }

    /// The per-request timeout the user set.
    #[inline]
    pub(crate) fn attempt_timeout(&self) -> Option<Duration> {
        self.config.cold().attempt_timeout
    }

    /// The user's counters, if any.
    #[inline]
    pub(crate) fn stats(&self) -> Option<&crate::Stats> {
        self.config.cold().stats.as_ref()
    }

    /// Clamps a server hint into the user's bounds.
    pub(crate) fn clamp_hint(&self, hint: Duration) -> Duration {
        let cold = self.config.cold();
        hint.max(cold.hint_min).min(cold.hint_max)
    }

    // ----- the clock and the limits -------------------------------------

    /// Starts the clock: the deadline counts from here.
    pub(crate) fn start(&mut self, now: Instant) {
        if let Some(seed) = self.seed {
            self.rng = Rng::seeded(seed);
        }
        self.pacer.start();
        self.limits.start(now);
    }

    /// Whether [`start`](Self::start) ran.
    pub(crate) fn started(&self) -> bool {
        self.limits.started()
    }

    /// When the first request may start: now, or a random time up to the
    /// configured stagger later (never past the deadline).
    pub(crate) fn first_at(&mut self, now: Instant) -> Instant {
        match self.config.cold().stagger {
            Some(max) if !max.is_zero() => {
                let delay = self.rng.between(Duration::ZERO, max);
                self.limits.capped_later(now, delay)
            }
            _ => now,
        }
    }

    /// Records that a request starts now.
    #[inline]
    pub(crate) fn attempt(&mut self, now: Instant) {
        self.limits.attempt();
        crate::life::requested();
        if let Some(stats) = self.stats() {
            stats.request();
        }
        self.pacer.anchor(now);
    }

    /// Whether anything reads the clock at a request start.
    #[inline]
    pub(crate) fn needs_start_clock(&self) -> bool {
        self.pacer.needs_anchor()
            || self.limits.deadline().is_some()
            || self.admitter.as_ref().is_some_and(|a| a.active())
            || self
                .config
                .cold
                .as_deref()
                .is_some_and(|cold| cold.attempt_timeout.is_some() || cold.stats.is_some())
    }

    /// Requests started so far.
    #[inline]
    pub(crate) fn attempts(&self) -> u32 {
        self.limits.attempts()
    }

    /// Where the wait stands now, with the strategy's resume position.
    pub(crate) fn checkpoint<C>(&self, cursor: Option<C>) -> crate::Checkpoint<C> {
        crate::Checkpoint::new(
            self.limits.attempts(),
            self.limits.elapsed(Instant::now()),
            cursor,
        )
    }

    /// Time left before the deadline, if there is one.
    #[inline]
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.limits.remaining(now)
    }

    /// Whether a resumed poller may still make a request.
    pub(crate) fn check_resumed(&self, now: Instant) -> Result<(), Stop> {
        self.limits.check_resumed(now)
    }

    /// Whether the deadline has passed.
    pub(crate) fn check_deadline(&self, now: Instant) -> Result<(), Stop> {
        self.limits.check_deadline(now)
    }

    /// Never plans past the deadline.
    #[inline]
    pub(crate) fn cap(&self, at: Instant) -> Instant {
        self.limits.cap(at)
    }

    /// The time limit of a request starting now (see [`Limits::request_limit`]).
    #[inline]
    pub(crate) fn request_limit(&self, now: Instant, own: Option<Duration>) -> Option<Duration> {
        self.limits.request_limit(now, own)
    }

    /// Turns "the next start is at `at`" into a plan: stop if the deadline or
    /// the attempt limit says so, else go at `at` capped by the deadline.
    #[inline]
    pub(crate) fn plan(&mut self, now: Instant, at: Instant) -> Plan {
        if let Err(stop) = self.limits.check(now) {
            return Plan::Stop(stop);
        }
        let at = self.limits.cap(at);
        if at <= now { Plan::Now } else { Plan::At(at) }
    }

    // ----- admission ------------------------------------------------------

    /// Whether a request that is due now may start (see [`Admitter::admit`]).
    #[inline]
    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        let Some(admitter) = self.admitter.as_mut() else {
            return Admit::Go;
        };
        let admit = admitter.admit(now, &self.limits, self.config.jitter, &mut self.rng);
        match &admit {
            Admit::At(_, reason) => self.reason = *reason,
            Admit::Ask(_) => self.reason = Reason::Budget,
            Admit::Go | Admit::Stop(_) => {}
        }
        admit
    }

    /// The shared admission answered `slot` (see [`Admitter::answered`]).
    pub(crate) fn answered(&mut self, now: Instant, slot: Option<Instant>) -> Instant {
        self.reason = Reason::Budget;
        match self.admitter.as_mut() {
            Some(admitter) => admitter.answered(now, slot, &self.limits),
            None => slot.unwrap_or(now),
        }
    }

    // ----- the answers ----------------------------------------------------

    /// Why the last planned wait is as long as it is.
    #[inline]
    pub(crate) fn reason(&self) -> Reason {
        self.reason
    }

    /// Whether the user asked for stats (so waits are worth timing).
    pub(crate) fn counting(&self) -> bool {
        self.stats().is_some()
    }

    /// Counts an actual wait in the user's stats.
    #[inline]
    pub(crate) fn waited(&self, d: Duration) {
        if let Some(stats) = self.stats() {
            stats.wait(d);
        }
    }

    /// Counts a failed request (or connection) in the user's stats: every
    /// one, the one that ends polling included.
    pub(crate) fn count_error(&self) {
        if let Some(stats) = self.stats() {
            stats.error();
        }
    }

    /// Adaptive pacing: what the last status said (see [`Pacer::observe`]).
    pub(crate) fn observe(&mut self, changed: bool, eta: Option<Duration>) {
        self.pacer.observe(changed, eta);
    }

    /// The next start after a success; `hint` is the server's "ask again in".
    #[inline]
    pub(crate) fn after_success(&mut self, now: Instant, hint: Option<Duration>) -> Instant {
        self.alive();
        if let Some(hint) = hint {
            self.reason = Reason::Hint;
            let delay = self.spread_hint(hint);
            return self.pacer.rebase(now, delay);
        }
        let (at, reason) = self.pacer.next(now, self.config.jitter, &mut self.rng);
        self.reason = reason;
        at
    }

    /// The plan after a success when it needs no clock (see
    /// [`Pacer::next_at_once`]): the next request at once (`Ok`) or the
    /// attempt limit's stop. `None` when the plan depends on the time: a
    /// deadline, an interval, jitter or an estimate.
    #[inline]
    pub(crate) fn plan_at_once(&mut self) -> Option<Result<(), Stop>> {
        if self.limits.deadline().is_some() {
            return None;
        }
        let reason = self.pacer.next_at_once(self.config.jitter)?;
        self.alive();
        self.reason = reason;
        Some(self.limits.check_attempts())
    }

    /// The next start after a transient error, or `None` when the retry
    /// policy gives up (its count or the streak's time bound).
    pub(crate) fn after_error(&mut self, now: Instant, hint: Option<Duration>) -> Option<Instant> {
        self.after_failure(now, hint, None)
    }

    /// One more failure in the streak, as the retry policy sees it: the
    /// next start, or `None` when the policy gives up. `reconnect` is the
    /// reconnection time in force after a streaming connection failed
    /// (SSE): a backoff then never comes sooner than it, and is spread
    /// above it; a server hint is waited as after any error.
    fn after_failure(
        &mut self,
        now: Instant,
        hint: Option<Duration>,
        reconnect: Option<Duration>,
    ) -> Option<Instant> {
        let hint = self.honourable(hint)?;
        let mut default = RetryPolicy::Default;
        let retry = self.config.retry(&mut default);
        self.unsettled = true;
        let delay = match self.streak.failed(now, hint, retry, &mut self.rng) {
            Verdict::GiveUp => return None,
            Verdict::Hinted(hint) => {
                self.reason = Reason::Hint;
                self.spread_hint(hint)
            }
            Verdict::Backoff { delay, step } => match reconnect {
                None => {
                    self.reason = Reason::Backoff;
                    delay
                }
                // The first failure after a working connection waits
                // the reconnection time, as a browser does.
                Some(base) if step == 0 => return Some(self.reconnect_after(now, base)),
                Some(base) => {
                    self.reason = Reason::Backoff;
                    return Some(self.reconnect_after(now, base.max(delay)));
                }
            },
        };
        Some(self.pacer.rebase(now, delay))
    }

    /// The next start after a reply that made no progress and came back
    /// suspiciously fast (a server ignoring the wait): grows like error
    /// backoff, but never ends polling on its own. It is a successful
    /// response all the same: it ends any error streak.
    pub(crate) fn after_quick_empty(&mut self, now: Instant) -> Instant {
        self.forgive();
        self.reason = Reason::Backoff;
        self.unsettled = true;
        let delay = self.quiet.next(&self.config.cold().retry, &mut self.rng);
        self.pacer.rebase(now, delay)
    }

    /// The next start after a cursor expired again right after a fresh
    /// start (`step` such expiries in a row before this one, from 0): a
    /// delay that grows as the backoff's does and never ends polling. The
    /// strategy keeps the count: the fresh start's reply between two
    /// expiries is a success, which ends every streak here.
    pub(crate) fn after_expired(&mut self, now: Instant, step: u32) -> Instant {
        // The server answered: any error streak is over.
        self.alive();
        self.reason = Reason::Backoff;
        let delay = self
            .config
            .cold()
            .retry
            .nominal(step, Duration::ZERO, &mut self.rng);
        self.pacer.rebase(now, delay)
    }

    /// The reconnect after a streaming connection ended, `base` being the
    /// reconnection time in force; `None` when the retry policy gave up.
    ///
    /// No reconnect comes sooner than the reconnection time: the jitter
    /// spreads it above, never below.
    pub(crate) fn after_disconnect(
        &mut self,
        now: Instant,
        base: Duration,
        how: Disconnect,
    ) -> Option<Instant> {
        self.reason = Reason::Reconnect;
        if !matches!(how, Disconnect::Delivered) {
            self.unsettled = true;
        }
        let delay = match how {
            Disconnect::Failed { hint } => return self.after_failure(now, hint, Some(base)),
            Disconnect::Delivered => {
                self.alive();
                base
            }
            Disconnect::Empty => {
                // The server answered the connect: whatever failed before
                // is over (a quiet stream behind a proxy that drops it
                // before its keep-alive must not carry an outage's streak
                // into the next failure).
                self.forgive();
                self.quiet.next_reconnect(base, &self.config.cold().retry)
            }
        };
        Some(self.reconnect_after(now, delay))
    }

    /// A reconnect `delay` from now, spread above by the jitter (never
    /// sooner than the reconnection time).
    fn reconnect_after(&mut self, now: Instant, delay: Duration) -> Instant {
        let delay = self.config.jitter.above(delay, &mut self.rng);
        self.pacer.rebase(now, delay)
    }

    /// The connection or the poller is alive (a success, bytes on a
    /// stream): the next failure is the first of a new streak.
    #[inline]
    pub(crate) fn alive(&mut self) {
        if self.unsettled {
            self.forgive();
            self.quiet.reset();
            self.unsettled = false;
        }
    }

    /// Forgives the streak so far: the failures were the path's doing and
    /// the strategy has adapted to them (LongPoll's learned wait).
    pub(crate) fn forgive(&mut self) {
        let mut default = RetryPolicy::Default;
        self.streak.reset(self.config.retry(&mut default));
    }

    /// A server's "retry after" as the retry policy sees it: raised to
    /// `hint_min`, or `None` when it is longer than `hint_max`. A hint the
    /// client will not wait for in full ends the wait at once with the
    /// error that carried it, rather than coming back early to be refused
    /// again (a 429 with `Retry-After: 3600` against a 10-minute cap).
    fn honourable(&self, hint: Option<Duration>) -> Option<Option<Duration>> {
        let Some(hint) = hint else {
            return Some(None);
        };
        let cold = self.config.cold();
        (hint <= cold.hint_max).then_some(Some(hint.max(cold.hint_min)))
    }

    /// A server hint, clamped to the bounds and spread above.
    fn spread_hint(&mut self, hint: Duration) -> Duration {
        Jitter::Proportional(HINT_SPREAD).above(self.clamp_hint(hint), &mut self.rng)
    }
}

/// Like tokio's own `far_future`: about thirty years is "never" for a poller.
pub(crate) const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + d`, saturating at a far-off instant instead of panicking.
#[inline]
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    if d.is_zero() {
        return now;
    }
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

#[cfg(test)]
mod at_once_tests {
    //! `plan_at_once` is a shortcut of `after_success` + `plan` for the
    //! plans that need no clock: wherever it answers, it must leave the
    //! schedule exactly as the general path does, and where it declines it
    //! must change nothing.
    use super::*;

    #[derive(Clone, Copy, Debug)]
    struct Setup {
        immediate: bool,
        interval_ms: u64,
        fixed_rate: bool,
        jitter: u8,
        adaptive: Option<(u64, u64)>,
        observe: Option<(bool, Option<u64>)>,
        max_attempts: Option<u32>,
        errors: u32,
        quick: bool,
    }

    fn build(s: Setup, t0: Instant) -> (Schedule, Instant) {
        let pacing = if s.immediate {
            Pacing::Immediate
        } else {
            Pacing::Interval
        };
        let mut sch = Schedule::new(Duration::from_millis(s.interval_ms), pacing);
        sch.config.jitter = match s.jitter {
            0 => Jitter::None,
            1 => Jitter::Full,
            2 => Jitter::Decorrelated,
            _ => Jitter::Proportional(0.0),
        };
        if s.fixed_rate {
            sch.set_cadence(Cadence::FixedRate);
        }
        if let Some((f, c)) = s.adaptive {
            sch.set_adaptive(Duration::from_millis(f), Duration::from_millis(c));
        }
        if let Some(m) = s.max_attempts {
            sch.set_max_attempts(m);
        }
        sch.set_seed(7);
        sch.start(t0);
        sch.attempt(t0);
        let mut t = t0;
        for _ in 0..s.errors {
            t += Duration::from_millis(3);
            if let Some(at) = sch.after_error(t, None) {
                t = at.max(t);
            }
            sch.attempt(t);
        }
        if s.quick {
            t += Duration::from_millis(3);
            t = sch.after_quick_empty(t).max(t);
            sch.attempt(t);
        }
        if let Some((changed, eta)) = s.observe {
            sch.observe(changed, eta.map(Duration::from_millis));
        }
        (sch, t)
    }

    #[test]
    fn plan_at_once_is_the_general_path() {
        let t0 = Instant::now();

        let mut taken = 0;
        for immediate in [false, true] {
            for interval_ms in [0, 1] {
                for fixed_rate in [false, true] {
                    for jitter in 0..4 {
                        for adaptive in [None, Some((1, 0)), Some((0, 0)), Some((1, 30))] {
                            for observe in [
                                None,
                                Some((true, None)),
                                Some((false, None)),
                                Some((true, Some(0))),
                            ] {
                                for max_attempts in [None, Some(1), Some(2), Some(5)] {
                                    for errors in [0, 2] {
                                        for quick in [false, true] {
                                            let s = Setup {
                                                immediate,
                                                interval_ms,
                                                fixed_rate,
                                                jitter,
                                                adaptive,
                                                observe,
                                                max_attempts,
                                                errors,
                                                quick,
                                            };
                                            let (mut a, last) = build(s, t0);
                                            let (mut b, _) = build(s, t0);
                                            let now = last + Duration::from_millis(50);
                                            match a.plan_at_once() {
                                                None => {
                                                    assert_eq!(
                                                        format!("{a:?}"),
                                                        format!("{b:?}"),
                                                        "{s:?}: None mutated"
                                                    );
                                                }
                                                Some(r) => {
                                                    taken += 1;
                                                    let at = b.after_success(now, None);
                                                    let plan = b.plan(now, at);
                                                    let expect = match r {
                                                        Ok(()) => Plan::Now,
                                                        Err(s) => Plan::Stop(s),
                                                    };
                                                    assert_eq!(plan, expect, "{s:?}");
                                                    assert_eq!(
                                                        format!("{a:?}"),
                                                        format!("{b:?}"),
                                                        "{s:?}"
                                                    );
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(taken > 0);
    }
}

/// Where the fields every request reads end, from the schedule's start
/// (the pacer's are the last of them).
#[cfg(test)]
pub(crate) fn hot_end() -> usize {
    std::mem::offset_of!(Schedule, pacer) + pacing::hot_end()
}

#[cfg(test)]
mod admitter_tests {
    use super::*;

    #[test]
    fn a_rate_limit_switched_off_leaves_nothing_to_ask() {
        let mut sch = Schedule::new(Duration::ZERO, Pacing::Immediate);
        sch.set_rate(Some(TokenBucket::new(1, Duration::from_secs(1))));
        assert!(sch.admitter.is_some());
        sch.set_rate(None);
        assert!(sch.admitter.is_none());
    }

    #[test]
    fn switching_the_rate_limit_off_keeps_a_shared_admission() {
        let mut sch = Schedule::new(Duration::ZERO, Pacing::Immediate);
        sch.set_admission(Arc::new(crate::Budget::per_second(10)));
        sch.set_rate(None);
        assert!(sch.admitter.as_ref().is_some_and(|a| a.active()));
    }
}
