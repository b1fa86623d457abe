//! [`TryMapStatus`]: map each status with a function that can fail.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use pin_project_lite::pin_project;

use crate::{Error, Poller};

pin_project! {
    /// Stream returned by [`Poller::try_map_status`].
    #[must_use = "streams do nothing unless polled"]
    pub struct TryMapStatus<P, F> {
        #[pin]
        poller: P,
        f: F,
        done: bool,
    }
}

impl<P, F> TryMapStatus<P, F> {
    pub(crate) fn new(poller: P, f: F) -> Self {
        TryMapStatus {
            poller,
            f,
            done: false,
        }
    }
}

impl<P: fmt::Debug, F> fmt::Debug for TryMapStatus<P, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryMapStatus")
            .field("poller", &self.poller)
            .field("done", &self.done)
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
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let item = ready!(this.poller.poll_next(cx));
        Poll::Ready(match item {
            Some(Ok(status)) => match (this.f)(status) {
                Ok(mapped) => Some(Ok(mapped)),
                Err(e) => {
                    // An `Err` is terminal, as from the poller itself.
                    *this.done = true;
                    Some(Err(Error::Fetch(e)))
                }
            },
            Some(Err(e)) => Some(Err(e)),
            None => None,
        })
    }
}
