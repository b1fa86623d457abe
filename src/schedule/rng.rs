//! A tiny seedable random source for jitter.
//!
//! Jitter needs neither cryptographic quality nor a dependency: it needs to be
//! cheap, to live inside each poller (no thread-local, no lock), and to be
//! reproducible in tests. SplitMix64 passes BigCrush and is one multiply-xorshift
//! chain per draw.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// SplitMix64 state.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A source that gives the same sequence for the same seed.
    pub(crate) const fn seeded(seed: u64) -> Self {
        Rng(seed)
    }

    /// A source seeded from the process's random hasher keys and a counter, so
    /// that pollers created at the same instant still draw different delays.
    pub(crate) fn from_entropy() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        Rng(hasher.finish())
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration drawn uniformly from `[low, high]` (either order), in whole
    /// nanoseconds. Durations past `u64::MAX` nanoseconds (584 years) saturate.
    pub(crate) fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let (low, high) = if low <= high {
            (low, high)
        } else {
            (high, low)
        };
        let low = nanos(low);
        let span = nanos(high) - low;
        // Multiply-shift maps 64 random bits onto [0, span] without modulo bias
        // worth speaking of and without overflow (the product fits in u128).
        let offset = ((u128::from(span) + 1) * u128::from(self.next_u64())) >> 64;
        Duration::from_nanos(low.saturating_add(offset as u64))
    }
}

/// A duration's nanoseconds, saturating at `u64::MAX`.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::seeded(7);
        let mut b = Rng::seeded(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn between_stays_in_bounds_and_reaches_both_ends() {
        let mut rng = Rng::seeded(1);
        let (lo, hi) = (Duration::from_nanos(10), Duration::from_nanos(13));
        let mut seen = [false; 4];
        for _ in 0..1000 {
            let d = rng.between(lo, hi);
            assert!(d >= lo && d <= hi, "{d:?}");
            seen[(d.as_nanos() - 10) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
    }

    #[test]
    fn between_handles_extremes() {
        let mut rng = Rng::seeded(3);
        assert_eq!(rng.between(Duration::ZERO, Duration::ZERO), Duration::ZERO);
        let d = rng.between(Duration::MAX, Duration::MAX);
        assert_eq!(d, Duration::from_nanos(u64::MAX));
        let d = rng.between(Duration::ZERO, Duration::MAX);
        assert!(d <= Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn entropy_sources_differ() {
        assert_ne!(
            Rng::from_entropy().next_u64(),
            Rng::from_entropy().next_u64()
        );
    }
}
