//! [`UntilStable`] and [`UntilHeld`]: wait until a condition holds steadily.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::future::FusedFuture;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::last::{ForgetLast, KeepLast, LastStatus};
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
    ///
    /// `L` says whether a failed wait gives back the last status it saw
    /// ([`with_last_status`](UntilStable::with_last_status)).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct UntilStable<P, Pred, L = ForgetLast> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        pred: Pred,
        needed: u32,
        streak: u32,
        last: L,
    }
}

impl<P, Pred> UntilStable<P, Pred> {
    pub(crate) fn new(poller: P, needed: u32, pred: Pred) -> Self {
        UntilStable {
            poller: Some(poller),
            pred,
            needed: needed.max(1),
            streak: 0,
            last: ForgetLast,
        }
    }
}

impl<P: Poller, Pred> UntilStable<P, Pred> {
    /// Resolves a failed wait to a [`Failed`](crate::Failed): the error with
    /// the last status seen, as [`Until::with_last_status`](crate::Until::with_last_status).
    ///
    /// # Examples
    /// ```
    /// use pollkit::{Error, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut checks = ["ok", "down", "ok"].into_iter();
    /// let failed = ShortPoll::new(move || {
    ///         let check = checks.next();
    ///         async move { check.ok_or("no more checks") }
    ///     })
    ///     .retry_if(|_| false)
    ///     .until_stable(2, |s| *s == "ok")
    ///     .with_last_status()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(failed.error, Error::Fetch("no more checks")));
    /// assert_eq!(failed.last, Some("ok"));
    /// # }
    /// ```
    pub fn with_last_status(self) -> UntilStable<P, Pred, KeepLast<<P as Poller>::Status>> {
        UntilStable {
            poller: self.poller,
            pred: self.pred,
            needed: self.needed,
            streak: self.streak,
            last: KeepLast::default(),
        }
    }
}

impl<P, Pred, L> UntilStable<P, Pred, L> {
    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, Pred, L> fmt::Debug for UntilStable<P, Pred, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilStable")
            .field("poller", &self.poller)
            .field("needed", &self.needed)
            .field("streak", &self.streak)
            .finish_non_exhaustive()
    }
}

impl<P, Pred, L> Future for UntilStable<P, Pred, L>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
{
    type Output = Result<<P as Poller>::Status, L::Error>;

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
                    this.last.saw(status);
                }
                Some(Err(e)) => break Err(this.last.fail(e)),
                None => break Err(this.last.fail(Error::Ended)),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, Pred, L> FusedFuture for UntilStable<P, Pred, L>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
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
    ///
    /// `L` says whether a failed wait gives back the last status it saw
    /// ([`with_last_status`](UntilHeld::with_last_status)).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct UntilHeld<P, Pred, L = ForgetLast> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        pred: Pred,
        needed: Duration,
        since: Option<Instant>,
        last: L,
    }
}

impl<P, Pred> UntilHeld<P, Pred> {
    pub(crate) fn new(poller: P, needed: Duration, pred: Pred) -> Self {
        UntilHeld {
            poller: Some(poller),
            pred,
            needed,
            since: None,
            last: ForgetLast,
        }
    }
}

impl<P: Poller, Pred> UntilHeld<P, Pred> {
    /// Resolves a failed wait to a [`Failed`](crate::Failed): the error with
    /// the last status seen, as [`Until::with_last_status`](crate::Until::with_last_status).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Error, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let failed = ShortPoll::new(|| async { Ok::<u32, String>(3) })
    ///     .interval(Duration::from_secs(10))
    ///     .timeout(Duration::from_secs(60))
    ///     .until_held(Duration::from_secs(30), |lag| *lag == 0)
    ///     .with_last_status()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(failed.error, Error::Timeout { .. }));
    /// assert_eq!(failed.last, Some(3));
    /// # }
    /// ```
    pub fn with_last_status(self) -> UntilHeld<P, Pred, KeepLast<<P as Poller>::Status>> {
        UntilHeld {
            poller: self.poller,
            pred: self.pred,
            needed: self.needed,
            since: self.since,
            last: KeepLast::default(),
        }
    }
}

impl<P, Pred, L> UntilHeld<P, Pred, L> {
    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, Pred, L> fmt::Debug for UntilHeld<P, Pred, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilHeld")
            .field("poller", &self.poller)
            .field("needed", &self.needed)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl<P, Pred, L> Future for UntilHeld<P, Pred, L>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
{
    type Output = Result<<P as Poller>::Status, L::Error>;

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
                    this.last.saw(status);
                }
                Some(Err(e)) => break Err(this.last.fail(e)),
                None => break Err(this.last.fail(Error::Ended)),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, Pred, L> FusedFuture for UntilHeld<P, Pred, L>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
