//! When to ask next: interval, jitter, error backoff, server hints, deadline.
//!
//! This is the one scheduling core every strategy drives. It is plain data and
//! arithmetic on instants (no futures), so each rule is tested on its own and
//! every strategy gets the same behaviour.

mod backoff;
mod bucket;
mod budget;
mod cadence;
mod jitter;
mod retry;
mod rng;
mod streak;

use std::time::Duration;

use tokio::time::Instant;

pub use backoff::Backoff;
pub(crate) use bucket::TokenBucket;
pub use budget::Budget;
pub use cadence::Cadence;
pub use jitter::Jitter;
#[cfg(feature = "backoff")]
pub(crate) use retry::ExternalBackoff;
pub(crate) use retry::RetryPolicy;

use jitter::Spread;
use rng::Rng;
use streak::{Streak, Verdict};

/// How the next request is paced after a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// Every `interval` (ShortPoll).
    Interval,
    /// At once (LongPoll after progress; the server's wait paces it).
    Immediate,
}

/// Every knob of the schedule, as the builders set them.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) interval: Duration,
    pub(crate) jitter: Jitter,
    pub(crate) cadence: Cadence,
    pub(crate) pacing: Pacing,
    /// A ceiling on request starts (LongPoll's `rate_limit`).
    pub(crate) rate: Option<TokenBucket>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry: RetryPolicy,
    pub(crate) hint_min: Duration,
    pub(crate) hint_max: Duration,
    pub(crate) seed: Option<u64>,
    /// Adaptive interval bounds (ShortPoll): `(floor, cap)`.
    pub(crate) adaptive: Option<(Duration, Duration)>,
    /// A shared admission step (a request budget) before every request.
    pub(crate) admission: Option<std::sync::Arc<dyn crate::Admission>>,
    /// Counters shared with the user.
    pub(crate) stats: Option<crate::Stats>,
    /// The first request waits a random time up to this (start jitter).
    pub(crate) stagger: Option<Duration>,
    /// The poller's name in traces.
    pub(crate) key: Option<String>,
}

/// How long a request may run past the deadline when there is no per-request
/// timeout: the final request, made at the deadline, gets this long to answer.
pub(crate) const FINAL_GRACE: Duration = Duration::from_secs(5);

/// Default lower bound on a server's "ask again in" hint.
pub(crate) const HINT_MIN: Duration = Duration::from_secs(1);
/// Default upper bound on a server's "ask again in" hint.
pub(crate) const HINT_MAX: Duration = Duration::from_secs(600);
/// A server hint is waited in full and spread up to this share above it
/// (one fifth), so a fleet told `Retry-After: 7` comes back over 1.4 s
/// instead of in the same millisecond.
pub(crate) const HINT_SPREAD: f64 = 0.2;

impl Config {
    pub(crate) fn new(interval: Duration, pacing: Pacing) -> Self {
        Config {
            interval,
            jitter: Jitter::None,
            cadence: Cadence::FixedDelay,
            pacing,
            rate: None,
            timeout: None,
            attempt_timeout: None,
            max_attempts: None,
            retry: RetryPolicy::default(),
            hint_min: HINT_MIN,
            hint_max: HINT_MAX,
            seed: None,
            adaptive: None,
            admission: None,
            stats: None,
            stagger: None,
            key: None,
        }
    }

    /// Clamps a server hint into the user's bounds.
    pub(crate) fn clamp_hint(&self, hint: Duration) -> Duration {
        hint.max(self.hint_min).min(self.hint_max)
    }
}

/// Why polling stopped on the schedule's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The overall deadline passed.
    Timeout { elapsed: Duration, attempts: u32 },
    /// The attempt limit was reached.
    Exhausted { attempts: u32 },
}

/// What admission says about a request that is due now.
pub(crate) enum Admit {
    /// Start it now.
    Go,
    /// Wait until this instant, then ask again.
    At(Instant),
    /// Wait for the shared admission's answer, then ask again.
    Ask(std::pin::Pin<Box<dyn std::future::Future<Output = Instant> + Send>>),
    /// Stop polling (the rate limit's slot is past the deadline).
    Stop(Stop),
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
    /// It ended after delivering events: reconnect after the reconnection time.
    Delivered,
    /// It ended, or went silent, without delivering an event: back off, but
    /// never give up on this account alone.
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
    /// The long-poll token bucket.
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

/// The running schedule of one poller.
#[derive(Debug)]
pub(crate) struct Schedule {
    pub(crate) config: Config,
    rng: Rng,
    started: Option<Instant>,
    deadline: Option<Instant>,
    attempts: u32,
    /// Failures in a row; a success resets it.
    streak: Streak,
    /// Consecutive quick empty replies (LongPoll) or quiet connections
    /// (SSE); a change resets it.
    quick_empties: u32,
    /// The last quiet backoff drawn (decorrelated jitter grows from it).
    previous_quiet: Duration,
    previous_delay: Duration,
    /// The next request has paid its token of the rate limit.
    paid_rate: bool,
    /// The next request holds its slot in the shared budget.
    paid_budget: bool,
    /// The slot it holds, while it waits for it (given back if the poller
    /// is dropped first).
    reserved: Option<Instant>,
    /// The shared admission had no slot before the deadline: polling ends
    /// with `Timeout` at the deadline, without a request over budget.
    refused: bool,
    /// The fixed-rate grid: the planned (unjittered) start of the last tick.
    tick: Option<Instant>,
    /// The adaptive interval in force (equals `config.interval` otherwise).
    current: Duration,
    /// The expected time left that the last status reported, for the next tick.
    eta: Option<Duration>,
    /// Why the last planned wait is as long as it is.
    reason: Reason,
    /// Time already spent waiting before a restart (from a checkpoint).
    carried: Duration,
}

impl Schedule {
    pub(crate) fn new(config: Config) -> Self {
        let rng = config.seed.map_or_else(Rng::from_entropy, Rng::seeded);
        Schedule {
            previous_delay: config.interval,
            config,
            rng,
            started: None,
            deadline: None,
            attempts: 0,
            streak: Streak::default(),
            quick_empties: 0,
            previous_quiet: Duration::ZERO,
            paid_rate: false,
            paid_budget: false,
            reserved: None,
            refused: false,
            tick: None,
            current: Duration::ZERO,
            eta: None,
            reason: Reason::Start,
            carried: Duration::ZERO,
        }
    }

    /// Starts the clock: the deadline counts from here.
    pub(crate) fn start(&mut self, now: Instant) {
        if let Some(seed) = self.config.seed {
            self.rng = Rng::seeded(seed);
        }
        self.started = Some(now);
        // Decorrelated jitter grows from the previous delay: start it from
        // the configured interval, not the default one.
        self.previous_delay = self.config.interval;
        self.current = match self.config.adaptive {
            Some((floor, cap)) => self.config.interval.max(floor).min(cap),
            None => self.config.interval,
        };
        self.deadline = self.deadline_from(now);
    }

    /// When the first request may start: now, or a random time up to the
    /// configured stagger later (never past the deadline).
    pub(crate) fn first_at(&mut self, now: Instant) -> Instant {
        match self.config.stagger {
            Some(max) if !max.is_zero() => {
                let delay = self.rng.between(Duration::ZERO, max);
                self.cap(later(now, delay))
            }
            _ => now,
        }
    }

    /// Whether [`start`](Self::start) ran.
    pub(crate) fn started(&self) -> bool {
        self.started.is_some()
    }

    /// Records that a request starts now.
    #[inline]
    pub(crate) fn attempt(&mut self, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        crate::life::requested();
        if let Some(stats) = &self.config.stats {
            stats.request();
        }
        if self.tick.is_none() {
            self.tick = Some(now);
        }
    }

    /// Whether anything reads the clock at a request start.
    #[inline]
    pub(crate) fn needs_start_clock(&self) -> bool {
        self.tick.is_none()
            || self.deadline.is_some()
            || self.config.attempt_timeout.is_some()
            || self.config.admission.is_some()
            || self.config.rate.is_some()
            || self.config.stats.is_some()
    }

    /// Requests started so far.
    #[inline]
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since [`start`](Self::start), plus any carried over by a checkpoint.
    pub(crate) fn elapsed(&self, now: Instant) -> Duration {
        let here = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        here.saturating_add(self.carried)
    }

    /// Where the wait stands now, with the strategy's resume position.
    pub(crate) fn checkpoint<C>(&self, cursor: Option<C>) -> crate::Checkpoint<C> {
        crate::Checkpoint {
            attempts: self.attempts,
            elapsed: self.elapsed(Instant::now()),
            cursor,
        }
    }

    /// Goes on from a checkpoint: the attempts made and the time spent count
    /// toward the limits as if the wait had never stopped. After the first
    /// poll, the clock restarts from the checkpoint's time spent.
    pub(crate) fn resume(&mut self, attempts: u32, elapsed: Duration) {
        self.attempts = attempts;
        self.carried = elapsed;
        if self.started.is_some() {
            let now = Instant::now();
            self.started = Some(now);
            self.deadline = self.deadline_from(now);
        }
    }

    /// Sets the overall deadline; after the first poll it still counts from
    /// the first poll.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.config.timeout = Some(timeout);
        if let Some(started) = self.started {
            self.deadline = self.deadline_from(started);
        }
    }

    /// Seeds the jitter; after the first poll the sequence restarts now.
    pub(crate) fn set_seed(&mut self, seed: u64) {
        self.config.seed = Some(seed);
        self.rng = Rng::seeded(seed);
    }

    /// The deadline for a clock started at `started`.
    fn deadline_from(&self, started: Instant) -> Option<Instant> {
        self.config
            .timeout
            .and_then(|t| started.checked_add(t.saturating_sub(self.carried)))
    }

    /// Time left before the deadline, if there is one.
    #[inline]
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }

    /// Whether polling may go on after a request that ended at `now`.
    ///
    /// The deadline is checked here, after a response, never before a request:
    /// the last wait is shortened to end at the deadline (see [`cap`](Self::cap)),
    /// so one final request is always made at the deadline before `Timeout`.
    #[inline]
    pub(crate) fn check(&self, now: Instant) -> Result<(), Stop> {
        self.check_deadline(now)?;
        if self
            .config
            .max_attempts
            .is_some_and(|max| self.attempts >= max)
        {
            return Err(Stop::Exhausted {
                attempts: self.attempts,
            });
        }
        Ok(())
    }

    /// Whether a poller resumed from a checkpoint may still make a request:
    /// one that is already past its deadline or attempt limit may not. A
    /// fresh poller always makes its first request (even with a zero timeout).
    pub(crate) fn check_resumed(&self, now: Instant) -> Result<(), Stop> {
        if self.carried.is_zero() && self.attempts == 0 {
            return Ok(());
        }
        self.check(now)
    }

    /// Turns "the next start is at `at`" into a plan: stop if the deadline or
    /// the attempt limit says so, else go at `at` capped by the deadline.
    #[inline]
    pub(crate) fn plan(&mut self, now: Instant, at: Instant) -> Plan {
        if let Err(stop) = self.check(now) {
            return Plan::Stop(stop);
        }
        let at = self.cap(at);
        if at <= now { Plan::Now } else { Plan::At(at) }
    }

    /// When a request that is due now may start: now, or later when the
    /// rate limit (a token bucket) or the shared budget says so. Called right
    /// before every request would start, again after each wait it asked for,
    /// so that every start, progress or retry, pays for its token, and only
    /// requests that are really made draw from the budget.
    ///
    /// The rate limit is a hard ceiling: a slot past the deadline stops
    /// polling rather than start early. A budget slot past the deadline is
    /// not taken: the final request goes out at the deadline without holding
    /// back other pollers' slots.
    #[inline]
    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        if self.refused {
            return Admit::Stop(self.timeout_stop(now));
        }
        if !self.paid_rate {
            if let Some(bucket) = &mut self.config.rate {
                let slot = bucket.peek(now);
                if slot > now {
                    // Jitter may delay a start, never advance it; the token
                    // is taken at the actual start, so a delayed start
                    // pushes the next slots back and the ceiling holds.
                    let wait = self.config.jitter.above(slot - now, &mut self.rng);
                    let at = later(now, wait);
                    if self.deadline.is_some_and(|d| at > d) {
                        return Admit::Stop(self.timeout_stop(now));
                    }
                    self.reason = Reason::Pacing;
                    return Admit::At(at);
                }
                bucket.take(now, bucket.period());
            }
            self.paid_rate = true;
        }
        if !self.paid_budget {
            self.paid_budget = true;
            if let Some(admission) = &self.config.admission {
                match admission.reserve(now, self.deadline) {
                    crate::Reservation::At(slot) if slot > now => {
                        return Admit::At(self.answered(now, slot));
                    }
                    crate::Reservation::At(_) => {}
                    crate::Reservation::Pending(answer) => {
                        self.reason = Reason::Budget;
                        return Admit::Ask(answer);
                    }
                }
            }
        }
        self.paid_rate = false;
        self.paid_budget = false;
        self.reserved = None;
        Admit::Go
    }

    /// The shared admission answered `slot`, ahead of `now`: when to look
    /// again. A slot at or past the deadline is a refusal: wait for the
    /// deadline, then stop, so that pollers sharing a deadline do not all
    /// make a final request over budget.
    pub(crate) fn answered(&mut self, now: Instant, slot: Instant) -> Instant {
        self.reason = Reason::Budget;
        match self.deadline {
            Some(deadline) if slot > now && slot >= deadline => {
                self.refused = true;
                deadline.max(now)
            }
            _ => {
                self.reserved = Some(slot);
                slot
            }
        }
    }

    /// Why the last planned wait is as long as it is.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn reason(&self) -> Reason {
        self.reason
    }

    /// Whether the user asked for stats (so waits are worth timing).
    pub(crate) fn counting(&self) -> bool {
        self.config.stats.is_some()
    }

    /// Counts an actual wait in the user's stats.
    #[inline]
    pub(crate) fn waited(&self, d: Duration) {
        if let Some(stats) = &self.config.stats {
            stats.wait(d);
        }
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
        let delay = match how {
            Disconnect::Delivered => {
                self.alive();
                base
            }
            Disconnect::Empty => {
                let step = self.quick_empties;
                self.quick_empties = self.quick_empties.saturating_add(1);
                // The first reconnect waits the reconnection time; the backoff
                // only grows the delay while reconnects keep failing.
                match step.checked_sub(1) {
                    None => base,
                    Some(step) => base.max(self.config.retry.unjittered(step)),
                }
            }
            Disconnect::Failed { hint } => {
                match self
                    .streak
                    .failed(now, hint, &mut self.config.retry, &mut self.rng)
                {
                    Verdict::GiveUp => return None,
                    Verdict::Hinted(hint) => {
                        self.reason = Reason::Hint;
                        let delay = self.spread_hint(hint);
                        return Some(self.rebase(now, delay));
                    }
                    // The first failure after a working connection waits
                    // the reconnection time, as a browser does.
                    Verdict::Backoff { step: 0, .. } => base,
                    Verdict::Backoff { delay, .. } => {
                        self.reason = Reason::Backoff;
                        base.max(delay)
                    }
                }
            }
        };
        let delay = self.config.jitter.above(delay, &mut self.rng);
        Some(self.rebase(now, delay))
    }

    /// A connection is alive (it delivered bytes): the next failure is the
    /// first of a new streak.
    pub(crate) fn alive(&mut self) {
        self.streak.reset(&mut self.config.retry);
        self.quick_empties = 0;
        self.previous_quiet = Duration::ZERO;
    }

    /// Counts a failed request (or connection) in the user's stats: every
    /// one, the one that ends polling included.
    pub(crate) fn count_error(&self) {
        if let Some(stats) = &self.config.stats {
            stats.error();
        }
    }

    /// A server hint, clamped to the bounds and spread above.
    fn spread_hint(&mut self, hint: Duration) -> Duration {
        Jitter::Proportional(HINT_SPREAD).above(self.config.clamp_hint(hint), &mut self.rng)
    }

    /// The stop for a deadline that has passed (or will before a start).
    fn timeout_stop(&self, now: Instant) -> Stop {
        Stop::Timeout {
            elapsed: self.elapsed(now),
            attempts: self.attempts,
        }
    }

    /// The time limit of a request starting now: the strategy's own limit
    /// (`own`: the per-request timeout, or LongPoll's wait + margin), but
    /// never more than [`FINAL_GRACE`] past the deadline, so that `timeout`
    /// also bounds a request that never answers.
    #[inline]
    pub(crate) fn request_limit(&self, now: Instant, own: Option<Duration>) -> Option<Duration> {
        let by_deadline = self
            .remaining(now)
            .map(|left| left.saturating_add(FINAL_GRACE));
        match (own, by_deadline) {
            (Some(own), Some(by_deadline)) => Some(own.min(by_deadline)),
            (own, by_deadline) => own.or(by_deadline),
        }
    }

    /// Whether the deadline has passed.
    pub(crate) fn check_deadline(&self, now: Instant) -> Result<(), Stop> {
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(self.timeout_stop(now));
        }
        Ok(())
    }

    /// Never plans past the deadline.
    #[inline]
    pub(crate) fn cap(&self, at: Instant) -> Instant {
        self.deadline.map_or(at, |d| at.min(d))
    }

    /// Adaptive pacing: what the last status said. A change shortens the
    /// interval (halving it, down to the floor), no change lengthens it (by
    /// half, up to the cap); `eta`, the status's expected time left, plans the
    /// next tick near it, within the same bounds.
    pub(crate) fn observe(&mut self, changed: bool, eta: Option<Duration>) {
        let Some((floor, cap)) = self.config.adaptive else {
            return;
        };
        self.current = if changed {
            (self.current / 2).max(floor)
        } else {
            self.current
                .saturating_add(self.current / 2)
                .max(floor)
                .min(cap)
        };
        self.eta = eta.map(|d| d.max(floor).min(cap));
    }

    /// The next start after a success; `hint` is the server's "ask again in".
    #[inline]
    pub(crate) fn after_success(&mut self, now: Instant, hint: Option<Duration>) -> Instant {
        self.alive();
        if let Some(hint) = hint {
            self.reason = Reason::Hint;
            let delay = self.spread_hint(hint);
            return self.rebase(now, delay);
        }
        match self.config.pacing {
            Pacing::Interval => {
                self.reason = if self.eta.is_some() {
                    Reason::Eta
                } else {
                    Reason::Interval
                };
                self.next_tick(now)
            }
            Pacing::Immediate => {
                self.reason = Reason::Pacing;
                now
            }
        }
    }

    /// The next start after a transient error, or `None` when the retry
    /// policy gives up (its count or the streak's time bound).
    pub(crate) fn after_error(&mut self, now: Instant, hint: Option<Duration>) -> Option<Instant> {
        let delay = match self
            .streak
            .failed(now, hint, &mut self.config.retry, &mut self.rng)
        {
            Verdict::GiveUp => return None,
            Verdict::Hinted(hint) => {
                self.reason = Reason::Hint;
                self.spread_hint(hint)
            }
            Verdict::Backoff { delay, .. } => {
                self.reason = Reason::Backoff;
                delay
            }
        };
        Some(self.rebase(now, delay))
    }

    /// Forgives the streak so far: the failures were the path's doing and
    /// the strategy has adapted to them (LongPoll's learned wait).
    pub(crate) fn forgive(&mut self) {
        self.streak.reset(&mut self.config.retry);
    }

    /// The next start after a reply that made no progress and came back
    /// suspiciously fast (a server ignoring the wait): grows like error
    /// backoff, but never ends polling on its own. It is a successful
    /// response all the same: it ends any error streak.
    pub(crate) fn after_quick_empty(&mut self, now: Instant) -> Instant {
        self.streak.reset(&mut self.config.retry);
        let step = self.quick_empties;
        self.quick_empties = self.quick_empties.saturating_add(1);
        self.reason = Reason::Backoff;
        let delay = self
            .config
            .retry
            .nominal(step, self.previous_quiet, &mut self.rng);
        self.previous_quiet = delay;
        self.rebase(now, delay)
    }

    /// Plans `delay` from now and restarts the fixed-rate grid there.
    fn rebase(&mut self, now: Instant, delay: Duration) -> Instant {
        let at = later(now, delay);
        self.tick = Some(at);
        at
    }

    #[inline]
    fn jittered(&mut self, d: Duration) -> Duration {
        if matches!(self.config.jitter, Jitter::None) {
            self.previous_delay = d;
            return d;
        }
        let spread = Spread::around(d, self.previous_delay);
        let delay = self.config.jitter.apply(d, spread, &mut self.rng);
        self.previous_delay = delay;
        delay
    }

    /// The next interval tick after a success at `now`.
    #[inline]
    fn next_tick(&mut self, now: Instant) -> Instant {
        let interval = self.eta.take().unwrap_or(self.current);
        let delay = self.jittered(interval);
        match self.config.cadence {
            Cadence::FixedDelay => later(now, delay),
            Cadence::FixedRate => {
                let last = self.tick.unwrap_or(now);
                let mut tick = later(last, interval);
                if tick < now && !interval.is_zero() {
                    // Skip the ticks a slow response missed, staying on the grid.
                    let behind = (now - tick).as_nanos();
                    let step = interval.as_nanos();
                    let missed = behind.div_ceil(step);
                    let skip = u64::try_from(missed.saturating_mul(step)).unwrap_or(u64::MAX);
                    tick = later(tick, Duration::from_nanos(skip));
                }
                self.tick = Some(tick);
                // The jitter moves this one request around its tick, not the grid.
                let at = if delay >= interval {
                    later(tick, delay - interval)
                } else {
                    tick.checked_sub(interval - delay).unwrap_or(tick)
                };
                at.max(now)
            }
        }
    }
}

impl Drop for Schedule {
    /// A poller dropped while it waits for its budget slot gives it back.
    fn drop(&mut self) {
        if let (Some(slot), Some(admission)) = (self.reserved, &self.config.admission) {
            admission.release(slot);
        }
    }
}

/// `now + d`, saturating at a far-off instant instead of panicking.
#[inline]
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    // Like tokio's own `far_future`: about thirty years is "never" for a poller.
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    if d.is_zero() {
        return now;
    }
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

impl Stop {
    /// The user-facing error for this stop, with the last error of the
    /// streak the wait ended in, if it was failing.
    pub(crate) fn into_error<E>(self, last_error: Option<E>) -> crate::Error<E> {
        match self {
            Stop::Timeout { elapsed, attempts } => crate::Error::Timeout {
                elapsed,
                attempts,
                last_error,
            },
            Stop::Exhausted { attempts } => crate::Error::Exhausted {
                attempts,
                last_error,
            },
        }
    }
}
