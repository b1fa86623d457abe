//! [`Until`]: wait for the first status that satisfies a predicate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::future::FusedFuture;
use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Future returned by [`Poller::until`].
    ///
    /// The poller is dropped as soon as the future resolves, with any
    /// connection or request it holds: the answer does not keep a connection
    /// open for as long as the caller keeps the future.
    ///
    /// Once resolved, the future is terminated ([`FusedFuture::is_terminated`]
    /// returns `true`) and polling it again returns [`Poll::Pending`] without
    /// ever waking, as futures-util's `Fuse` does, so it can sit in a
    /// `select!` loop after it has fired.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Until<P, Pred> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        pred: Pred,
    }
}

impl<P, Pred> Until<P, Pred> {
    pub(crate) fn new(poller: P, pred: Pred) -> Self {
        Until {
            poller: Some(poller),
            pred,
        }
    }

    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, Pred> fmt::Debug for Until<P, Pred> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Until")
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl<P, Pred> Future for Until<P, Pred>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
{
    type Output = Result<<P as Poller>::Status, Error<<P as Poller>::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(mut poller) = this.poller.as_mut().as_pin_mut() else {
            // Resolved already: pending forever, as futures-util's `Fuse`.
            return Poll::Pending;
        };
        let output = loop {
            match ready!(poller.as_mut().poll_next(cx)) {
                Some(Ok(status)) if (this.pred)(&status) => break Ok(status),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e),
                None => break Err(Error::Ended),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, Pred> FusedFuture for Until<P, Pred>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
