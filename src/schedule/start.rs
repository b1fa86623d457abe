//! What the gate asks of the schedule around a request's start: the clock,
//! the limits, admission and the attempt count.

use std::time::Duration;

use tokio::time::Instant;

use super::rng::Rng;
use super::{Admit, Plan, Reason, Schedule, Stop};

impl Schedule {
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
}
