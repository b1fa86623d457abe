//! [`UntilResult`]: wait until an acceptor decides, from a status or an error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::future::FusedFuture;
use pin_project_lite::pin_project;

use super::last::{ForgetLast, KeepLast, LastStatus};
use super::verdict::Verdict;
use crate::{Error, Poller};

pin_project! {
    /// Future returned by [`Poller::until_result`].
    ///
    /// The poller is dropped as soon as the future resolves, with any
    /// connection or request it holds. Once resolved, the future is
    /// terminated ([`FusedFuture::is_terminated`] returns `true`) and polling
    /// it again returns [`Poll::Pending`] without ever waking.
    ///
    /// `L` says whether a failed wait gives back the last status it saw
    /// ([`with_last_status`](UntilResult::with_last_status)).
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct UntilResult<P, A, L = ForgetLast> {
        // `None` once resolved: the poller is dropped at once.
        #[pin]
        poller: Option<P>,
        acceptor: A,
        last: L,
    }
}

impl<P, A> UntilResult<P, A> {
    pub(crate) fn new(poller: P, acceptor: A) -> Self {
        UntilResult {
            poller: Some(poller),
            acceptor,
            last: ForgetLast,
        }
    }
}

impl<P: Poller, A> UntilResult<P, A> {
    /// Resolves a failed wait to a [`Failed`](crate::Failed): the error with
    /// the last status seen. For a status judged
    /// [`Failure`](Verdict::Failure), that status: the caller gets the failed
    /// job's own report with the error.
    ///
    /// # Examples
    /// ```
    /// use pollkit::{Error, Poller, ShortPoll, Verdict};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let failed = ShortPoll::new(|| async { Ok::<_, String>(("failed", "disk full")) })
    ///     .until_result(|r| match r {
    ///         Ok(("done", _)) => Verdict::Success(()),
    ///         Ok(("failed", why)) => Verdict::Failure(why.to_string()),
    ///         _ => Verdict::Pending,
    ///     })
    ///     .with_last_status()
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(failed.error, Error::Failed(why) if why == "disk full"));
    /// assert_eq!(failed.last, Some(("failed", "disk full")));
    /// # }
    /// ```
    pub fn with_last_status(self) -> UntilResult<P, A, KeepLast<<P as Poller>::Status>> {
        UntilResult {
            poller: self.poller,
            acceptor: self.acceptor,
            last: KeepLast::default(),
        }
    }
}

impl<P, A, L> UntilResult<P, A, L> {
    /// The poller being awaited, or `None` once the future has resolved (the
    /// poller is dropped then).
    pub fn get_ref(&self) -> Option<&P> {
        self.poller.as_ref()
    }
}

impl<P: fmt::Debug, A, L> fmt::Debug for UntilResult<P, A, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilResult")
            .field("poller", &self.poller)
            .finish_non_exhaustive()
    }
}

impl<P, A, T, L> Future for UntilResult<P, A, L>
where
    P: Poller,
    A: FnMut(
        Result<&<P as Poller>::Status, &<P as Poller>::Error>,
    ) -> Verdict<T, <P as Poller>::Error>,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
{
    type Output = Result<T, L::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(mut poller) = this.poller.as_mut().as_pin_mut() else {
            // Resolved already: pending forever, as futures-util's `Fuse`.
            return Poll::Pending;
        };
        let output = loop {
            match ready!(poller.as_mut().poll_next(cx)) {
                Some(Ok(status)) => match (this.acceptor)(Ok(&status)) {
                    Verdict::Success(value) => break Ok(value),
                    Verdict::Failure(e) => {
                        this.last.saw(status);
                        break Err(this.last.fail(Error::Failed(e)));
                    }
                    Verdict::Pending => this.last.saw(status),
                },
                // A request's error is an answer too (a 404 for "deleted").
                // Errors that are limits (`Timeout`, `Exhausted`...) are not
                // the server's answer and are not judged.
                Some(Err(Error::Fetch(e))) => match (this.acceptor)(Err(&e)) {
                    Verdict::Success(value) => break Ok(value),
                    Verdict::Failure(failure) => break Err(this.last.fail(Error::Failed(failure))),
                    Verdict::Pending => break Err(this.last.fail(Error::Fetch(e))),
                },
                Some(Err(e)) => break Err(this.last.fail(e)),
                None => break Err(this.last.fail(Error::Ended)),
            }
        };
        this.poller.set(None);
        Poll::Ready(output)
    }
}

impl<P, A, T, L> FusedFuture for UntilResult<P, A, L>
where
    P: Poller,
    A: FnMut(
        Result<&<P as Poller>::Status, &<P as Poller>::Error>,
    ) -> Verdict<T, <P as Poller>::Error>,
    L: LastStatus<<P as Poller>::Status, <P as Poller>::Error>,
{
    fn is_terminated(&self) -> bool {
        self.poller.is_none()
    }
}
