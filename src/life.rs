//! Signs of life: how a transport tells a [`Fallback`](crate::Fallback)
//! that it is working although it has no status to yield yet.
//!
//! A counter per thread, bumped while a poller is polled. A `Fallback` reads
//! it before and after it polls its active transport: any bump in between
//! came from that transport (polling is synchronous), through any number of
//! wrappers (`map_status`, `BoxPoller`, a user's own stream) and with no
//! extra call. Outside a `Fallback` a bump is one thread-local add.

use std::cell::Cell;

thread_local! {
    static BEATS: Cell<u64> = const { Cell::new(0) };
    static REQUESTS: Cell<u64> = const { Cell::new(0) };
    /// The hinted waits planned on this thread: how many, and the last
    /// one's end.
    static HINTS: Cell<(u64, Option<tokio::time::Instant>)> = const { Cell::new((0, None)) };
}

/// Counts a wait planned on a server's hint, until `until` (for a
/// `Fallback` above it: no other transport may ask that server sooner).
pub(crate) fn hinted(until: tokio::time::Instant) {
    HINTS.with(|h| h.set((h.get().0.wrapping_add(1), Some(until))));
}

/// The hinted waits planned on this thread so far, and the last one's end.
pub(crate) fn hints() -> (u64, Option<tokio::time::Instant>) {
    HINTS.with(Cell::get)
}

/// Counts a request started on this thread (for a `Fallback` above it).
#[inline]
pub(crate) fn requested() {
    REQUESTS.with(|r| r.set(r.get().wrapping_add(1)));
}

/// The requests started on this thread so far.
pub(crate) fn requests() -> u64 {
    REQUESTS.with(Cell::get)
}

/// Reports a sign of life from the transport being polled: bytes or a
/// keep-alive comment on an event stream, a long-poll reply with nothing new.
///
/// The strategies report their own (`SseStream` on every chunk of bytes,
/// `ShortPoll` and `LongPoll` on every successful response). Call it from a
/// poller of your own, in its `poll_next` or in a future it polls, so that
/// [`Fallback::unusable_after`](crate::Fallback::unusable_after) keeps a
/// transport that is quiet but alive.
///
/// The beat is counted on the current thread and seen by the `Fallback`
/// that is polling on it: a transport whose work runs on another task (a
/// spawned poller behind a channel, a `Hub` watch) must beat
/// from the side that `Fallback` polls, for example when it receives from the
/// channel, or its signs of life are not seen.
///
/// # Examples
/// ```
/// use std::task::Poll;
/// use std::time::Duration;
/// use pollkit::{Fallback, Poller, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // A transport of our own: nothing to yield for a minute, but alive, and
/// // it says so every 5 s.
/// let quiet = |_: Option<&u8>| {
///     let mut tick = tokio::time::interval(Duration::from_secs(5));
///     let mut beats = 0;
///     futures::stream::poll_fn(move |cx| {
///         while tick.poll_tick(cx).is_ready() {
///             pollkit::heartbeat();
///             beats += 1;
///             if beats == 13 {
///                 return Poll::Ready(Some(Ok(1)));
///             }
///         }
///         Poll::Pending
///     })
///     .boxed_poller()
/// };
/// let watch = Fallback::new()
///     .then("quiet", quiet)
///     .then("short", |_| ShortPoll::new(|| async { Ok::<u8, String>(2) }).boxed_poller())
///     .unusable_after(Duration::from_secs(30));
/// // Quiet for 60 s, more than `unusable_after`, and still kept.
/// assert_eq!(watch.until(|_| true).await.unwrap(), 1);
/// # }
/// ```
#[inline]
pub fn heartbeat() {
    BEATS.with(|b| b.set(b.get().wrapping_add(1)));
}

/// The signs of life reported on this thread so far.
pub(crate) fn beats() -> u64 {
    BEATS.with(Cell::get)
}
