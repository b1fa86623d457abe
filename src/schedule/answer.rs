//! [`Answer`]: what the server's last answer was, as the schedule needs to
//! know it to plan the next request.

use std::time::Duration;

/// How a streaming connection ended (SSE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disconnect {
    /// It delivered bytes, then ended: reconnect after the reconnection time.
    Delivered,
    /// It ended, or went silent, without a byte: back off, but never give up
    /// on this account alone.
    Empty,
    /// It failed with a transient error: back off, and give up when the retry
    /// policy says so. `hint` is the server's "retry after".
    Failed { hint: Option<Duration> },
}

/// What the server's last answer was: all the schedule needs to know to say
/// when the next request starts ([`Schedule::next`](super::Schedule::next)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A success; `hint` is the server's "ask again in".
    Success { hint: Option<Duration> },
    /// A transient error; `hint` is the server's "retry after". The retry
    /// policy may give up.
    Error { hint: Option<Duration> },
    /// A reply that made no progress and came back suspiciously fast (a
    /// server ignoring the wait): backs off, never ends polling.
    QuickEmpty,
    /// A cursor that expired again right after a fresh start, `step` such
    /// expiries in a row before this one (from 0): backs off, never ends
    /// polling.
    Expired { step: u32 },
    /// A streaming connection ended like this (SSE), `base` being the
    /// reconnection time in force. A failed one may end polling.
    Disconnect { base: Duration, how: Disconnect },
}
