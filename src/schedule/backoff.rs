//! Exponential backoff for transient errors.

use std::time::Duration;

use super::jitter::{Jitter, Spread};
use super::rng::Rng;

/// How long to wait before retrying after a transient error, and when to give
/// up: exponential growth from a base, by a factor, up to a cap, with jitter,
/// for as long as the failures have lasted less than a time bound. A success
/// resets it.
///
/// The `n`-th consecutive error (counting from 1) waits
/// `min(max_delay, base × factor^(n − 1))`, spread by [`jitter`](Backoff::jitter).
/// An error that comes at least [`give_up_after`](Backoff::give_up_after)
/// after the first error of the streak ends polling with
/// [`Error::Fetch`](crate::Error::Fetch) (or another variant for timeouts),
/// and so does the error after [`max_retries`](Backoff::max_retries)
/// retries, if that is set.
///
/// An error that carries a server hint (see `retry_after` on each strategy)
/// waits the hint instead of the backoff, and counts toward the time bound
/// only: a maintenance window that answers `503` with `Retry-After` is
/// ridden out for as long as `give_up_after` allows, however many times the
/// server asks to come back later.
///
/// # Default
/// - `base`: 1 s
/// - `factor`: 2
/// - `max_delay`: 30 s, so that recovery is noticed within 30 s of a server
///   coming back
/// - `jitter`: [`Jitter::Equal`] (never retries at once, still spreads a herd)
/// - `give_up_after`: 5 min of continuous failure: an upstream restart or a
///   maintenance window of a few minutes is ridden out; an outage that lasts
///   longer ends the wait with the last error
/// - `max_retries`: none
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Backoff, Jitter};
///
/// let backoff = Backoff::new()
///     .base(Duration::from_millis(200))
///     .factor(3.0)
///     .max_delay(Duration::from_secs(10))
///     .jitter(Jitter::Full)
///     .max_retries(8)
///     .give_up_after(Duration::from_secs(120));
/// assert_eq!(backoff.delay(0), Duration::from_millis(200));
/// assert_eq!(backoff.delay(2), Duration::from_millis(1800));
/// assert_eq!(backoff.delay(50), Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    max_retries: Option<u32>,
    give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// The default policy (see the type's `# Default` section).
    #[must_use]
    pub const fn new() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: Jitter::Equal,
            max_retries: None,
            give_up_after: Duration::from_secs(300),
        }
    }

    /// The delay after the first error.
    #[must_use = "setters take the policy by value and return the changed one"]
    pub const fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// The growth factor per consecutive error. Values below `1.0` (and NaN)
    /// are treated as `1.0`: a constant delay, never a shrinking one.
    #[must_use = "setters take the policy by value and return the changed one"]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// The cap on any one delay (before jitter).
    #[must_use = "setters take the policy by value and return the changed one"]
    pub const fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// How the delays are spread. For [`Jitter::Decorrelated`], the bounds are
    /// `base` and `max_delay`.
    #[must_use = "setters take the policy by value and return the changed one"]
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// How many retries in a row may fail before the error ends polling
    /// (errors with a server hint do not count). `0` means the first error
    /// ends polling. Default: no limit (the time bound applies).
    #[must_use = "setters take the policy by value and return the changed one"]
    pub const fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = Some(max_retries);
        self
    }

    /// How long failures may go on in a row before the next one ends
    /// polling: the time from the first error of a streak to the error that
    /// gives up. Waits for server hints count toward it. `Duration::MAX`
    /// means never (then only `max_retries`, the deadline or a permanent
    /// error end a wait). Default: 5 min.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Backoff, Error, Jitter, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let end = ShortPoll::new(|| async { Err::<u32, _>("502 Bad Gateway") })
    ///     .backoff(Backoff::new().jitter(Jitter::None).give_up_after(Duration::from_secs(10)))
    ///     .until(|_| true)
    ///     .await;
    /// // Errors at 0, 1, 3, 7 and 15 s: the one at 15 s is past the bound.
    /// assert!(matches!(end, Err(Error::Fetch("502 Bad Gateway"))));
    /// assert_eq!(start.elapsed(), Duration::from_secs(15));
    /// # }
    /// ```
    #[must_use = "setters take the policy by value and return the changed one"]
    pub const fn give_up_after(mut self, give_up_after: Duration) -> Self {
        self.give_up_after = give_up_after;
        self
    }

    /// The configured retry limit, if any.
    ///
    /// # Examples
    /// ```
    /// use pollkit::Backoff;
    ///
    /// assert_eq!(Backoff::new().retries(), None);
    /// assert_eq!(Backoff::new().max_retries(3).retries(), Some(3));
    /// ```
    pub const fn retries(&self) -> Option<u32> {
        self.max_retries
    }

    /// The configured time bound on a streak of failures
    /// ([`give_up_after`](Self::give_up_after)).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::Backoff;
    ///
    /// assert_eq!(Backoff::new().time_bound(), Duration::from_secs(300));
    /// let patient = Backoff::new().give_up_after(Duration::from_secs(3600));
    /// assert_eq!(patient.time_bound(), Duration::from_secs(3600));
    /// ```
    pub const fn time_bound(&self) -> Duration {
        self.give_up_after
    }

    /// The nominal delay (before jitter) after `step + 1` consecutive errors:
    /// `min(max_delay, base × factor^step)`. Never overflows.
    pub fn delay(&self, step: u32) -> Duration {
        let cap = self.max_delay;
        if self.base >= cap {
            return cap;
        }
        // powf overflows to infinity, which the conversion below turns into the cap.
        let secs = self.base.as_secs_f64() * self.factor.powf(f64::from(step));
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d < cap => d,
            _ => cap,
        }
    }

    /// The jittered delay for `step`, given the previous delay drawn.
    pub(crate) fn draw(&self, step: u32, previous: Duration, rng: &mut Rng) -> Duration {
        let low = self.base.min(self.max_delay);
        let spread = || Spread {
            low,
            high: self.max_delay,
            // A new streak: decorrelated jitter draws its first delay from
            // [base, 3 × base], not from the single point `base`.
            previous: if previous.is_zero() { low } else { previous },
        };
        self.jitter.apply(self.delay(step), spread, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff::new().jitter(Jitter::None);
        let secs: Vec<u64> = (0..8).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn silly_factors_do_not_shrink_or_panic() {
        for f in [0.0, -3.0, f64::NAN, 0.5] {
            assert_eq!(Backoff::new().factor(f).delay(10), Duration::from_secs(1));
        }
        let b = Backoff::new()
            .factor(f64::INFINITY)
            .max_delay(Duration::MAX);
        assert_eq!(b.delay(3), Duration::MAX);
        let b = Backoff::new().factor(1e308).max_delay(Duration::MAX);
        assert_eq!(b.delay(1000), Duration::MAX);
    }

    #[test]
    fn base_above_cap_gives_cap() {
        let b = Backoff::new().base(Duration::from_secs(100));
        assert_eq!(b.delay(0), Duration::from_secs(30));
    }

    #[test]
    fn decorrelated_stays_between_base_and_cap() {
        let b = Backoff::new().jitter(Jitter::Decorrelated);
        let mut rng = Rng::seeded(9);
        let mut prev = Duration::from_secs(1);
        for step in 0..200 {
            prev = b.draw(step, prev, &mut rng);
            assert!(prev >= Duration::from_secs(1) && prev <= Duration::from_secs(30));
        }
    }

    #[test]
    fn decorrelated_spreads_the_first_retry() {
        let b = Backoff::new().jitter(Jitter::Decorrelated);
        let mut rng = Rng::seeded(3);
        let firsts: Vec<Duration> = (0..100)
            .map(|_| b.draw(0, Duration::ZERO, &mut rng))
            .collect();
        assert!(
            firsts
                .iter()
                .all(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(3))
        );
        assert!(firsts.iter().any(|d| *d > Duration::from_millis(2_500)));
    }
}
