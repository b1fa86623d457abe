//! [`Budget`]: a request rate shared by any number of pollers.

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
    bucket: Arc<Mutex<TokenBucket>>,
    period: Duration,
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
            bucket: Arc::new(Mutex::new(TokenBucket::new(1, period))),
            period,
        }
    }

    /// How many requests may go out at once when the budget is full.
    /// A burst of 0 is taken as 1. Set it before cloning the budget into
    /// pollers: it resets the bucket that every clone shares.
    #[must_use = "`burst` returns the budget to hand to pollers"]
    pub fn burst(self, burst: u32) -> Self {
        let bucket = TokenBucket::new(burst, self.period);
        *self.bucket.lock().unwrap_or_else(PoisonError::into_inner) = bucket;
        self
    }

    /// Reserves the earliest slot at or after `at`, unless none is free at
    /// `at` and the earliest is at or after `limit`: then nothing is
    /// reserved.
    fn reserve_before(&self, at: Instant, limit: Option<Instant>) -> Option<Instant> {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = bucket.peek(at);
        match limit {
            Some(limit) if slot > at && slot >= limit => None,
            _ => Some(bucket.take(at, self.period)),
        }
    }
}

impl crate::Admission for Budget {
    fn reserve(&self, due: Instant, deadline: Option<Instant>) -> crate::Reservation {
        match self.reserve_before(due, deadline) {
            Some(slot) => crate::Reservation::At(slot),
            None => crate::Reservation::Refused,
        }
    }

    /// Gives a slot back: the bucket refills one period sooner.
    fn release(&self, slot: Instant) {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.give_back(slot);
    }
}
