//! The schedule's answers besides "when": [`Plan`] (go now, at an instant,
//! or stop) and [`Reason`] (why the wait is as long as it is).

use tokio::time::Instant;

use super::Stop;

/// What to do next, once a request or connection has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Stop with this error.
    Stop(Stop),
    /// Go on at once (after yielding to the runtime).
    Now,
    /// Go on at this instant.
    At(Instant),
}

/// Why the next request waits as long as it does (for traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The first request.
    Start,
    /// The interval (adaptive or not).
    Interval,
    /// The status's expected time left.
    Eta,
    /// Error backoff, or backoff after quick empty replies or quiet connections.
    Backoff,
    /// A server hint (`Retry-After`, a poll-after field).
    Hint,
    /// At once after progress, or the rate limit.
    Pacing,
    /// The SSE reconnection time.
    Reconnect,
    /// The shared request budget pushed it later.
    Budget,
}

impl Reason {
    /// The reason as a word for logs.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Interval => "interval",
            Reason::Eta => "eta",
            Reason::Backoff => "backoff",
            Reason::Hint => "hint",
            Reason::Pacing => "pacing",
            Reason::Reconnect => "reconnect",
            Reason::Budget => "budget",
        }
    }
}
