//! Nameable pollers: each strategy with its closure and future boxed, so a
//! poller can be a field of a struct without a generic parameter.
//!
//! A strategy's type names its fetch closure and the closure's future
//! (`ShortPoll<F, Fut>`), and neither can be written down for a closure or
//! an `async` block. These aliases fix both to boxed ones, at the cost of one
//! allocation per request (for the future) and a dynamic call: far below a
//! network request, and unlike [`BoxPoller`](crate::BoxPoller) the value is
//! still the strategy, with every builder method and `checkpoint()`.
//!
//! # Examples
//! A service that owns its watcher:
//! ```
//! use std::time::Duration;
//! use futures::StreamExt;
//! use pollkit::{DynShortPoll, ShortPoll};
//!
//! struct ExportWatcher {
//!     id: u32,
//!     poller: DynShortPoll<u8, std::io::Error>,
//! }
//!
//! impl ExportWatcher {
//!     fn new(id: u32) -> Self {
//!         let mut percent = 0;
//!         let poller = ShortPoll::boxed(move || {
//!             percent += 50;
//!             async move { Ok(percent) }
//!         })
//!         .interval(Duration::from_secs(5));
//!         ExportWatcher { id, poller }
//!     }
//!
//!     async fn next_percent(&mut self) -> Option<u8> {
//!         self.poller.next().await?.ok()
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mut watcher = ExportWatcher::new(7);
//! assert_eq!(watcher.next_percent().await, Some(50));
//! assert_eq!(watcher.next_percent().await, Some(100));
//! assert_eq!(watcher.id, 7);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;

use crate::long::{Reply, Request};
use crate::{FetchFuture, LongPoll, ShortPoll, SseStream};

/// A boxed fetch function of a [`DynShortPoll`].
pub type BoxFetch<S, E> = Box<dyn FnMut() -> FetchFuture<S, E> + Send>;

/// A [`ShortPoll`] whose type can be written down: see [`ShortPoll::boxed`].
pub type DynShortPoll<S, E> = ShortPoll<BoxFetch<S, E>, FetchFuture<S, E>>;

/// A boxed fetch function of a [`DynLongPoll`].
pub type BoxLongFetch<S, C, E> = Box<dyn FnMut(Request<C>) -> FetchFuture<Reply<S, C>, E> + Send>;

/// A [`LongPoll`] whose type can be written down: see [`LongPoll::boxed`].
pub type DynLongPoll<S, C, E> = LongPoll<BoxLongFetch<S, C, E>, FetchFuture<Reply<S, C>, E>, S, C>;

/// A boxed event-stream body: chunks of bytes of type `T` (`Vec<u8>`,
/// `bytes::Bytes`, `&'static [u8]`...).
pub type BoxBody<T, E> = Pin<Box<dyn Stream<Item = Result<T, E>> + Send>>;

/// A boxed connect function of a [`DynSseStream`].
pub type BoxConnect<T, E> = Box<dyn FnMut(Option<String>) -> FetchFuture<BoxBody<T, E>, E> + Send>;

/// An [`SseStream`] whose type can be written down: see [`SseStream::boxed`].
/// `T` is the body's chunk type.
pub type DynSseStream<T, E> =
    SseStream<BoxConnect<T, E>, FetchFuture<BoxBody<T, E>, E>, BoxBody<T, E>>;

impl<S, E> DynShortPoll<S, E>
where
    S: 'static,
    E: 'static,
{
    /// A [`ShortPoll`] of a nameable type ([`DynShortPoll`]) around `fetch`.
    pub fn boxed<Fut>(mut fetch: impl FnMut() -> Fut + Send + 'static) -> Self
    where
        Fut: Future<Output = Result<S, E>> + Send + 'static,
    {
        ShortPoll::new(Box::new(move || Box::pin(fetch()) as FetchFuture<S, E>))
    }
}

impl<S, C, E> DynLongPoll<S, C, E>
where
    S: 'static,
    C: Clone + PartialEq + 'static,
    E: 'static,
{
    /// A [`LongPoll`] of a nameable type ([`DynLongPoll`]) around `fetch`.
    ///
    /// # Examples
    /// ```
    /// use pollkit::long::{Reply, Request};
    /// use pollkit::{DynLongPoll, LongPoll, Poller};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let poller: DynLongPoll<u64, u64, std::io::Error> = LongPoll::boxed(|req: Request<u64>| {
    ///     let next = req.cursor().copied().unwrap_or(0) + 1;
    ///     async move { Ok(Reply::changed(next, next)) }
    /// });
    /// assert_eq!(poller.until(|n| *n == 3).await.unwrap(), 3);
    /// # }
    /// ```
    pub fn boxed<Fut>(mut fetch: impl FnMut(Request<C>) -> Fut + Send + 'static) -> Self
    where
        Fut: Future<Output = Result<Reply<S, C>, E>> + Send + 'static,
    {
        LongPoll::new(Box::new(move |req| {
            Box::pin(fetch(req)) as FetchFuture<Reply<S, C>, E>
        }))
    }
}

impl<T: AsRef<[u8]> + 'static, E: 'static> DynSseStream<T, E> {
    /// An [`SseStream`] of a nameable type ([`DynSseStream`]) around
    /// `connect`, whose body may be any stream of byte chunks of type `T`.
    ///
    /// # Examples
    /// ```
    /// use futures::StreamExt;
    /// use pollkit::{DynSseStream, SseStream};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut events: DynSseStream<&[u8], std::io::Error> =
    ///     SseStream::boxed(|_id: Option<String>| async {
    ///         Ok(futures::stream::iter([Ok(&b"data: hi\n\n"[..])]))
    ///     });
    /// assert_eq!(events.next().await.unwrap().unwrap().data(), "hi");
    /// # }
    /// ```
    pub fn boxed<Fut, B>(mut connect: impl FnMut(Option<String>) -> Fut + Send + 'static) -> Self
    where
        Fut: Future<Output = Result<B, E>> + Send + 'static,
        B: Stream<Item = Result<T, E>> + Send + 'static,
    {
        use futures_util::FutureExt;
        SseStream::new(Box::new(move |id| {
            Box::pin(connect(id).map(|body| body.map(|b| Box::pin(b) as BoxBody<T, E>)))
                as FetchFuture<BoxBody<T, E>, E>
        }))
    }
}
