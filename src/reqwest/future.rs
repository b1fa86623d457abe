//! [`HttpFuture`]: one request made by a helper, as a named future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::HttpError;

/// One request made by a [`reqwest`](super) helper: it sends, checks the
/// answer and reads the body into `T`, or fails with an [`HttpError`].
///
/// It is boxed, once per request: reqwest's body futures are `async fn`s
/// whose types cannot be named, and one allocation is nothing next to a
/// request. It is `Send` and `Unpin`.
///
/// # Cancel safety
/// Dropping it drops the request in flight and closes its connection.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct HttpFuture<T> {
    inner: Pin<Box<dyn Future<Output = Result<T, HttpError>> + Send>>,
}

impl<T> HttpFuture<T> {
    pub(crate) fn new(future: impl Future<Output = Result<T, HttpError>> + Send + 'static) -> Self {
        HttpFuture {
            inner: Box::pin(future),
        }
    }
}

impl<T> Future for HttpFuture<T> {
    type Output = Result<T, HttpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for HttpFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFuture")
            .field("output", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}
