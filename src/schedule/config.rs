//! [`Config`]: the knobs that are not a policy's own, as the builders set
//! them, with the bounds on a server's hint.

use std::time::Duration;

use super::{Jitter, RetryPolicy};

/// The knobs that are not a policy's own, as the builders set them.
///
/// Only the jitter is read on every request; every knob that is off by
/// default lives in [`Cold`], boxed only once one is set, so that a poller
/// that sets none keeps them out of the cache lines its requests touch.
#[derive(Debug)]
pub(crate) struct Config {
    /// How each delay is spread.
    pub(crate) jitter: Jitter,
    /// Knobs read only when set, or once in a while.
    pub(super) cold: Option<Box<Cold>>,
}

/// The knobs that are off by default, or read once in a while (a hint, the
/// first request, a trace).
#[derive(Debug)]
pub(crate) struct Cold {
    /// The per-request timeout.
    pub(crate) attempt_timeout: Option<Duration>,
    /// Counters shared with the user.
    pub(crate) stats: Option<crate::Stats>,
    /// The retry policy: the crate's backoff, or the user's.
    pub(crate) retry: RetryPolicy,
    /// The shortest server hint waited for.
    pub(crate) hint_min: Duration,
    /// The longest server hint waited for.
    pub(crate) hint_max: Duration,
    /// The first request waits a random time up to this (start jitter).
    pub(crate) stagger: Option<Duration>,
    /// The poller's name in traces.
    pub(crate) key: Option<String>,
}

/// The cold knobs' defaults.
const COLD: Cold = Cold {
    attempt_timeout: None,
    stats: None,
    retry: RetryPolicy::Default,
    hint_min: HINT_MIN,
    hint_max: HINT_MAX,
    stagger: None,
    key: None,
};

impl Config {
    /// The knobs read once in a while.
    #[inline]
    pub(crate) fn cold(&self) -> &Cold {
        self.cold.as_deref().unwrap_or(&COLD)
    }

    /// The same, to set one (boxed on the first).
    pub(crate) fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(|| Box::new(COLD))
    }

    /// The retry policy, to draw a delay from or reset: the one set, or
    /// `default` (the default policy keeps no state, so a fresh one stands
    /// in when none is set).
    #[inline]
    pub(super) fn retry<'a>(&'a mut self, default: &'a mut RetryPolicy) -> &'a mut RetryPolicy {
        match self.cold.as_deref_mut() {
            Some(cold) => &mut cold.retry,
            None => default,
        }
    }
}

/// Default lower bound on a server's "ask again in" hint.
pub(crate) const HINT_MIN: Duration = Duration::from_secs(1);
/// Default upper bound on a server's "ask again in" hint.
pub(crate) const HINT_MAX: Duration = Duration::from_secs(600);
/// A server hint is waited in full and spread up to this share above it
/// (one fifth), so a fleet told `Retry-After: 7` comes back over 1.4 s
/// instead of in the same millisecond.
pub(crate) const HINT_SPREAD: f64 = 0.2;

impl Default for Config {
    fn default() -> Self {
        Config {
            jitter: Jitter::None,
            cold: None,
        }
    }
}
