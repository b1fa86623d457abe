//! Jitter: spreading delays so that many clients do not ask in lock-step.

use std::time::Duration;

use super::rng::{Rng, nanos};

/// How a delay is spread at random, so that a thousand clients started together
/// do not poll (or retry) together.
///
/// The kinds follow AWS's "Exponential Backoff And Jitter", plus a proportional
/// spread for plain intervals. For a nominal delay `d`:
///
/// | kind | delay drawn from |
/// |---|---|
/// | [`None`](Jitter::None) | exactly `d` |
/// | [`Proportional(f)`](Jitter::Proportional) | `[d × (1 − f), d × (1 + f)]` |
/// | [`Full`](Jitter::Full) | `[0, d]` |
/// | [`Equal`](Jitter::Equal) | `[d / 2, d]` |
/// | [`Decorrelated`](Jitter::Decorrelated) | `[low, 3 × previous]`, capped at `high` |
///
/// For [`Decorrelated`](Jitter::Decorrelated), `previous` is the delay drawn
/// last time. For error backoff, `low` is the backoff base and `high` its cap;
/// for a plain interval `d`, `low` is `d / 2` and `high` is `3d / 2`, so the
/// delay always stays within half an interval of the nominal one.
///
/// Draws are reproducible: give the poller a seed (`.seed(n)`) and the same seed
/// yields the same delays.
///
/// # Default
/// [`Jitter::None`].
///
/// # Examples
/// ```
/// use pollkit::Jitter;
///
/// // ±10 % around the interval.
/// let jitter = Jitter::Proportional(0.1);
/// assert_ne!(jitter, Jitter::None);
/// assert_eq!(Jitter::default(), Jitter::None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum Jitter {
    /// No jitter: the delay is exactly the nominal one.
    #[default]
    None,
    /// A uniform spread of ± this fraction of the delay. Fractions outside
    /// `0.0..=1.0` are clamped into it and NaN counts as `0.0`, so a delay is
    /// never negative.
    Proportional(f64),
    /// AWS "full jitter": uniform in `[0, d]`.
    Full,
    /// AWS "equal jitter": uniform in `[d / 2, d]`.
    Equal,
    /// AWS "decorrelated jitter": uniform in `[low, 3 × previous]`, capped.
    Decorrelated,
}

/// Bounds and memory for [`Jitter::Decorrelated`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    pub(crate) low: Duration,
    pub(crate) high: Duration,
    pub(crate) previous: Duration,
}

impl Spread {
    /// The spread used for a plain interval `d`: `[d / 2, 3d / 2]`.
    pub(crate) fn around(d: Duration, previous: Duration) -> Self {
        Spread {
            low: d / 2,
            high: d.saturating_add(d / 2),
            previous,
        }
    }
}

impl Jitter {
    /// The fraction of a proportional jitter after clamping.
    pub(crate) fn clamped_fraction(f: f64) -> f64 {
        if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) }
    }

    /// Draws a delay of at least `d`, spread above it by the width of this
    /// kind's range: `[d, d × (1 + f)]` for `Proportional(f)`, `[d, 2d]` for
    /// `Full`, `[d, 1.5 d]` for `Equal` and `Decorrelated`. For waits that
    /// must never be shorter than planned (a token bucket's slot, an SSE
    /// reconnection time).
    pub(crate) fn above(self, d: Duration, rng: &mut Rng) -> Duration {
        let extra = match self {
            Jitter::None => return d,
            Jitter::Proportional(f) => {
                let f = Self::clamped_fraction(f);
                Duration::from_nanos((nanos(d) as f64 * f) as u64)
            }
            Jitter::Full => d,
            Jitter::Equal | Jitter::Decorrelated => d / 2,
        };
        d.saturating_add(rng.between(Duration::ZERO, extra))
    }

    /// Draws the delay for the nominal delay `d`; `spread` gives the range
    /// of [`Jitter::Decorrelated`], the only kind that needs one (it is not
    /// worked out for the others).
    #[inline]
    pub(crate) fn apply(
        self,
        d: Duration,
        spread: impl FnOnce() -> Spread,
        rng: &mut Rng,
    ) -> Duration {
        match self {
            Jitter::None => d,
            Jitter::Proportional(f) => {
                let f = Self::clamped_fraction(f);
                if f == 0.0 {
                    return d;
                }
                let n = nanos(d) as f64;
                // `as` from f64 to u64 saturates, so huge delays cannot overflow.
                let low = Duration::from_nanos((n * (1.0 - f)) as u64);
                let high = Duration::from_nanos((n * (1.0 + f)) as u64);
                rng.between(low, high)
            }
            Jitter::Full => rng.between(Duration::ZERO, d),
            Jitter::Equal => rng.between(d / 2, d),
            Jitter::Decorrelated => {
                // Cap the range, not the draw: capping the draw would pile
                // most delays onto `high` and keep pollers in lock-step.
                let spread = spread();
                let top = spread.previous.saturating_mul(3).min(spread.high);
                rng.between(spread.low, top.max(spread.low))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(10);

    fn draws(j: Jitter) -> Vec<Duration> {
        let mut rng = Rng::seeded(42);
        let mut prev = D;
        (0..2000)
            .map(|_| {
                prev = j.apply(D, || Spread::around(D, prev), &mut rng);
                prev
            })
            .collect()
    }

    fn bounds(v: &[Duration]) -> (Duration, Duration) {
        (*v.iter().min().unwrap(), *v.iter().max().unwrap())
    }

    #[test]
    fn none_is_exact() {
        assert!(draws(Jitter::None).iter().all(|&d| d == D));
    }

    #[test]
    fn proportional_bounds_and_spread() {
        let (lo, hi) = bounds(&draws(Jitter::Proportional(0.2)));
        assert!(lo >= Duration::from_secs(8) && lo < Duration::from_millis(8_100));
        assert!(hi <= Duration::from_secs(12) && hi > Duration::from_millis(11_900));
    }

    #[test]
    fn proportional_fraction_is_clamped() {
        let (lo, hi) = bounds(&draws(Jitter::Proportional(5.0)));
        assert!(hi <= D * 2 && lo >= Duration::ZERO);
        assert!(
            draws(Jitter::Proportional(f64::NAN))
                .iter()
                .all(|&d| d == D)
        );
        assert!(draws(Jitter::Proportional(-1.0)).iter().all(|&d| d == D));
    }

    #[test]
    fn full_and_equal_bounds() {
        let (lo, hi) = bounds(&draws(Jitter::Full));
        assert!(lo < Duration::from_millis(100) && hi <= D && hi > Duration::from_millis(9_900));
        let (lo, hi) = bounds(&draws(Jitter::Equal));
        assert!(lo >= D / 2 && lo < Duration::from_millis(5_100) && hi <= D);
    }

    #[test]
    fn decorrelated_stays_within_half_an_interval() {
        let (lo, hi) = bounds(&draws(Jitter::Decorrelated));
        assert!(lo >= D / 2 && hi <= D + D / 2);
        assert!(hi > D + D / 2 - Duration::from_millis(200));
    }

    #[test]
    fn above_never_shortens() {
        let mut rng = Rng::seeded(5);
        for j in [
            Jitter::None,
            Jitter::Proportional(0.2),
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let v: Vec<Duration> = (0..500).map(|_| j.above(D, &mut rng)).collect();
            let (lo, hi) = bounds(&v);
            assert!(lo >= D, "{j:?}");
            assert!(hi <= D * 2, "{j:?}");
            if j != Jitter::None {
                assert!(hi > D, "{j:?} spreads");
            }
        }
        assert_eq!(Jitter::Full.above(Duration::MAX, &mut rng), Duration::MAX);
    }

    #[test]
    fn huge_delays_do_not_overflow() {
        let mut rng = Rng::seeded(1);
        for j in [
            Jitter::Proportional(1.0),
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let d = j.apply(
                Duration::MAX,
                || Spread::around(Duration::MAX, Duration::MAX),
                &mut rng,
            );
            assert!(d <= Duration::MAX);
        }
    }
}
