//! Admission: the rate limit (a token bucket) and the shared admission step
//! (a budget) that every request passes before it starts.

use std::sync::Arc;

use tokio::time::Instant;

use super::limits::{Limits, Stop};
use super::rng::Rng;
use super::{Asked, Jitter, Reason, TokenBucket, later};
use crate::{Admission, Reservation};

/// What admission says about a request that is due now.
pub(crate) enum Admit {
    /// Start it now.
    Go,
    /// Wait until this instant, then ask again.
    At(Instant, Reason),
    /// Wait for the shared admission's answer, then ask again.
    Ask(Asked),
    /// Stop polling (no slot before the deadline).
    Stop(Stop),
}

/// The rate limit and the shared admission of one poller.
#[derive(Default)]
pub(crate) struct Admitter {
    /// A ceiling on request starts (LongPoll's `rate_limit`).
    rate: Option<TokenBucket>,
    /// A shared admission step (a request budget).
    shared: Option<Arc<dyn Admission>>,
    /// The next request has paid its token of the rate limit.
    paid_rate: bool,
    /// The next request holds its slot in the shared admission.
    paid_shared: bool,
    /// The slot it holds, while it waits for it (given back if the poller
    /// is dropped first).
    reserved: Option<Instant>,
    /// The shared admission had no slot before the deadline: polling ends
    /// with `Timeout` at the deadline, without a request over budget.
    refused: bool,
}

impl std::fmt::Debug for Admitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitter")
            .field("rate", &self.rate)
            .field("shared", &self.shared)
            .field("reserved", &self.reserved)
            .finish_non_exhaustive()
    }
}

impl Admitter {
    pub(crate) fn set_rate(&mut self, rate: Option<TokenBucket>) {
        self.rate = rate;
    }

    pub(crate) fn set_shared(&mut self, shared: Arc<dyn Admission>) {
        self.shared = Some(shared);
    }

    /// Whether any admission is configured.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.rate.is_some() || self.shared.is_some()
    }

    /// Whether nothing is configured and nothing is pending: no token or
    /// slot paid, reserved or refused.
    pub(crate) fn idle(&self) -> bool {
        !self.active()
            && !self.paid_rate
            && !self.paid_shared
            && self.reserved.is_none()
            && !self.refused
    }

    /// When a request that is due now may start. Called right before every
    /// request would start, again after each wait it asked for, so that
    /// every start, progress or retry, pays for its token, and only requests
    /// that are really made draw from the shared admission.
    ///
    /// The rate limit is a hard ceiling: a slot past the deadline stops
    /// polling rather than start early.
    #[inline]
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        limits: &Limits,
        jitter: Jitter,
        rng: &mut Rng,
    ) -> Admit {
        if self.refused {
            return Admit::Stop(limits.timeout_stop(now));
        }
        if !self.paid_rate {
            if let Some(bucket) = &mut self.rate {
                let slot = bucket.peek(now);
                if slot > now {
                    // Jitter may delay a start, never advance it; the token
                    // is taken at the actual start, so a delayed start
                    // pushes the next slots back and the ceiling holds.
                    if limits.deadline().is_some_and(|d| slot > d) {
                        // No slot before the deadline: end there, as a
                        // refused budget does.
                        return self.refuse(now, limits, Reason::Pacing);
                    }
                    // The jitter never pushes a start past the deadline (the
                    // slot itself is before it, so the ceiling still holds).
                    let at = limits.cap(later(now, jitter.above(slot - now, rng)));
                    return Admit::At(at, Reason::Pacing);
                }
                bucket.take(now, bucket.period());
            }
            self.paid_rate = true;
        }
        if !self.paid_shared {
            self.paid_shared = true;
            if let Some(shared) = &self.shared {
                match shared.reserve(now, limits.deadline()) {
                    Reservation::At(slot) if slot > now => {
                        return Admit::At(self.answered(now, Some(slot), limits), Reason::Budget);
                    }
                    Reservation::At(_) => {}
                    Reservation::Refused => return self.refuse(now, limits, Reason::Budget),
                    Reservation::Pending(answer) => {
                        return Admit::Ask(Asked::new(answer, Arc::clone(shared)));
                    }
                }
            }
        }
        self.paid_rate = false;
        self.paid_shared = false;
        self.reserved = None;
        Admit::Go
    }

    /// No slot before the deadline: wait for the deadline, then stop, so
    /// that pollers sharing a deadline do not all make a final request over
    /// budget (or the rate limit).
    fn refuse(&mut self, now: Instant, limits: &Limits, reason: Reason) -> Admit {
        match limits.deadline() {
            Some(deadline) if deadline > now => {
                self.refused = true;
                Admit::At(deadline, reason)
            }
            _ => Admit::Stop(limits.timeout_stop(now)),
        }
    }

    /// The shared admission answered `slot` (`None`: refused): when to look
    /// again. A slot at or past the deadline counts as a refusal too.
    pub(crate) fn answered(
        &mut self,
        now: Instant,
        slot: Option<Instant>,
        limits: &Limits,
    ) -> Instant {
        let deadline = limits.deadline();
        match slot {
            Some(slot) if slot <= now => slot,
            Some(slot) if deadline.is_none_or(|d| slot < d) => {
                self.reserved = Some(slot);
                slot
            }
            // Refused without a deadline breaks the contract: go.
            None if deadline.is_none() => now,
            _ => {
                self.refused = true;
                deadline.map_or(now, |d| d.max(now))
            }
        }
    }
}

impl Drop for Admitter {
    /// A poller dropped while it waits for its slot gives it back.
    fn drop(&mut self) {
        if let (Some(slot), Some(shared)) = (self.reserved, &self.shared) {
            shared.release(slot);
        }
    }
}
