//! Quiet answers: long-poll replies that make no progress and come back
//! too fast, SSE connections that end without a byte. They slow polling
//! down like errors do, but never end it.

use std::time::Duration;

use super::retry::RetryPolicy;
use super::rng::Rng;

/// Quiet answers in a row.
#[derive(Clone, Debug, Default)]
pub(crate) struct Quiet {
    count: u32,
    /// The last backoff drawn (decorrelated jitter grows from it).
    previous: Duration,
}

impl Quiet {
    /// The delay after one more quick, empty reply: grows like the backoff.
    pub(crate) fn next(&mut self, policy: &RetryPolicy, rng: &mut Rng) -> Duration {
        let step = self.count;
        self.count = self.count.saturating_add(1);
        let delay = policy.nominal(step, self.previous, rng);
        self.previous = delay;
        delay
    }

    /// The delay after one more connection that ended without a byte: the
    /// reconnection time first, then the backoff once it is longer.
    pub(crate) fn next_reconnect(&mut self, base: Duration, policy: &RetryPolicy) -> Duration {
        let step = self.count;
        self.count = self.count.saturating_add(1);
        match step.checked_sub(1) {
            None => base,
            Some(step) => base.max(policy.unjittered(step)),
        }
    }

    /// Something came through: start over.
    pub(crate) fn reset(&mut self) {
        *self = Quiet::default();
    }
}
