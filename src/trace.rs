//! Tracing hooks: one span per poller, an event per attempt and per planned
//! wait (with the `tracing` feature); nothing at all without it.

use tokio::time::Instant;

use crate::schedule::{Plan, Schedule};

/// The span of one poller, made at its first poll.
#[derive(Debug)]
pub(crate) struct Trace {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
    #[cfg(feature = "tracing")]
    strategy: &'static str,
}

/// Keeps the poller's span entered while it polls the user's future.
pub(crate) struct Entered {
    #[cfg(feature = "tracing")]
    _entered: tracing::span::EnteredSpan,
}

impl Trace {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(strategy: &'static str) -> Self {
        Trace {
            #[cfg(feature = "tracing")]
            span: None,
            #[cfg(feature = "tracing")]
            strategy,
        }
    }

    /// Enters the poller's span (made on first use), so that the user's own
    /// events inside the request are nested under it.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn enter(&mut self, schedule: &Schedule) -> Entered {
        #[cfg(feature = "tracing")]
        {
            let strategy = self.strategy;
            let span = self.span.get_or_insert_with(|| {
                let key = schedule.config.cold().key.as_deref().unwrap_or("");
                tracing::info_span!("poller", strategy, key)
            });
            Entered {
                _entered: span.clone().entered(),
            }
        }
        #[cfg(not(feature = "tracing"))]
        Entered {}
    }

    /// A request (or connection) starts.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn attempt(&self, schedule: &Schedule) {
        #[cfg(feature = "tracing")]
        tracing::debug!(attempt = schedule.attempts(), "request");
    }

    /// The next request is planned (or polling stops).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn plan(&self, schedule: &Schedule, now: Option<Instant>, plan: Plan) {
        #[cfg(feature = "tracing")]
        match plan {
            Plan::Stop(stop) => tracing::debug!(?stop, "stop"),
            Plan::Now => tracing::debug!(
                attempt = schedule.attempts().saturating_add(1),
                delay_ms = 0u64,
                reason = schedule.reason().as_str(),
                "next request"
            ),
            Plan::At(at) => tracing::debug!(
                attempt = schedule.attempts().saturating_add(1),
                delay_ms = now.map_or(0, |now| {
                    u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)
                }),
                reason = schedule.reason().as_str(),
                "next request"
            ),
        }
    }

    /// An SSE connection ended and will be made again.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn reconnect(&self, schedule: &Schedule, delivered: bool) {
        #[cfg(feature = "tracing")]
        tracing::debug!(connections = schedule.attempts(), delivered, "reconnect");
    }

    /// LongPoll lowered its wait after requests kept being cut.
    pub(crate) fn wait_lowered(&self, cut_after: std::time::Duration, wait: std::time::Duration) {
        #[cfg(feature = "tracing")]
        tracing::info!(
            cut_after_ms = u64::try_from(cut_after.as_millis()).unwrap_or(u64::MAX),
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "long-poll requests keep being cut short of the wait (a proxy's read timeout?): lowering the wait"
        );
        #[cfg(not(feature = "tracing"))]
        let _ = (cut_after, wait);
    }

    /// LongPoll's probe of the configured wait was answered: the path no
    /// longer cuts where it did.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn wait_restored(&self, wait: std::time::Duration) {
        #[cfg(feature = "tracing")]
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "a long-poll request held the configured wait again: restoring it"
        );
    }
}
