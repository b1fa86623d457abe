//! Limits: the overall deadline, the attempt limit, and the time and
//! requests spent against them (a checkpoint carries them across restarts).

use std::time::Duration;

use tokio::time::Instant;

use super::later;

/// How long a request may run past the deadline when there is no per-request
/// timeout: the final request, made at the deadline, gets this long to answer.
pub(crate) const FINAL_GRACE: Duration = Duration::from_secs(5);

/// Why polling stopped on the limits' account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The overall deadline passed.
    Timeout { elapsed: Duration, attempts: u32 },
    /// The attempt limit was reached.
    Exhausted { attempts: u32 },
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

/// The deadline and the attempt limit of one poller.
///
/// The requests made are counted on every request; the bounds are read on
/// every request too, but most pollers set none, so they are boxed only
/// once one is set and an unbounded poller reads one null pointer.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Limits {
    /// Read only by checkpoints and the deadline: first, so that the
    /// fields every request reads end the limits next to what follows.
    started: Option<Instant>,
    attempts: u32,
    bounds: Option<Box<Bounds>>,
}

/// The limits a poller may set, and the time a checkpoint carried over.
#[derive(Debug, Default)]
struct Bounds {
    timeout: Option<Duration>,
    max_attempts: Option<u32>,
    deadline: Option<Instant>,
    /// Time spent before a restart (from a checkpoint).
    carried: Duration,
}

impl Limits {
    /// Sets the overall deadline; after the first poll it still counts from
    /// the first poll.
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        let started = self.started;
        let bounds = self.bounds_mut();
        bounds.timeout = Some(timeout);
        if let Some(started) = started {
            bounds.deadline = bounds.deadline_from(started);
        }
    }

    pub(crate) fn set_max_attempts(&mut self, max: u32) {
        self.bounds_mut().max_attempts = Some(max);
    }

    fn bounds_mut(&mut self) -> &mut Bounds {
        self.bounds.get_or_insert_default()
    }

    /// Starts the clock: the deadline counts from here.
    pub(crate) fn start(&mut self, now: Instant) {
        self.started = Some(now);
        if let Some(bounds) = self.bounds.as_deref_mut() {
            bounds.deadline = bounds.deadline_from(now);
        }
    }

    pub(crate) fn started(&self) -> bool {
        self.started.is_some()
    }

    /// Counts a request that starts now.
    #[inline]
    pub(crate) fn attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    #[inline]
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The deadline, if there is one.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.bounds.as_deref().and_then(|b| b.deadline)
    }

    /// Time carried over by a checkpoint.
    fn carried(&self) -> Duration {
        self.bounds.as_deref().map_or(Duration::ZERO, |b| b.carried)
    }

    /// Time since the start, plus any carried over by a checkpoint.
    pub(crate) fn elapsed(&self, now: Instant) -> Duration {
        let here = self
            .started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        here.saturating_add(self.carried())
    }

    /// Goes on from a checkpoint: the attempts made and the time spent count
    /// toward the limits as if the wait had never stopped. After the first
    /// poll, the clock restarts from the checkpoint's time spent.
    pub(crate) fn resume(&mut self, attempts: u32, elapsed: Duration) {
        self.attempts = attempts;
        if !elapsed.is_zero() || self.bounds.is_some() {
            self.bounds_mut().carried = elapsed;
        }
        if self.started.is_some() {
            self.start(Instant::now());
        }
    }

    /// Time left before the deadline, if there is one.
    #[inline]
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline().map(|d| d.saturating_duration_since(now))
    }

    /// Whether polling may go on after a request that ended at `now`.
    ///
    /// The deadline is checked after a response, never before a request: the
    /// last wait is shortened to end at the deadline (see [`cap`](Self::cap)),
    /// so one final request is always made at the deadline before `Timeout`.
    #[inline]
    pub(crate) fn check(&self, now: Instant) -> Result<(), Stop> {
        self.check_deadline(now)?;
        self.check_attempts()
    }

    /// Whether the attempt limit allows another request (no clock needed).
    #[inline]
    pub(crate) fn check_attempts(&self) -> Result<(), Stop> {
        let max = self.bounds.as_deref().and_then(|b| b.max_attempts);
        if max.is_some_and(|max| self.attempts >= max) {
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
        if self.carried().is_zero() && self.attempts == 0 {
            return Ok(());
        }
        self.check(now)
    }

    /// Whether the deadline has passed.
    #[inline]
    pub(crate) fn check_deadline(&self, now: Instant) -> Result<(), Stop> {
        if self.deadline().is_some_and(|d| now >= d) {
            return Err(self.timeout_stop(now));
        }
        Ok(())
    }

    /// The stop for a deadline that has passed (or will before a start).
    pub(crate) fn timeout_stop(&self, now: Instant) -> Stop {
        Stop::Timeout {
            elapsed: self.elapsed(now),
            attempts: self.attempts,
        }
    }

    /// Never plans past the deadline.
    #[inline]
    pub(crate) fn cap(&self, at: Instant) -> Instant {
        self.deadline().map_or(at, |d| at.min(d))
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

    /// The instant `d` after `now`, capped by the deadline.
    #[inline]
    pub(crate) fn capped_later(&self, now: Instant, d: Duration) -> Instant {
        self.cap(later(now, d))
    }
}

impl Bounds {
    fn deadline_from(&self, started: Instant) -> Option<Instant> {
        self.timeout
            .and_then(|t| started.checked_add(t.saturating_sub(self.carried)))
    }
}
