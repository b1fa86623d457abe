//! [`Changes`]: drop statuses equal to the previous one.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use pin_project_lite::pin_project;

use crate::Poller;

pin_project! {
    /// Stream returned by [`Poller::changes`].
    ///
    /// A [`FusedStream`] when the poller is one (every strategy is).
    #[must_use = "streams do nothing unless polled"]
    pub struct Changes<P: Poller> {
        #[pin]
        poller: P,
        last: Option<<P as Poller>::Status>,
    }
}

impl<P: Poller> Changes<P> {
    pub(crate) fn new(poller: P) -> Self {
        Changes { poller, last: None }
    }

    /// The poller inside, to read its state (a strategy's `checkpoint()`).
    pub fn get_ref(&self) -> &P {
        &self.poller
    }

    /// The poller inside, mutably. Polling it directly would skip this
    /// combinator's work.
    pub fn get_mut(&mut self) -> &mut P {
        &mut self.poller
    }

    /// The poller inside, dropping this combinator.
    pub fn into_inner(self) -> P {
        self.poller
    }
}

impl<P> fmt::Debug for Changes<P>
where
    P: Poller + fmt::Debug,
    <P as Poller>::Status: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes")
            .field("poller", &self.poller)
            .field("last", &self.last)
            .finish()
    }
}

impl<P> Stream for Changes<P>
where
    P: Poller,
    <P as Poller>::Status: PartialEq + Clone,
{
    type Item = P::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            match ready!(this.poller.as_mut().poll_next(cx)) {
                Some(Ok(status)) => {
                    if this.last.as_ref() == Some(&status) {
                        continue;
                    }
                    *this.last = Some(status.clone());
                    return Poll::Ready(Some(Ok(status)));
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.poller.size_hint().1)
    }
}

impl<P> FusedStream for Changes<P>
where
    P: Poller + FusedStream,
    <P as Poller>::Status: PartialEq + Clone,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_terminated()
    }
}
