//! The error-retry policy: pollkit's own [`Backoff`], or any
//! `backoff::backoff::Backoff` behind the `backoff` feature.

use std::time::Duration;

use super::backoff::Backoff;
use super::rng::Rng;

/// Which policy spaces retries after transient errors.
#[derive(Debug, Default)]
pub(crate) enum RetryPolicy {
    /// [`Backoff::new()`], kept out of line: most pollers never change it.
    #[default]
    Default,
    Builtin(Box<Backoff>),
    #[cfg(feature = "backoff")]
    External(ExternalBackoff),
}

/// The policy of [`RetryPolicy::Default`].
const DEFAULT: Backoff = Backoff::new();

impl RetryPolicy {
    /// pollkit's own backoff in force, if the policy is one.
    #[inline]
    fn builtin(&self) -> Option<&Backoff> {
        match self {
            RetryPolicy::Default => Some(&DEFAULT),
            RetryPolicy::Builtin(b) => Some(b),
            #[cfg(feature = "backoff")]
            RetryPolicy::External(_) => None,
        }
    }

    /// The delay before retry number `step + 1`, or `None` once retries ran out.
    pub(crate) fn next_delay(
        &mut self,
        step: u32,
        previous: Duration,
        rng: &mut Rng,
    ) -> Option<Duration> {
        match self.builtin() {
            Some(b) => b
                .retries()
                .is_none_or(|max| step < max)
                .then(|| b.draw(step, previous, rng)),
            #[cfg(feature = "backoff")]
            None => match self {
                RetryPolicy::External(x) => x.0.get_mut().next_backoff(),
                _ => None,
            },
            #[cfg(not(feature = "backoff"))]
            None => None,
        }
    }

    /// The bound on the time a streak of failures may last (the external
    /// policy keeps its own, `max_elapsed_time`).
    pub(crate) fn give_up_after(&self) -> Option<Duration> {
        self.builtin().map(Backoff::time_bound)
    }

    /// A growing delay that never runs out (for quick empty long-poll replies).
    pub(crate) fn nominal(&self, step: u32, previous: Duration, rng: &mut Rng) -> Duration {
        self.builtin().unwrap_or(&DEFAULT).draw(step, previous, rng)
    }

    /// The unjittered growing delay for `step` (for quiet reconnects).
    pub(crate) fn unjittered(&self, step: u32) -> Duration {
        self.builtin().unwrap_or(&DEFAULT).delay(step)
    }

    /// A success: the next error starts from the base again.
    pub(crate) fn reset(&mut self) {
        #[cfg(feature = "backoff")]
        if let RetryPolicy::External(x) = self {
            x.0.get_mut().reset();
        }
    }
}

/// A user's `backoff::backoff::Backoff`, boxed once at configuration time.
#[cfg(feature = "backoff")]
pub(crate) struct ExternalBackoff(
    pub(crate) crate::hooks::Exclusive<Box<dyn backoff::backoff::Backoff + Send>>,
);

#[cfg(feature = "backoff")]
impl std::fmt::Debug for ExternalBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalBackoff(..)")
    }
}
