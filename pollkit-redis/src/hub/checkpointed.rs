//! [`Checkpointed`]: a poller whose progress can be saved, so that another
//! instance resumes it; [`Stateless`] for pollers that have none; [`Resume`]:
//! what a new holder starts from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use pollkit::long::Reply;
use pollkit::{Checkpoint, LongPoll, Poller, ShortPoll, SseStream};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A poller that can say where it stands: the checkpoint a
/// [`FleetHub`](crate::FleetHub) publishes with every status, so that the
/// instance that takes a key over resumes from it.
///
/// Implemented for pollkit's three strategies (`ShortPoll`'s cursor is `()`,
/// `LongPoll`'s its cursor, `SseStream`'s the last event id) and for
/// [`Stateless`], which wraps any poller (a mapped one, a `BoxPoller`).
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

/// Any poller, without a checkpoint: a new holder resumes from the last
/// status alone ([`Resume::status`]). For pollers wrapped in combinators
/// (`map_status`, `try_map_status`) or erased into a `BoxPoller`, whose
/// strategy's checkpoint is out of reach.
///
/// # Examples
/// ```
/// use pollkit::{Poller, ShortPoll};
/// use pollkit_redis::{Checkpointed, Stateless};
///
/// let poller = Stateless::new(
///     ShortPoll::new(|| async { Ok::<_, std::io::Error>(7) }).map_status(|n| n * 2),
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
        Checkpoint::new(0, std::time::Duration::ZERO, None)
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
