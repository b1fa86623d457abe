//! A token bucket that limits how often requests may start.

use std::time::Duration;

use tokio::time::Instant;

/// Limits request starts to a burst of `burst` and then one per `period`, as
/// the generic cell rate algorithm: one instant of state, no floating point.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    burst: u32,
    period: Duration,
    /// The "theoretical arrival time": when the bucket would be full again.
    full_at: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(burst: u32, period: Duration) -> Self {
        TokenBucket {
            burst: burst.max(1),
            // A refill is capped at "never" (`later` saturates there), so a
            // longer period must be too, or the burst's slack would outgrow
            // the refills and let extra requests through.
            period: period.min(super::FAR),
            full_at: None,
        }
    }

    /// The refill period.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// The instant `take(now, ..)` would return, without taking a token.
    pub(crate) fn peek(&self, now: Instant) -> Instant {
        let full_at = self.full_at.unwrap_or(now).max(now);
        let slack = self.period.saturating_mul(self.burst - 1);
        full_at.checked_sub(slack).map_or(now, |t| t.max(now))
    }

    /// Takes a token that refills after `cost` (the period, or a jittered
    /// period) and returns the earliest instant at which the request it pays
    /// for may start (`now` when one is available at once).
    #[inline]
    pub(crate) fn take(&mut self, now: Instant, cost: Duration) -> Instant {
        if self.period.is_zero() && cost.is_zero() {
            return now;
        }
        let full_at = self.full_at.unwrap_or(now).max(now);
        // The bucket holds `burst` tokens, so a start is allowed once the
        // theoretical arrival time is no more than `burst - 1` periods ahead.
        let slack = self.period.saturating_mul(self.burst - 1);
        let start = full_at.checked_sub(slack).map_or(now, |t| t.max(now));
        // Saturates far in the future rather than failing open on overflow.
        self.full_at = Some(super::later(full_at, cost));
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_beyond_never_still_allows_only_the_burst() {
        let now = Instant::now();
        let century = Duration::from_secs(86_400 * 365 * 100);
        let mut b = TokenBucket::new(2, century);
        let at_once = (0..4)
            .map(|_| {
                let cost = b.period();
                b.take(now, cost)
            })
            .filter(|start| *start == now)
            .count();
        assert_eq!(at_once, 2);
    }

    #[test]
    fn burst_then_one_per_period() {
        let now = Instant::now();
        let mut b = TokenBucket::new(2, Duration::from_secs(1));
        let starts: Vec<Duration> = (0..5).map(|_| b.take(now, b.period()) - now).collect();
        let secs: Vec<u64> = starts.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [0, 0, 1, 2, 3]);
    }

    #[test]
    fn refills_while_idle() {
        let now = Instant::now();
        let mut b = TokenBucket::new(2, Duration::from_secs(1));
        let p = b.period();
        b.take(now, p);
        b.take(now, p);
        let later = now + Duration::from_secs(10);
        assert_eq!(b.take(later, p), later);
        assert_eq!(b.take(later, p), later);
        assert_eq!(b.take(later, p), later + Duration::from_secs(1));
    }
}
