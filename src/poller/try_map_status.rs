//! [`TryMapStatus`]: map each status with a function that can fail.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Stream returned by [`Poller::try_map_status`].
    ///
    /// Its last item is the first `Err`, the function's or the poller's; the
    /// poller (and any connection it holds) is dropped as soon as that item
    /// is yielded, and the stream yields `None` from then on. It is a
    /// [`FusedStream`] whatever the poller.
    #[must_use = "streams do nothing unless polled"]
    pub struct TryMapStatus<P, F> {
        // `None` once ended: an `Err` is terminal, so the poller is dropped at
        // once rather than kept (with an SSE connection, say) until this
        // stream is.
        #[pin]
        poller: Option<P>,
        f: F,
    }
}

impl<P, F> TryMapStatus<P, F> {
    pub(crate) fn new(poller: P, f: F) -> Self {
        TryMapStatus {
            poller: Some(poller),
            f,
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

impl<P: fmt::Debug, F> fmt::Debug for TryMapStatus<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryMapStatus")
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl<P, F, T> Stream for TryMapStatus<P, F>
where
    P: Poller,
    F: FnMut(<P as Poller>::Status) -> Result<T, <P as Poller>::Error>,
{
    type Item = Result<T, Error<<P as Poller>::Error>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(poller) = this.poller.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let item = match ready!(poller.poll_next(cx)) {
            Some(Ok(status)) => match (this.f)(status) {
                Ok(mapped) => return Poll::Ready(Some(Ok(mapped))),
                // An `Err` is terminal, as from the poller itself.
                Err(e) => Some(Err(Error::Fetch(e))),
            },
            // The poller's own `Err` is its last item, and `None` its end.
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        this.poller.set(None);
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.poller {
            // Any status may fail to map and end the stream.
            Some(poller) => (0, poller.size_hint().1),
            None => (0, Some(0)),
        }
    }
}

impl<P, F, T> FusedStream for TryMapStatus<P, F>
where
    P: Poller,
    F: FnMut(<P as Poller>::Status) -> Result<T, <P as Poller>::Error>,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
