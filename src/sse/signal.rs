//! [`Signal`]: what an [`SseStream`](super::SseStream) tells an observer
//! besides its events.

use std::fmt;
use std::time::Duration;

/// Something that happened on an [`SseStream`](super::SseStream)'s
/// connection, for an observer set with
/// [`on_signal`](super::SseStream::on_signal): comments (keep-alives), a
/// connection that opened, a reconnect about to be waited for and why.
/// Events themselves are the stream's items.
///
/// # Examples
/// ```
/// use std::sync::{Arc, Mutex};
/// use futures::StreamExt;
/// use pollkit::{Jitter, SseStream};
/// use pollkit::sse::{Cause, Signal};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), pollkit::Error<&'static str>> {
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let seen = Arc::clone(&log);
/// let mut tries = 0;
/// let mut events = SseStream::new(move |_id: Option<String>| {
///         tries += 1;
///         let body = futures::stream::iter([Ok(": ping\ndata: hi\n\n")]);
///         async move { if tries == 1 { Err("connection refused") } else { Ok(body) } }
///     })
///     .jitter(Jitter::None)
///     .on_signal(move |signal: &Signal<'_, &str>| seen.lock().unwrap().push(match signal {
///         Signal::Opened { attempt, .. } => format!("opened #{attempt}"),
///         Signal::Comment(text) => format!("comment {text}"),
///         Signal::Reconnecting { after, cause: Cause::Failed(e), .. } => format!("{e}, again in {after:?}"),
///         Signal::Reconnecting { after, .. } => format!("ended, again in {after:?}"),
///         _ => "something new".to_owned(),
///     }));
/// let event = events.next().await.transpose()?;
/// assert_eq!(event.as_ref().map(|e| e.data()), Some("hi"));
/// assert_eq!(*log.lock().unwrap(), ["connection refused, again in 3s", "opened #2", "comment ping"]);
/// # Ok(())
/// # }
/// ```
#[non_exhaustive]
pub enum Signal<'a, E> {
    /// A connection opened: `connect` returned a body. `attempt` counts
    /// connections from 1.
    #[non_exhaustive]
    Opened {
        /// The number of this connection, from 1.
        attempt: u32,
    },
    /// A comment line (`: keep-alive`), without its colon and one leading
    /// space. Comments that are not UTF-8 are passed on lossily.
    Comment(&'a str),
    /// The connection ended; the stream connects again after `after`.
    #[non_exhaustive]
    Reconnecting {
        /// How long the stream waits before connecting again.
        after: Duration,
        /// Why the connection ended.
        cause: Cause<'a, E>,
    },
}

/// Why an [`SseStream`](super::SseStream) connection ended, as
/// [`Signal::Reconnecting`] tells it.
///
/// # Examples
/// ```
/// use std::{sync::{Arc, Mutex}, time::Duration};
/// use futures::StreamExt;
/// use pollkit::sse::{Cause, Signal};
/// use pollkit::{Jitter, SseStream};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), pollkit::Error<std::io::Error>> {
/// let stalls = Arc::new(Mutex::new(0));
/// let seen = Arc::clone(&stalls);
/// let mut events = SseStream::new(|_id: Option<String>| async {
///         // One event, then the body stalls (a proxy stopped forwarding it).
///         Ok(futures::stream::iter([Ok("data: tick\n\n")]).chain(futures::stream::pending()))
///     })
///     .idle_timeout(Duration::from_secs(30))
///     .jitter(Jitter::None)
///     .on_signal(move |signal: &Signal<'_, std::io::Error>| {
///         if let Signal::Reconnecting { cause: Cause::Idle, .. } = signal {
///             *seen.lock().unwrap() += 1;
///         }
///     });
/// let start = tokio::time::Instant::now();
/// for _ in 0..3 {
///     let event = events.next().await.transpose()?;
///     assert_eq!(event.as_ref().map(|e| e.data()), Some("tick"));
/// }
/// // Each stall is noticed after 30 s of silence; the reconnect follows 3 s later.
/// assert_eq!((*stalls.lock().unwrap(), start.elapsed()), (2, Duration::from_secs(2 * (30 + 3))));
/// # Ok(()) }
/// ```
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
