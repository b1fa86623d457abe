//! Choosing a strategy at run time: a type-erased poller, and an object-safe
//! transport trait for users who write their transport as a type.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;

use crate::long::{Reply, Request};
use crate::{Error, LongPoll, Poller, ShortPoll};

/// A poller of any strategy behind one type, for services that pick short
/// polling, long polling or SSE from configuration at run time.
///
/// Made with [`Poller::boxed_poller`] or [`BoxPoller::new`]. It costs one
/// allocation when made and a dynamic call per item; the strategies themselves
/// stay fully static when used directly.
///
/// It is a [`FusedStream`]: after its last item (an `Err`, or the end) it
/// drops the poller inside, with any connection it holds, and yields `None`
/// from then on.
///
/// # Examples
/// See [`Poller::boxed_poller`].
#[must_use = "streams do nothing unless polled"]
pub struct BoxPoller<S, E> {
    // `None` once the poller has ended: an `Err` item is always a poller's
    // last, so it is dropped then rather than kept until this box is.
    inner: Option<Erased<S, E>>,
}

type Erased<S, E> = Pin<Box<dyn Stream<Item = Result<S, Error<E>>> + Send>>;

impl<S, E> BoxPoller<S, E> {
    /// Erases the type of `poller`.
    pub fn new<P>(poller: P) -> Self
    where
        P: Poller<Status = S, Error = E> + Send + 'static,
    {
        BoxPoller {
            inner: Some(Box::pin(poller)),
        }
    }
}

impl<S, E> fmt::Debug for BoxPoller<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxPoller")
            .field("terminated", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl<S, E> Stream for BoxPoller<S, E> {
    type Item = Result<S, Error<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let item = ready!(inner.as_mut().poll_next(cx));
        if !matches!(item, Some(Ok(_))) {
            self.inner = None;
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner
            .as_ref()
            .map_or((0, Some(0)), |inner| inner.size_hint())
    }
}

impl<S, E> FusedStream for BoxPoller<S, E> {
    fn is_terminated(&self) -> bool {
        self.inner.is_none()
    }
}

/// A transport written as a type: one request in, one answer out.
///
/// Object safe (through `async-trait`), so a service can hold
/// `Box<dyn Fetch<Status = S, Error = E>>` chosen at run time. `Req` is what
/// one request needs: `()` for [`ShortPoll::from_fetch`], a
/// [`Request<C>`](crate::long::Request) for [`LongPoll::from_fetch`] (whose
/// `Status` is then a [`Reply`]). Closures remain the main path and pay
/// nothing for this; a `Fetch` pays one boxed future per request.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Fetch, Poller, ShortPoll};
///
/// struct ExportApi { id: u32 }
///
/// #[async_trait::async_trait]
/// impl Fetch for ExportApi {
///     type Status = String;
///     type Error = std::io::Error;
///     async fn fetch(&self, _: ()) -> Result<String, std::io::Error> {
///         Ok(format!("export {} completed", self.id))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let transport: Box<dyn Fetch<Status = String, Error = std::io::Error>> =
///     Box::new(ExportApi { id: 7 });
/// let status = ShortPoll::from_fetch(transport)
///     .interval(Duration::from_secs(5))
///     .until(|s| s.ends_with("completed"))
///     .await
///     .unwrap();
/// assert_eq!(status, "export 7 completed");
/// # }
/// ```
#[async_trait::async_trait]
pub trait Fetch<Req: Send + 'static = ()>: Send + Sync {
    /// What one request returns on success.
    type Status: Send + 'static;
    /// What one request returns on failure.
    type Error: Send + 'static;

    /// Makes one request.
    async fn fetch(&self, request: Req) -> Result<Self::Status, Self::Error>;
}

#[async_trait::async_trait]
impl<Req, T> Fetch<Req> for Box<T>
where
    Req: Send + 'static,
    T: Fetch<Req> + ?Sized,
{
    type Status = T::Status;
    type Error = T::Error;

    async fn fetch(&self, request: Req) -> Result<Self::Status, Self::Error> {
        (**self).fetch(request).await
    }
}

#[async_trait::async_trait]
impl<Req, T> Fetch<Req> for Arc<T>
where
    Req: Send + 'static,
    T: Fetch<Req> + ?Sized,
{
    type Status = T::Status;
    type Error = T::Error;

    async fn fetch(&self, request: Req) -> Result<Self::Status, Self::Error> {
        (**self).fetch(request).await
    }
}

/// The boxed future a [`Fetch`] request becomes.
pub type FetchFuture<S, E> = Pin<Box<dyn Future<Output = Result<S, E>> + Send + 'static>>;

impl ShortPoll<(), FetchFuture<(), ()>> {
    /// A short poller around a [`Fetch`] transport (which may be a
    /// `Box<dyn Fetch<..>>` chosen at run time).
    #[allow(clippy::type_complexity)]
    pub fn from_fetch<T>(
        transport: T,
    ) -> ShortPoll<
        impl FnMut() -> FetchFuture<T::Status, T::Error> + Send,
        FetchFuture<T::Status, T::Error>,
    >
    where
        T: Fetch + 'static,
    {
        let transport = Arc::new(transport);
        ShortPoll::new(move || {
            let transport = Arc::clone(&transport);
            Box::pin(async move { transport.fetch(()).await }) as FetchFuture<_, _>
        })
    }
}

impl LongPoll<(), FetchFuture<(), ()>, (), ()> {
    /// A long poller around a [`Fetch`] transport whose requests are
    /// [`Request<C>`](Request) and whose answers are [`Reply<S, C>`](Reply).
    #[allow(clippy::type_complexity)]
    pub fn from_fetch<T, S, C>(
        transport: T,
    ) -> LongPoll<
        impl FnMut(Request<C>) -> FetchFuture<Reply<S, C>, T::Error> + Send,
        FetchFuture<Reply<S, C>, T::Error>,
        S,
        C,
    >
    where
        T: Fetch<Request<C>, Status = Reply<S, C>> + 'static,
        S: Send + 'static,
        C: Clone + PartialEq + Send + 'static,
    {
        let transport = Arc::new(transport);
        LongPoll::new(move |request| {
            let transport = Arc::clone(&transport);
            Box::pin(async move { transport.fetch(request).await }) as FetchFuture<_, _>
        })
    }
}
