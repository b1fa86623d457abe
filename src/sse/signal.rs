//! [`Signal`]: what an [`SseStream`](super::SseStream) tells an observer
//! besides its events.

use std::fmt;
use std::time::Duration;

/// Something that happened on an [`SseStream`](super::SseStream)'s
/// connection, for an observer set with
/// [`on_signal`](super::SseStream::on_signal): comments (keep-alives), a
/// connection that opened, a reconnect about to be waited for and why.
/// Events themselves are the stream's items.
#[non_exhaustive]
pub enum Signal<'a, E> {
    /// A connection opened: `connect` returned a body. `attempt` counts
    /// connections from 1.
    Opened {
        /// The number of this connection, from 1.
        attempt: u32,
    },
    /// A comment line (`: keep-alive`), without its colon and one leading
    /// space. Comments that are not UTF-8 are passed on lossily.
    Comment(&'a str),
    /// The connection ended; the stream connects again after `after`.
    Reconnecting {
        /// How long the stream waits before connecting again.
        after: Duration,
        /// Why the connection ended.
        cause: Cause<'a, E>,
    },
}

/// Why an [`SseStream`](super::SseStream) connection ended.
#[non_exhaustive]
pub enum Cause<'a, E> {
    /// The body ended cleanly.
    Ended,
    /// No bytes arrived for the idle timeout.
    Idle,
    /// The connect did not answer within its timeout.
    TimedOut,
    /// `connect` or the body failed with this error.
    Failed(&'a E),
}

impl<E: fmt::Debug> fmt::Debug for Signal<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Opened { attempt } => {
                f.debug_struct("Opened").field("attempt", attempt).finish()
            }
            Signal::Comment(c) => f.debug_tuple("Comment").field(c).finish(),
            Signal::Reconnecting { after, cause } => f
                .debug_struct("Reconnecting")
                .field("after", after)
                .field("cause", cause)
                .finish(),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Cause<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Ended => f.write_str("Ended"),
            Cause::Idle => f.write_str("Idle"),
            Cause::TimedOut => f.write_str("TimedOut"),
            Cause::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}
