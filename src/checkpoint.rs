//! [`Checkpoint`]: a poller's progress as a value, to go on after a restart.

use std::time::Duration;

/// Where a wait stands: requests made, time spent against the deadline, and
/// the position to resume from (a long-poll cursor, an SSE last event id).
///
/// Take one with `checkpoint()` on a strategy, store it (it is serializable
/// with the `serde` feature), and after a restart build the same poller and
/// call `resume(checkpoint)` on it: it goes on waiting where it stopped (the
/// deadline and the attempt limit count what was already spent) instead of
/// from the beginning.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use pollkit::long::{Reply, Request};
/// use pollkit::{Error, LongPoll, Poller};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let fetch = |req: Request<u64>| {
///     let next = req.cursor().copied().unwrap_or(0) + 1;
///     async move { Ok::<_, std::io::Error>(Reply::changed(next, next)) }
/// };
/// let mut poller = LongPoll::new(fetch).timeout(Duration::from_secs(60));
/// poller.next().await;
/// poller.next().await;
/// let saved = poller.checkpoint(); // the service shuts down here
/// assert_eq!((saved.attempts, saved.cursor), (2, Some(2)));
///
/// // ... and after the restart:
/// let resumed = LongPoll::new(fetch).timeout(Duration::from_secs(60)).resume(saved);
/// assert_eq!(resumed.until(|n| *n >= 3).await.unwrap(), 3);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Checkpoint<C = ()> {
    /// Requests (or connections) made so far.
    pub attempts: u32,
    /// Time spent so far, counted against the deadline.
    pub elapsed: Duration,
    /// Where to resume: the last cursor (long polling) or last event id (SSE).
    pub cursor: Option<C>,
}
