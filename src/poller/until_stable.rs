//! [`UntilStable`] and [`UntilHeld`]: wait until a condition holds steadily.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::future::FusedFuture;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::{Error, Poller};

pin_project! {
    /// Future returned by [`Poller::until_stable`].
    ///
    /// The poller is dropped as soon as the future resolves, with any
    /// connection or request it holds.
    ///
    /// Once resolved, the future is terminated ([`FusedFuture::is_terminated`]
    /// returns `true`) and polling it again returns [`Poll::Pending`] without
    /// ever waking, as futures-util's `Fuse` does.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct UntilStable<P, Pred> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        pred: Pred,
        needed: u32,
        streak: u32,
    }
}

impl<P, Pred> UntilStable<P, Pred> {
    pub(crate) fn new(poller: P, needed: u32, pred: Pred) -> Self {
        UntilStable {
            poller: Some(poller),
            pred,
            needed: needed.max(1),
            streak: 0,
        }
    }

    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, Pred> fmt::Debug for UntilStable<P, Pred> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilStable")
            .field("poller", &self.poller)
            .field("needed", &self.needed)
            .field("streak", &self.streak)
            .finish_non_exhaustive()
    }
}

impl<P, Pred> Future for UntilStable<P, Pred>
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
                Some(Ok(status)) => {
                    if (this.pred)(&status) {
                        *this.streak += 1;
                        if *this.streak >= *this.needed {
                            break Ok(status);
                        }
                    } else {
                        // A flip back starts the count over.
                        *this.streak = 0;
                    }
                }
                Some(Err(e)) => break Err(e),
                None => break Err(Error::Ended),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, Pred> FusedFuture for UntilStable<P, Pred>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}

pin_project! {
    /// Future returned by [`Poller::until_held`].
    ///
    /// The poller is dropped as soon as the future resolves, with any
    /// connection or request it holds.
    ///
    /// Once resolved, the future is terminated ([`FusedFuture::is_terminated`]
    /// returns `true`) and polling it again returns [`Poll::Pending`] without
    /// ever waking, as futures-util's `Fuse` does.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct UntilHeld<P, Pred> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        pred: Pred,
        needed: Duration,
        since: Option<Instant>,
    }
}

impl<P, Pred> UntilHeld<P, Pred> {
    pub(crate) fn new(poller: P, needed: Duration, pred: Pred) -> Self {
        UntilHeld {
            poller: Some(poller),
            pred,
            needed,
            since: None,
        }
    }

    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, Pred> fmt::Debug for UntilHeld<P, Pred> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilHeld")
            .field("poller", &self.poller)
            .field("needed", &self.needed)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl<P, Pred> Future for UntilHeld<P, Pred>
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
                Some(Ok(status)) => {
                    if (this.pred)(&status) {
                        let now = Instant::now();
                        let since = *this.since.get_or_insert(now);
                        if now.saturating_duration_since(since) >= *this.needed {
                            break Ok(status);
                        }
                    } else {
                        *this.since = None;
                    }
                }
                Some(Err(e)) => break Err(e),
                None => break Err(Error::Ended),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, Pred> FusedFuture for UntilHeld<P, Pred>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
