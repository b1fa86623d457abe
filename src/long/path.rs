//! [`PathLimit`]: learning the time a proxy or load balancer lets a held
//! request live, from the requests it cuts.
//!
//! A proxy whose read timeout is shorter than the wait answers every quiet
//! long poll with a 504 (or a 502, or a reset) after the same time `T`, and
//! the upstream keeps the abandoned request open until its wait ends. Two
//! such failures in a row, well short of the wait and within a tenth (at least 0.5 s) of each
//! other, teach the limit: from then on the wait asked for is three quarters
//! of `T`, so the server answers before the proxy cuts.

use std::time::Duration;

/// Failures faster than this are refusals, not cuts.
const MIN_CUT: Duration = Duration::from_secs(1);

/// What one poller has learned about its path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PathLimit {
    /// The duration of the last failure that looked like a cut.
    candidate: Option<Duration>,
    /// The wait to ask for at most, once learned.
    learned: Option<Duration>,
}

impl PathLimit {
    /// The wait to ask for, given the configured one.
    pub(crate) fn wait(&self, wait: Duration) -> Duration {
        self.learned.map_or(wait, |limit| wait.min(limit))
    }

    /// A request ended some other way than failing: the next failure does
    /// not make a pair with the last one.
    pub(crate) fn not_cut(&mut self) {
        self.candidate = None;
    }

    /// A request that asked the server to hold `asked` failed after `took`.
    /// Returns the new wait when this failure taught (or lowered) the limit.
    pub(crate) fn failed_after(&mut self, took: Duration, asked: Duration) -> Option<Duration> {
        // Well short of the wait: under nine tenths of it.
        let short = took >= MIN_CUT && took < asked - asked / 10;
        if !short {
            self.candidate = None;
            return None;
        }
        let previous = self.candidate.replace(took);
        let tolerance = (took / 10).max(Duration::from_millis(500));
        let similar = previous.is_some_and(|p| p.abs_diff(took) <= tolerance);
        if !similar {
            return None;
        }
        let limit = took.min(previous.unwrap_or(took)) * 3 / 4;
        if self.learned.is_some_and(|l| l <= limit) {
            return None;
        }
        self.learned = Some(limit);
        self.candidate = None;
        Some(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn two_similar_cuts_teach_the_limit() {
        let mut path = PathLimit::default();
        assert_eq!(path.failed_after(secs(5), secs(30)), None);
        assert_eq!(
            path.failed_after(Duration::from_millis(5_100), secs(30)),
            Some(Duration::from_millis(3_750))
        );
        assert_eq!(path.wait(secs(30)), Duration::from_millis(3_750));
        assert_eq!(path.wait(secs(2)), secs(2));
    }

    #[test]
    fn refusals_full_waits_and_scattered_failures_teach_nothing() {
        let mut path = PathLimit::default();
        for _ in 0..10 {
            assert_eq!(path.failed_after(Duration::from_millis(3), secs(30)), None);
        }
        for _ in 0..10 {
            assert_eq!(path.failed_after(secs(29), secs(30)), None);
        }
        assert_eq!(path.failed_after(secs(2), secs(30)), None);
        assert_eq!(path.failed_after(secs(9), secs(30)), None);
        assert_eq!(path.failed_after(secs(20), secs(30)), None);
        assert_eq!(path.wait(secs(30)), secs(30));
    }

    #[test]
    fn only_lowers() {
        let mut path = PathLimit::default();
        path.failed_after(secs(8), secs(30));
        assert_eq!(path.failed_after(secs(8), secs(30)), Some(secs(6)));
        path.failed_after(secs(4), secs(6));
        assert_eq!(path.failed_after(secs(4), secs(6)), Some(secs(3)));
        assert_eq!(path.wait(secs(30)), secs(3));
    }
}
