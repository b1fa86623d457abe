//! [`Until`]: wait for the first status that satisfies a predicate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::future::FusedFuture;
use pin_project_lite::pin_project;

use super::last::{ForgetLast, KeepLast, LastStatus};
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
    ///
    /// `L` says whether a failed wait gives back the last status it saw
    /// ([`with_last_status`](Until::with_last_status)).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Until<P, Pred, L = ForgetLast> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        pred: Pred,
        last: L,
    }
}

impl<P, Pred> Until<P, Pred> {
    pub(crate) fn new(poller: P, pred: Pred) -> Self {
        Until {
            poller: Some(poller),
            pred,
            last: ForgetLast,
        }
    }
}

impl<P: Poller, Pred> Until<P, Pred> {
    /// Resolves a failed wait to a [`Failed`](crate::Failed): the error with
    /// the last status seen (the one before a `Timeout`, an `Exhausted`, a
    /// failed request or a [`fail_with`](Poller::fail_with) failure), so the
    /// caller can say where the job was when the wait gave up.
    ///
    /// The status is moved into the future when the predicate rejects it,
    /// never cloned.
    ///
    /// # Examples
    /// ```
    /// use pollkit::{Error, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let failed = ShortPoll::new(|| async { Ok::<_, String>("stuck-in-review") })
    ///     .max_attempts(3)
    ///     .until(|s| *s == "done")
    ///     .with_last_status()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(failed.error, Error::Exhausted { attempts: 3, .. }));
    /// assert_eq!(failed.last, Some("stuck-in-review"));
    /// # }
    /// ```
    pub fn with_last_status(self) -> Until<P, Pred, KeepLast<<P as Poller>::Status>> {
        Until {
            poller: self.poller,
            pred: self.pred,
            last: KeepLast::default(),
        }
    }
}

impl<P, Pred, L> Until<P, Pred, L> {
    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, Pred, L> fmt::Debug for Until<P, Pred, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Until")
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl<P, Pred, L> Future for Until<P, Pred, L>
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
                Some(Ok(status)) if (this.pred)(&status) => break Ok(status),
                Some(Ok(status)) => this.last.saw(status),
                Some(Err(e)) => break Err(this.last.fail(e)),
                None => break Err(this.last.fail(Error::Ended)),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, Pred, L> FusedFuture for Until<P, Pred, L>
where
    P: Poller,
    Pred: FnMut(&<P as Poller>::Status) -> bool,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
