//! [`Schedule`]: the running schedule of one poller, its policies laid out
//! for the cache, and the knobs the builders set.

use std::sync::Arc;
use std::time::Duration;

use super::admit::Admitter;
use super::limits::Limits;
use super::pacing::Pacer;
use super::quiet::Quiet;
use super::rng::Rng;
use super::streak::Streak;
use super::{Cadence, Config, Pacing, Reason, TokenBucket};

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
    pub(super) limits: Limits,
    /// Why the last planned wait is as long as it is.
    pub(super) reason: Reason,
    /// Whether a streak of failures or quiet answers may be under way: set
    /// whenever one grows, so that a success resets them only then and
    /// otherwise reads neither.
    pub(super) unsettled: bool,
    /// The jitter's random numbers.
    pub(super) rng: Rng,
    /// Boxed only when a rate limit or an admission is set.
    pub(super) admitter: Option<Box<Admitter>>,
    /// The knobs that are no policy's own.
    pub(crate) config: Config,
    /// The pacer ends with its own rarely read fields.
    pub(super) pacer: Pacer,
    /// Failures in a row; a success resets it.
    pub(super) streak: Streak,
    /// Quiet answers in a row; a change resets it.
    pub(super) quiet: Quiet,
    /// The jitter's seed (inline: simulations seed every poller).
    pub(super) seed: Option<u64>,
}

impl Schedule {
    /// A schedule that paces successes by `interval` as `pacing` says,
    /// every other knob at its default.
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

    /// Sets the interval between successes.
    pub(crate) fn set_interval(&mut self, interval: Duration) {
        self.pacer.set_interval(interval);
    }

    /// Sets whether the interval counts from a request's start or end.
    pub(crate) fn set_cadence(&mut self, cadence: Cadence) {
        self.pacer.set_cadence(cadence);
    }

    /// Adapts the interval between `floor` and `cap` to how often the
    /// status changes.
    pub(crate) fn set_adaptive(&mut self, floor: Duration, cap: Duration) {
        self.pacer.set_adaptive(floor, cap);
    }

    /// Sets (or, with `None`, removes) the rate limit.
    pub(crate) fn set_rate(&mut self, rate: Option<TokenBucket>) {
        let admitter = self.admitter.get_or_insert_default();
        admitter.set_rate(rate);
        if admitter.idle() {
            // No rate limit, no shared admission and no answer pending
            // (a refusal still ends the wait at the deadline): nothing to ask.
            self.admitter = None;
        }
    }

    /// Makes every start ask a shared admission first.
    pub(crate) fn set_admission(&mut self, admission: Arc<dyn crate::Admission>) {
        self.admitter.get_or_insert_default().set_shared(admission);
    }

    /// Sets the overall deadline; after the first poll it still counts from
    /// the first poll.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.limits.set_timeout(timeout);
    }

    /// Sets the attempt limit.
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
}

/// Where the fields every request reads end, from the schedule's start
/// (the pacer's are the last of them).
#[cfg(test)]
pub(crate) fn hot_end() -> usize {
    std::mem::offset_of!(Schedule, pacer) + super::pacing::hot_end()
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
