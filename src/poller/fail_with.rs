//! [`FailWith`]: end polling at a status that means failure.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Stream returned by [`Poller::fail_with`].
    #[must_use = "streams do nothing unless polled"]
    pub struct FailWith<P, F> {
        #[pin]
        poller: P,
        check: F,
        done: bool,
    }
}

impl<P, F> FailWith<P, F> {
    pub(crate) fn new(poller: P, check: F) -> Self {
        FailWith {
            poller,
            check,
            done: false,
        }
    }
}

impl<P: fmt::Debug, F> fmt::Debug for FailWith<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailWith")
            .field("poller", &self.poller)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<P, F> Stream for FailWith<P, F>
where
    P: Poller,
    F: FnMut(&<P as Poller>::Status) -> Option<<P as Poller>::Error>,
{
    type Item = P::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let item = ready!(this.poller.poll_next(cx));
        match item {
            Some(Ok(status)) => match (this.check)(&status) {
                Some(e) => {
                    // An `Err` is terminal: the poller (and its request) stays
                    // untouched from here on and is dropped with this stream.
                    *this.done = true;
                    Poll::Ready(Some(Err(Error::Failed(e))))
                }
                None => Poll::Ready(Some(Ok(status))),
            },
            other => Poll::Ready(other),
        }
    }
}
