//! The error-retry policy: pollkit's own [`Backoff`], or any
//! `backoff::backoff::Backoff` behind the `backoff` feature.

use std::time::Duration;

use super::backoff::Backoff;
use super::rng::Rng;

/// Which policy spaces retries after transient errors.
#[derive(Debug)]
pub(crate) enum RetryPolicy {
    Builtin(Backoff),
    #[cfg(feature = "backoff")]
    External(ExternalBackoff),
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::Builtin(Backoff::new())
    }
}

impl RetryPolicy {
    /// The delay before retry number `step + 1`, or `None` once retries ran out.
    pub(crate) fn next_delay(
        &mut self,
        step: u32,
        previous: Duration,
        rng: &mut Rng,
    ) -> Option<Duration> {
        match self {
            RetryPolicy::Builtin(b) => b
                .retries()
                .is_none_or(|max| step < max)
                .then(|| b.draw(step, previous, rng)),
            #[cfg(feature = "backoff")]
            RetryPolicy::External(x) => x.0.get_mut().next_backoff(),
        }
    }

    /// The bound on the time a streak of failures may last (the external
    /// policy keeps its own, `max_elapsed_time`).
    pub(crate) fn give_up_after(&self) -> Option<Duration> {
        match self {
            RetryPolicy::Builtin(b) => Some(b.time_bound()),
            #[cfg(feature = "backoff")]
            RetryPolicy::External(_) => None,
        }
    }

    /// A growing delay that never runs out (for quick empty long-poll replies).
    pub(crate) fn nominal(&self, step: u32, previous: Duration, rng: &mut Rng) -> Duration {
        match self {
            RetryPolicy::Builtin(b) => b.draw(step, previous, rng),
            #[cfg(feature = "backoff")]
            RetryPolicy::External(_) => Backoff::new().draw(step, previous, rng),
        }
    }

    /// The unjittered growing delay for `step` (for quiet reconnects).
    pub(crate) fn unjittered(&self, step: u32) -> Duration {
        match self {
            RetryPolicy::Builtin(b) => b.delay(step),
            #[cfg(feature = "backoff")]
            RetryPolicy::External(_) => Backoff::new().delay(step),
        }
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
