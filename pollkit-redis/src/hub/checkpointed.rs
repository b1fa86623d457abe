//! [`Checkpointed`]: a poller whose progress can be saved, so that another
//! instance resumes it (pollkit's strategies, and its combinators over them);
//! [`Stateless`] for pollers that have none; [`Resume`]: what a new holder
//! starts from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use pollkit::long::Reply;
use pollkit::{
    Changes, Checkpoint, FailWith, LongPoll, MapStatus, Poller, ShortPoll, SseStream, TryMapStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A poller that can say where it stands: the checkpoint a
/// [`FleetHub`](crate::FleetHub) publishes with every status, so that the
/// instance that takes a key over resumes from it.
///
/// Implemented for pollkit's three strategies (`ShortPoll`'s cursor is `()`,
/// `LongPoll`'s its cursor, `SseStream`'s the last event id); for the
/// combinators `map_status`, `changes`, `try_map_status` and `fail_with`
/// over any of them, with the checkpoint of the poller inside (so a mapped
/// `SseStream` resumes from its last event id, not only from its last
/// status); and for [`Stateless`], which wraps any other poller (a
/// `BoxPoller`, one of your own) and has no checkpoint.
///
/// `try_map_status` and `fail_with` drop their poller with their terminal
/// error: from then on their checkpoint is empty
/// (`Checkpoint::new(0, Duration::ZERO, None)`). Nothing resumes it: a key
/// whose poller ended stays ended.
///
/// # Examples
/// ```
/// use pollkit::ShortPoll;
/// use pollkit_redis::Checkpointed;
///
/// let poller = ShortPoll::new(|| async { Ok::<_, std::io::Error>(1) });
/// assert_eq!(poller.checkpoint().attempts, 0);
/// ```
pub trait Checkpointed {
    /// The position a checkpoint resumes from; serialized into the stream.
    type Cursor: Serialize + DeserializeOwned + Send + 'static;

    /// Where the poller stands now.
    fn checkpoint(&self) -> Checkpoint<Self::Cursor>;
}

impl<F, Fut, S, E> Checkpointed for ShortPoll<F, Fut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    type Cursor = ();

    fn checkpoint(&self) -> Checkpoint<()> {
        ShortPoll::checkpoint(self)
    }
}

impl<F, Fut, S, C, E> Checkpointed for LongPoll<F, Fut, S, C>
where
    F: FnMut(pollkit::long::Request<C>) -> Fut,
    Fut: Future<Output = Result<Reply<S, C>, E>>,
    C: Clone + PartialEq + Serialize + DeserializeOwned + Send + 'static,
{
    type Cursor = C;

    fn checkpoint(&self) -> Checkpoint<C> {
        LongPoll::checkpoint(self)
    }
}

impl<F, Fut, B, T, E> Checkpointed for SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<B, E>>,
    B: Stream<Item = Result<T, E>>,
    T: AsRef<[u8]>,
{
    type Cursor = String;

    fn checkpoint(&self) -> Checkpoint<String> {
        SseStream::checkpoint(self)
    }
}

/// The checkpoint of the poller inside.
impl<P, F> Checkpointed for MapStatus<P, F>
where
    P: Checkpointed,
{
    type Cursor = P::Cursor;

    fn checkpoint(&self) -> Checkpoint<P::Cursor> {
        self.get_ref().checkpoint()
    }
}

/// The checkpoint of the poller inside.
impl<P> Checkpointed for Changes<P>
where
    P: Poller + Checkpointed,
{
    type Cursor = P::Cursor;

    fn checkpoint(&self) -> Checkpoint<P::Cursor> {
        self.get_ref().checkpoint()
    }
}

/// The checkpoint of the poller inside; once the stream has ended (it drops
/// its poller with its terminal error), an empty one:
/// `Checkpoint::new(0, Duration::ZERO, None)`. Nothing resumes a poller that
/// ended: the hub ends the key.
///
/// # Examples
/// A mapped `SseStream` resumes from its last event id:
/// ```
/// use futures::StreamExt;
/// use pollkit::{Poller, SseStream};
/// use pollkit_redis::Checkpointed;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut poller = SseStream::new(|_last_id: Option<String>| async {
///     let body: &[u8] = b"id: 7\ndata: 42\n\n";
///     Ok::<_, std::io::Error>(futures::stream::iter([Ok(body)]))
/// })
/// .try_map_status(|event| {
///     event
///         .data()
///         .parse::<u64>()
///         .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
/// });
/// assert_eq!(poller.next().await.unwrap().unwrap(), 42);
/// assert_eq!(poller.checkpoint().cursor.as_deref(), Some("7"));
/// # }
/// ```
impl<P, F> Checkpointed for TryMapStatus<P, F>
where
    P: Checkpointed,
{
    type Cursor = P::Cursor;

    fn checkpoint(&self) -> Checkpoint<P::Cursor> {
        checkpoint_or_empty(self.get_ref())
    }
}

/// The checkpoint of the poller inside; once the stream has ended (it drops
/// its poller with its terminal error), an empty one:
/// `Checkpoint::new(0, Duration::ZERO, None)`. Nothing resumes a poller that
/// ended: the hub ends the key.
impl<P, F> Checkpointed for FailWith<P, F>
where
    P: Checkpointed,
{
    type Cursor = P::Cursor;

    fn checkpoint(&self) -> Checkpoint<P::Cursor> {
        checkpoint_or_empty(self.get_ref())
    }
}

/// The checkpoint of a combinator's poller, or an empty one once the
/// combinator has dropped it at its terminal error.
fn checkpoint_or_empty<P: Checkpointed>(poller: Option<&P>) -> Checkpoint<P::Cursor> {
    match poller {
        Some(poller) => poller.checkpoint(),
        None => Checkpoint::new(0, Duration::ZERO, None),
    }
}

/// Any poller, without a checkpoint: a new holder resumes from the last
/// status alone ([`Resume::status`]). For pollers whose strategy's
/// checkpoint is out of reach: erased into a `BoxPoller`, or pollers of your
/// own. pollkit's strategies and the combinators over them (`map_status`,
/// `changes`, `try_map_status`, `fail_with`) need no wrapper: they are
/// [`Checkpointed`] themselves.
///
/// # Examples
/// ```
/// use pollkit::{Poller, ShortPoll};
/// use pollkit_redis::{Checkpointed, Stateless};
///
/// let poller = Stateless::new(
///     ShortPoll::new(|| async { Ok::<_, std::io::Error>(7) }).boxed_poller(),
/// );
/// assert_eq!(poller.checkpoint().cursor, None);
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Stateless<P> {
    inner: Pin<Box<P>>,
}

impl<P> Stateless<P> {
    /// Wraps `poller`.
    pub fn new(poller: P) -> Self {
        Stateless {
            inner: Box::pin(poller),
        }
    }
}

impl<P> fmt::Debug for Stateless<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stateless { .. }")
    }
}

impl<P: Poller> Stream for Stateless<P> {
    type Item = Result<P::Status, pollkit::Error<P::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<P> Checkpointed for Stateless<P> {
    type Cursor = ();

    fn checkpoint(&self) -> Checkpoint<()> {
        Checkpoint::new(0, Duration::ZERO, None)
    }
}

/// What the instance that takes a key over starts from: the last status
/// published for the key and the checkpoint published with it (both `None`
/// for a key nobody polled yet, or whose stream expired).
///
/// # Examples
/// ```
/// use pollkit::LongPoll;
/// use pollkit::long::{Reply, Request};
/// use pollkit_redis::Resume;
///
/// fn make(resume: Resume<u64, u64>) -> impl pollkit::Poller<Status = u64> {
///     let poller = LongPoll::new(|req: Request<u64>| {
///         let next = req.cursor().copied().unwrap_or(0) + 1;
///         async move { Ok::<_, std::io::Error>(Reply::changed(next, next)) }
///     });
///     // Goes on from the last cursor published, if any.
///     match resume.checkpoint {
///         Some(checkpoint) => poller.resume(checkpoint),
///         None => poller,
///     }
/// }
/// # let _ = make(Resume::default());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Resume<S, C> {
    /// The last status published for the key.
    pub status: Option<S>,
    /// The checkpoint published with it.
    pub checkpoint: Option<Checkpoint<C>>,
}

impl<S, C> Default for Resume<S, C> {
    fn default() -> Self {
        Resume {
            status: None,
            checkpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::pin;

    use futures_util::StreamExt;
    use pollkit::long::Request;

    use super::*;

    /// A long poll whose cursor counts the changes: 1, 2, ...
    fn counter() -> impl Poller<Status = u64, Error = io::Error> + Checkpointed<Cursor = u64> {
        LongPoll::new(|req: Request<u64>| {
            let next = req.cursor().copied().unwrap_or(0) + 1;
            async move { Ok::<_, io::Error>(Reply::changed(next, next)) }
        })
    }

    /// Two statuses through `poller`; its checkpoint then.
    async fn after_two<P>(poller: P) -> Checkpoint<P::Cursor>
    where
        P: Poller + Checkpointed,
        P::Status: fmt::Debug,
        P::Error: fmt::Debug,
    {
        let mut poller = pin!(poller);
        for _ in 0..2 {
            poller.next().await.unwrap().unwrap();
        }
        poller.checkpoint()
    }

    #[tokio::test]
    async fn mapped_strategies_checkpoint_the_cursor_inside() {
        let plain = after_two(counter()).await;
        assert_eq!((plain.attempts, plain.cursor), (2, Some(2)));
        let mapped = [
            after_two(counter().map_status(|n| n * 10)).await,
            after_two(counter().changes()).await,
            after_two(counter().try_map_status(|n| Ok(n.to_string()))).await,
            after_two(counter().fail_with(|_| None)).await,
            // Nested: the strategy's checkpoint, however deep.
            after_two(
                counter()
                    .changes()
                    .map_status(|n| n + 1)
                    .fail_with(|_| None),
            )
            .await,
        ];
        for checkpoint in mapped {
            // `elapsed` is each poller's own running time.
            assert_eq!((checkpoint.attempts, checkpoint.cursor), (2, Some(2)));
        }
    }

    #[tokio::test]
    async fn a_mapped_sse_stream_checkpoints_its_last_event_id_until_it_fails() {
        let mut poller = pin!(
            SseStream::new(|_: Option<String>| async {
                let body: &[u8] = b"id: 7\ndata: 42\n\nid: 8\ndata: not a number\n\n";
                Ok::<_, io::Error>(futures_util::stream::iter([Ok(body)]))
            })
            .try_map_status(|event| {
                event
                    .data()
                    .parse::<u64>()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
        );
        assert_eq!(poller.next().await.unwrap().unwrap(), 42);
        // Event 8 is parsed but not handed out: the checkpoint is after 7.
        assert_eq!(poller.checkpoint().cursor.as_deref(), Some("7"));
        assert!(poller.next().await.unwrap().is_err());
        // The poller is gone with the terminal error: an empty checkpoint.
        assert_eq!(
            poller.checkpoint(),
            Checkpoint::new(0, Duration::ZERO, None)
        );
    }

    #[tokio::test]
    async fn fail_with_has_an_empty_checkpoint_once_it_failed() {
        let mut poller = pin!(counter().fail_with(|&n| (n == 2).then(|| io::Error::other("2"))));
        poller.next().await.unwrap().unwrap();
        assert_eq!(poller.checkpoint().cursor, Some(1));
        assert!(poller.next().await.unwrap().is_err());
        assert_eq!(
            poller.checkpoint(),
            Checkpoint::new(0, Duration::ZERO, None)
        );
    }
}
