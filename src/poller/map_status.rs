//! [`MapStatus`]: map each status, keeping a poller.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Stream returned by [`Poller::map_status`].
    ///
    /// A [`FusedStream`] when the poller is one (every strategy is).
    #[must_use = "streams do nothing unless polled"]
    pub struct MapStatus<P, F> {
        #[pin]
        poller: P,
        f: F,
    }
}

impl<P, F> MapStatus<P, F> {
    pub(crate) fn new(poller: P, f: F) -> Self {
        MapStatus { poller, f }
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

impl<P: fmt::Debug, F> fmt::Debug for MapStatus<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapStatus")
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl<P, F, T> Stream for MapStatus<P, F>
where
    P: Poller,
    F: FnMut(<P as Poller>::Status) -> T,
{
    type Item = Result<T, Error<<P as Poller>::Error>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.poller.poll_next(cx));
        Poll::Ready(item.map(|r| r.map(this.f)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.poller.size_hint()
    }
}

impl<P, F, T> FusedStream for MapStatus<P, F>
where
    P: Poller + FusedStream,
    F: FnMut(<P as Poller>::Status) -> T,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_terminated()
    }
}
