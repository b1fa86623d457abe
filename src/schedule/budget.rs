//! [`Budget`]: a request rate shared by any number of pollers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::bucket::TokenBucket;

/// A request budget that any number of pollers draw from before each request,
/// so that a fleet of pollers never exceeds a rate to one host: a token bucket
/// of `rate` requests per second with a burst of `burst`.
///
/// Each request *reserves* the earliest free slot at or after the time it
/// planned, so when the budget is short every poller slows down and they are
/// served in the order they asked: no poller starves. A reservation never
/// pushes a request past its poller's deadline: a poller that finds no slot
/// before its deadline ends with [`Error::Timeout`](crate::Error::Timeout)
/// at the deadline without a final request, so pollers that share a
/// deadline cannot all make one over budget.
///
/// A poller dropped while it waits gives its slot back: the next request
/// that asks at or before that instant gets it, and the slots booked after
/// it stay where they are, so no slot is ever handed out twice.
///
/// Clone it to share it: clones draw from the same bucket.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use pollkit::{Budget, Poller, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // Two requests per second for the whole fleet, whatever each interval says.
/// let budget = Budget::per_second(2).burst(1);
/// let start = tokio::time::Instant::now();
/// let fleet: Vec<_> = (0..4)
///     .map(|_| ShortPoll::new(|| async { Ok::<_, std::io::Error>(()) })
///         .interval(Duration::ZERO)
///         .budget(budget.clone())
///         .until(|_| true))
///     .collect();
/// futures::future::join_all(fleet).await;
/// // Four first requests at 0, 0.5, 1.0 and 1.5 s.
/// assert_eq!(start.elapsed(), Duration::from_millis(1500));
/// # }
/// ```
#[derive(Clone)]
pub struct Budget {
    slots: Arc<Mutex<Slots>>,
    period: Duration,
}

/// The bucket every clone shares, and the slots given back.
///
/// A slot given back is kept as it is, to be handed to the next request
/// that asks at or before it, rather than taken off the bucket's tail: the
/// slots reserved after it are still booked, so rewinding the tail would
/// hand one of them out twice (two starts in the same instant).
#[derive(Debug)]
struct Slots {
    bucket: TokenBucket,
    /// Slots given back, not yet handed out again (a count per instant: a
    /// burst books several at once).
    freed: BTreeMap<Instant, u32>,
}

impl Slots {
    fn new(bucket: TokenBucket) -> Self {
        Slots {
            bucket,
            freed: BTreeMap::new(),
        }
    }

    /// Forgets the slots given back that have passed: no request can start
    /// in the past.
    fn prune(&mut self, now: Instant) {
        while let Some(entry) = self.freed.first_entry() {
            if *entry.key() >= now {
                break;
            }
            entry.remove();
        }
    }

    /// The earliest slot given back at or after `at`.
    fn freed_at_or_after(&self, at: Instant) -> Option<Instant> {
        self.freed.range(at..).next().map(|(slot, _)| *slot)
    }

    fn take_freed(&mut self, slot: Instant) {
        if let Some(count) = self.freed.get_mut(&slot) {
            *count -= 1;
            if *count == 0 {
                self.freed.remove(&slot);
            }
        }
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// A budget of `rate` requests per second (a rate of 0 is taken as 1),
    /// with a burst of 1 until [`burst`](Self::burst) says otherwise.
    #[must_use]
    pub fn per_second(rate: u32) -> Self {
        let period = Duration::from_secs(1) / rate.max(1);
        Self::every(period)
    }

    /// A budget of one request per `period` (at least one nanosecond).
    #[must_use]
    pub fn every(period: Duration) -> Self {
        let period = period.max(Duration::from_nanos(1));
        Budget {
            slots: Arc::new(Mutex::new(Slots::new(TokenBucket::new(1, period)))),
            period,
        }
    }

    /// How many requests may go out at once when the budget is full.
    /// A burst of 0 is taken as 1. Set it before cloning the budget into
    /// pollers: it resets the bucket that every clone shares.
    #[must_use = "`burst` returns the budget to hand to pollers"]
    pub fn burst(self, burst: u32) -> Self {
        let bucket = TokenBucket::new(burst, self.period);
        *self.lock() = Slots::new(bucket);
        self
    }

    /// Reserves the earliest slot at or after `at`, unless none is free at
    /// `at` and the earliest is at or after `limit`: then nothing is
    /// reserved.
    fn reserve_before(&self, at: Instant, limit: Option<Instant>) -> Option<Instant> {
        let mut slots = self.lock();
        // A freed slot that has passed is lost, even to a request whose `at`
        // is older: handed out late, it would start beside the slot booked
        // after it.
        slots.prune(Instant::now());
        let fresh = slots.bucket.peek(at);
        let freed = slots.freed_at_or_after(at).filter(|slot| *slot < fresh);
        let slot = freed.unwrap_or(fresh);
        if limit.is_some_and(|limit| slot > at && slot >= limit) {
            return None;
        }
        match freed {
            Some(slot) => {
                slots.take_freed(slot);
                Some(slot)
            }
            None => Some(slots.bucket.take(at, self.period)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl crate::Admission for Budget {
    fn reserve(&self, due: Instant, deadline: Option<Instant>) -> crate::Reservation {
        match self.reserve_before(due, deadline) {
            Some(slot) => crate::Reservation::At(slot),
            None => crate::Reservation::Refused,
        }
    }

    /// Gives a slot back: the next request that asks at or before it gets
    /// it (a slot that has passed is lost).
    fn release(&self, slot: Instant) {
        let mut slots = self.lock();
        let now = Instant::now();
        slots.prune(now);
        if slot >= now {
            *slots.freed.entry(slot).or_insert(0) += 1;
        }
    }
}
