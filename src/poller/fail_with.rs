//! [`FailWith`]: end polling at a status that means failure.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Stream returned by [`Poller::fail_with`].
    ///
    /// Its last item is the first `Err`, its own or the poller's; the poller
    /// (and any connection it holds) is dropped as soon as that item is
    /// yielded, and the stream yields `None` from then on. It is a
    /// [`FusedStream`] whatever the poller.
    #[must_use = "streams do nothing unless polled"]
    pub struct FailWith<P, F> {
        // `None` once ended: an `Err` is terminal, so the poller is dropped at
        // once rather than kept (with an SSE connection, say) until this
        // stream is.
        #[pin]
        poller: Option<P>,
        check: F,
    }
}

impl<P, F> FailWith<P, F> {
    pub(crate) fn new(poller: P, check: F) -> Self {
        FailWith {
            poller: Some(poller),
            check,
        }
    }

    /// The poller inside, to read its state (a strategy's `checkpoint()`);
    /// `None` once this stream has ended (it drops the poller then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }

    /// The poller inside, mutably; `None` once this stream has ended.
    /// Polling it directly would skip this combinator's work.
    pub fn get_mut(&mut self) -> Option<&mut P> {
        self.poller.as_mut()
    }

    /// The poller inside, dropping this combinator; `None` once it has ended.
    pub fn into_inner(self) -> Option<P> {
        self.poller
    }
}

impl<P: fmt::Debug, F> fmt::Debug for FailWith<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailWith")
            .field("poller", &self.poller)
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
        let mut this = self.project();
        let Some(poller) = this.poller.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let item = match ready!(poller.poll_next(cx)) {
            Some(Ok(status)) => match (this.check)(&status) {
                None => return Poll::Ready(Some(Ok(status))),
                Some(e) => Some(Err(Error::Failed(e))),
            },
            // The poller's own `Err` is its last item, and `None` its end.
            ended => ended,
        };
        this.poller.set(None);
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.poller {
            // Any status may be the failure that ends the stream.
            Some(poller) => (0, poller.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

impl<P, F> FusedStream for FailWith<P, F>
where
    P: Poller,
    F: FnMut(&<P as Poller>::Status) -> Option<<P as Poller>::Error>,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
