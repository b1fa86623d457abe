//! The error streak: failures in a row, how long they have lasted, and
//! whether to retry (after how long) or give up.
//!
//! A streak ends with the first success (for SSE: the first bytes of a
//! connection). Within a streak, a failure the server sent a hint with
//! (`Retry-After`, 503 during maintenance) counts toward the time bound only;
//! one without counts toward `max_retries` too and grows the backoff. A hint
//! longer than the time the bound has left gives up at once.

use std::time::Duration;

use tokio::time::Instant;

use super::retry::RetryPolicy;
use super::rng::Rng;

/// Failures in a row.
#[derive(Clone, Debug, Default)]
pub(crate) struct Streak {
    /// Unhinted failures in a row: the backoff step and the retry count.
    counted: u32,
    /// When the first failure of the streak happened.
    since: Option<Instant>,
    /// The last backoff drawn (decorrelated jitter grows from it).
    previous: Duration,
}

/// What a failure calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Retry after the server's hint (not yet clamped or spread).
    Hinted(Duration),
    /// Retry after this backoff; `step` is the failure's place in the
    /// streak among unhinted ones, from 0.
    Backoff { delay: Duration, step: u32 },
    /// Give up: the retry policy ran out or the streak lasted too long.
    GiveUp,
}

impl Streak {
    /// Records a failure at `now` and says what to do about it.
    pub(crate) fn failed(
        &mut self,
        now: Instant,
        hint: Option<Duration>,
        policy: &mut RetryPolicy,
        rng: &mut Rng,
    ) -> Verdict {
        let since = *self.since.get_or_insert(now);
        let bound = policy.give_up_after();
        if bound.is_some_and(|bound| now.saturating_duration_since(since) >= bound) {
            return Verdict::GiveUp;
        }
        if let Some(hint) = hint {
            // A hint past the time the bound leaves cannot be honoured: the
            // next failure would give up anyway, so give up now, honestly.
            let left =
                bound.map(|bound| bound.saturating_sub(now.saturating_duration_since(since)));
            if left.is_some_and(|left| hint > left) {
                return Verdict::GiveUp;
            }
            return Verdict::Hinted(hint);
        }
        let step = self.counted;
        self.counted = self.counted.saturating_add(1);
        match policy.next_delay(step, self.previous, rng) {
            Some(delay) => {
                self.previous = delay;
                Verdict::Backoff { delay, step }
            }
            None => Verdict::GiveUp,
        }
    }

    /// A success: the next failure starts a new streak.
    pub(crate) fn reset(&mut self, policy: &mut RetryPolicy) {
        if self.since.is_some() || self.counted > 0 {
            *self = Streak::default();
            policy.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backoff;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn gives_up_on_time_not_count_by_default() {
        let mut policy = RetryPolicy::Builtin(Box::default());
        let mut rng = Rng::seeded(1);
        let mut streak = Streak::default();
        let start = Instant::now();
        let mut now = start;
        let mut retries = 0;
        loop {
            match streak.failed(now, None, &mut policy, &mut rng) {
                Verdict::Backoff { delay, .. } => {
                    assert!(delay <= secs(30));
                    now += delay;
                    retries += 1;
                }
                Verdict::GiveUp => break,
                Verdict::Hinted(_) => unreachable!(),
            }
        }
        assert!(now - start >= secs(300) && now - start < secs(330));
        assert!(retries > 10);
    }

    #[test]
    fn hints_count_toward_time_only() {
        let mut policy = RetryPolicy::Builtin(Box::new(Backoff::new().max_retries(1)));
        let mut rng = Rng::seeded(1);
        let mut streak = Streak::default();
        let now = Instant::now();
        for _ in 0..10 {
            let v = streak.failed(now, Some(secs(7)), &mut policy, &mut rng);
            assert_eq!(v, Verdict::Hinted(secs(7)));
        }
        assert!(matches!(
            streak.failed(now, None, &mut policy, &mut rng),
            Verdict::Backoff { step: 0, .. }
        ));
        assert_eq!(
            streak.failed(now, None, &mut policy, &mut rng),
            Verdict::GiveUp
        );
        streak.reset(&mut policy);
        assert!(matches!(
            streak.failed(now, None, &mut policy, &mut rng),
            Verdict::Backoff { step: 0, .. }
        ));
    }
}
