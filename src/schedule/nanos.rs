//! [`Nanos`]: a duration in 8 bytes, for state read on every request.

use std::time::Duration;

/// A duration in nanoseconds, in 8 bytes instead of a `Duration`'s 16: the
/// pacer's state and a request's time limit are read on every request, and
/// with many pollers every byte of them is a share of a cache line.
///
/// Exact below 2⁶⁴ − 1 ns (584 years); anything longer is kept as
/// `Duration::MAX`, which every delay treats as "never" anyway, so that
/// `Duration::MAX` round-trips and arithmetic on it (halving it, the
/// fixed-rate grid) behaves as it does on a `Duration`. `u64::MAX` stands
/// for "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Nanos(u64);

/// The stored value for `Duration::MAX` and everything from 2⁶⁴ − 1 ns up.
const SATURATED: u64 = u64::MAX - 1;

impl Nanos {
    pub(crate) const ZERO: Nanos = Nanos(0);
    pub(crate) const NONE: Nanos = Nanos(u64::MAX);

    #[inline]
    pub(crate) fn from(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).map_or(SATURATED, |n| n.min(SATURATED)))
    }

    /// `None` as [`NONE`](Self::NONE).
    #[inline]
    pub(crate) fn from_option(d: Option<Duration>) -> Nanos {
        d.map_or(Nanos::NONE, Nanos::from)
    }

    /// The duration (`Duration::MAX` for a saturated one; not for `NONE`).
    #[inline]
    pub(crate) fn get(self) -> Duration {
        if self.0 >= SATURATED {
            Duration::MAX
        } else {
            Duration::from_nanos(self.0)
        }
    }

    #[inline]
    pub(crate) fn is_zero(self) -> bool {
        self.0 == 0
    }

    #[inline]
    pub(crate) fn is_some(self) -> bool {
        self != Nanos::NONE
    }

    /// The duration, if any.
    #[inline]
    pub(crate) fn as_option(self) -> Option<Duration> {
        self.is_some().then(|| self.get())
    }

    /// The duration, if any, leaving none.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Duration> {
        std::mem::replace(self, Nanos::NONE).as_option()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_584_years_and_saturated_to_max_above() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1500),
            Duration::from_nanos(u64::MAX - 2),
        ] {
            assert_eq!(Nanos::from(d).get(), d);
        }
        for d in [
            Duration::from_nanos(u64::MAX - 1),
            Duration::from_nanos(u64::MAX),
            Duration::from_secs(u64::MAX / 2),
            Duration::MAX,
        ] {
            assert_eq!(Nanos::from(d).get(), Duration::MAX);
            assert!(Nanos::from(d).is_some());
        }
    }

    #[test]
    fn none_is_not_a_duration() {
        assert_eq!(Nanos::from_option(None).as_option(), None);
        assert_eq!(
            Nanos::from_option(Some(Duration::MAX)).as_option(),
            Some(Duration::MAX)
        );
        let mut n = Nanos::from(Duration::from_secs(3));
        assert_eq!(n.take(), Some(Duration::from_secs(3)));
        assert_eq!(n.take(), None);
    }
}
