//! [`Until`]: wait for the first status that satisfies a predicate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Future returned by [`Poller::until`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Until<P, Pred> {
        #[pin]
        poller: P,
        pred: Pred,
    }
}

impl<P, Pred> Until<P, Pred> {
    pub(crate) fn new(poller: P, pred: Pred) -> Self {
        Until { poller, pred }
    }

    /// The poller being awaited.
    pub fn get_ref(&self) -> &P {
        &self.poller
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
        loop {
            match ready!(this.poller.as_mut().poll_next(cx)) {
                Some(Ok(status)) if (this.pred)(&status) => return Poll::Ready(Ok(status)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Err(Error::Ended)),
            }
        }
    }
}
