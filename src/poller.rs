//! The [`Poller`] trait that every strategy implements, and its combinators.

mod changes;
mod fail_with;
mod last;
mod map_status;
mod try_map_status;
mod until;
mod until_result;
mod until_stable;
mod verdict;

use std::time::Duration;

use futures_core::Stream;

pub use changes::Changes;
pub use fail_with::FailWith;
pub use last::{Failed, ForgetLast, KeepLast, LastStatus};
pub use map_status::MapStatus;
pub use try_map_status::TryMapStatus;
pub use until::Until;
pub use until_result::UntilResult;
pub use until_stable::{UntilHeld, UntilStable};
pub use verdict::Verdict;

use crate::{BoxPoller, Error};

/// A stream of status updates: `Result<Status, Error<Error>>`, where an `Err`
/// item is always the last one.
///
/// Every strategy ([`ShortPoll`](crate::ShortPoll), [`LongPoll`](crate::LongPoll),
/// [`SseStream`](crate::SseStream)) is a `Poller`, and so is any stream with
/// items of that shape (the trait is implemented for all of them). Consume it as
/// a stream, or finish it with [`until`](Poller::until).
///
/// The provided methods' names do not clash with those of futures'
/// `StreamExt`/`TryStreamExt` or tokio-stream's `StreamExt`, so all of them can
/// be in scope together.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Error, Poller, ShortPoll};
///
/// /// Waits for a job through whatever poller the caller chose.
/// async fn finished<P: Poller<Status = u32>>(job: P) -> Result<u32, Error<P::Error>> {
///     job.until(|percent| *percent == 100).await
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Error<std::io::Error>> {
/// let mut percent = 0;
/// let polled = ShortPoll::new(move || {
///         percent += 50;
///         async move { Ok::<_, std::io::Error>(percent) }
///     })
///     .interval(Duration::from_secs(5));
/// assert_eq!(finished(polled).await?, 100);
/// // Any stream of `Result<S, pollkit::Error<E>>` is a poller too (a test double here).
/// let replayed = futures::stream::iter([Ok::<_, Error<std::io::Error>>(40), Ok(100)]);
/// assert_eq!(finished(replayed).await?, 100);
/// # Ok(()) }
/// ```
pub trait Poller:
    Stream<Item = Result<<Self as Poller>::Status, Error<<Self as Poller>::Error>>>
{
    /// The status type the poller yields.
    type Status;
    /// The user's error type, carried in [`Error::Fetch`].
    type Error;

    /// A future that resolves to the first status for which `pred` holds.
    ///
    /// The poller is dropped as soon as the future resolves, with any
    /// connection it holds. The future is a
    /// [`FusedFuture`](futures_core::future::FusedFuture): polled again after
    /// it resolved, it stays pending, so it can sit in a `select!` loop.
    ///
    /// Conditions combine as plain closures do: `|s| s.done && !s.partial`,
    /// `|s| is_done(s) || is_skipped(s)`. For a wait that also decides on
    /// errors or on failure, see [`until_result`](Poller::until_result); to
    /// get the last status back on a failed wait, add
    /// [`.with_last_status()`](Until::with_last_status).
    ///
    /// # Errors
    /// Resolves to the poller's error if one ends it first, and to
    /// [`Error::Ended`] if the stream ends first.
    ///
    /// # Cancel safety
    /// Dropping the future drops the poller and with it any request in flight.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut percent = 0;
    /// let done = ShortPoll::new(move || {
    ///         percent += 25;
    ///         async move { Ok::<_, std::io::Error>(percent) }
    ///     })
    ///     .interval(Duration::from_secs(5))
    ///     .until(|p| *p == 100)
    ///     .await;
    /// assert_eq!(done.unwrap(), 100);
    /// # }
    /// ```
    fn until<P>(self, pred: P) -> Until<Self, P>
    where
        Self: Sized,
        P: FnMut(&<Self as Poller>::Status) -> bool,
    {
        Until::new(self, pred)
    }

    /// A future that resolves when `acceptor` decides, from a status *or* an
    /// error, that the wait succeeded or failed: the acceptor form of
    /// [`until`](Poller::until), as the AWS SDK's waiters have.
    ///
    /// The acceptor sees `Ok(&status)` for every status and `Err(&error)` for
    /// a request's error that ends the poller (one that `retry_if` calls
    /// permanent, or the last of a failing streak), and returns a
    /// [`Verdict`]:
    /// - [`Success(value)`](Verdict::Success): the future resolves to
    ///   `Ok(value)`, a value of the caller's choosing: a 404 accepted as
    ///   "deleted" resolves to whatever the caller says, with no status
    ///   made up for it;
    /// - [`Failure(error)`](Verdict::Failure): it resolves to
    ///   [`Error::Failed`], as [`fail_with`](Poller::fail_with) would;
    /// - [`Pending`](Verdict::Pending): the wait goes on (for the error that
    ///   ends the poller, the wait ends with that error as it is).
    ///
    /// Only an error that ends the poller reaches the acceptor: a transient
    /// one is retried (and counted) inside the strategy first. With the
    /// default classification (every error transient) that is after the
    /// backoff gives up, so say with `retry_if` which errors are answers to
    /// end on at once (the `reqwest` feature's helpers already end on
    /// a 404).
    ///
    /// Errors that are the server saying "not yet" (a 404 while waiting for
    /// a resource to appear) go on without ending the poller or counting as
    /// failures: say so on the strategy with `pending_if` (for example
    /// [`ShortPoll::pending_if`](crate::ShortPoll::pending_if)); such errors
    /// never reach the acceptor. The same future works on every strategy,
    /// on a [`Fallback`](crate::Fallback) and on a [`BoxPoller`].
    ///
    /// Acceptors combine as functions: [`Verdict::or_else`] tries the next
    /// one when the first has no verdict. Add
    /// [`.with_last_status()`](UntilResult::with_last_status) to get the last
    /// status back on failure.
    ///
    /// # Errors
    /// [`Error::Failed`] for a [`Failure`](Verdict::Failure); otherwise as
    /// [`until`](Poller::until). Limits (`Timeout`, `Exhausted`,
    /// `AttemptTimeout`) are not the server's answer and are not judged.
    ///
    /// # Cancel safety
    /// Dropping the future drops the poller and any request in flight.
    ///
    /// # Examples
    /// Until done or failed, and kube-runtime's `is_deleted(uid)`: gone
    /// (404), or replaced by an object with another uid.
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Poller, ShortPoll, Verdict};
    ///
    /// #[derive(Debug)]
    /// struct Pod { uid: &'static str }
    /// #[derive(Debug, PartialEq)]
    /// enum Gone { Deleted, Recreated(&'static str) }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let deleted_or_recreated = |uid: &'static str| {
    ///     move |r: Result<&Pod, &u16>| match r {
    ///         Err(404) => Verdict::Success(Gone::Deleted),
    ///         Ok(pod) if pod.uid != uid => Verdict::Success(Gone::Recreated(pod.uid)),
    ///         _ => Verdict::Pending,
    ///     }
    /// };
    /// let mut answers = vec![Ok(Pod { uid: "a1" }), Ok(Pod { uid: "b2" })].into_iter();
    /// let recreated = ShortPoll::new(move || {
    ///         let answer = answers.next().unwrap_or(Err(404));
    ///         async move { answer }
    ///     })
    ///     .interval(Duration::from_secs(1))
    ///     .retry_if(|status| *status >= 500)
    ///     .until_result(deleted_or_recreated("a1"))
    ///     .await;
    /// assert_eq!(recreated.unwrap(), Gone::Recreated("b2"));
    ///
    /// let mut answers = vec![Ok(Pod { uid: "a1" })].into_iter();
    /// let deleted = ShortPoll::new(move || {
    ///         let answer = answers.next().unwrap_or(Err(404));
    ///         async move { answer }
    ///     })
    ///     .interval(Duration::from_secs(1))
    ///     .retry_if(|status| *status >= 500)
    ///     .until_result(deleted_or_recreated("a1"))
    ///     .await;
    /// assert_eq!(deleted.unwrap(), Gone::Deleted);
    /// # }
    /// ```
    fn until_result<T, A>(self, acceptor: A) -> UntilResult<Self, A>
    where
        Self: Sized,
        A: FnMut(
            Result<&<Self as Poller>::Status, &<Self as Poller>::Error>,
        ) -> Verdict<T, <Self as Poller>::Error>,
    {
        UntilResult::new(self, acceptor)
    }

    /// A future that resolves once `pred` has held for `n` statuses in a row
    /// ("healthy on three checks in a row"); a status for which it does not
    /// hold starts the count over. `n` of 0 is taken as 1.
    ///
    /// As with [`until`](Poller::until), the poller is dropped as soon as the
    /// future resolves, and the future is fused.
    ///
    /// # Errors
    /// As [`until`](Poller::until).
    ///
    /// # Cancel safety
    /// Dropping the future drops the poller and any request in flight.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut checks = ["ok", "down", "ok", "ok", "ok", "down"].into_iter();
    /// let healthy = ShortPoll::new(move || {
    ///         let status = checks.next().unwrap_or("down");
    ///         async move { Ok::<_, std::io::Error>(status) }
    ///     })
    ///     .interval(Duration::from_secs(10))
    ///     .until_stable(3, |s| *s == "ok")
    ///     .await;
    /// assert!(healthy.is_ok());
    /// # }
    /// ```
    fn until_stable<P>(self, n: u32, pred: P) -> UntilStable<Self, P>
    where
        Self: Sized,
        P: FnMut(&<Self as Poller>::Status) -> bool,
    {
        UntilStable::new(self, n, pred)
    }

    /// A future that resolves at the first status for which `pred` holds when
    /// it has held, on every status since, for at least `duration` ("caught up
    /// for a minute"); a status for which it does not hold starts the clock
    /// over. A poller can only confirm this when a status arrives, so it
    /// resolves at the first status at or after the time is up.
    ///
    /// As with [`until`](Poller::until), the poller is dropped as soon as the
    /// future resolves, and the future is fused.
    ///
    /// # Errors
    /// As [`until`](Poller::until).
    ///
    /// # Cancel safety
    /// Dropping the future drops the poller and any request in flight.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let lag = ShortPoll::new(|| async { Ok::<u32, std::io::Error>(0) })
    ///     .interval(Duration::from_secs(10))
    ///     .until_held(Duration::from_secs(30), |lag| *lag == 0)
    ///     .await;
    /// assert!(lag.is_ok());
    /// assert_eq!(start.elapsed(), Duration::from_secs(30));
    /// # }
    /// ```
    fn until_held<P>(self, duration: Duration, pred: P) -> UntilHeld<Self, P>
    where
        Self: Sized,
        P: FnMut(&<Self as Poller>::Status) -> bool,
    {
        UntilHeld::new(self, duration, pred)
    }

    /// Yields a status only when it differs from the one before it.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut answers = vec![1, 1, 2, 2, 2, 3].into_iter();
    /// let seen: Vec<_> = ShortPoll::new(move || {
    ///         let answer = answers.next();
    ///         async move { answer.ok_or("no more") }
    ///     })
    ///     .retry_if(|_| false)
    ///     .changes()
    ///     .collect()
    ///     .await;
    /// assert_eq!(seen[..3].iter().map(|r| *r.as_ref().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    /// assert!(seen[3].is_err());
    /// # }
    /// ```
    fn changes(self) -> Changes<Self>
    where
        Self: Sized,
        <Self as Poller>::Status: PartialEq + Clone,
    {
        Changes::new(self)
    }

    /// Ends polling with [`Error::Failed`] at the first status that `check`
    /// recognises as a failure (returning the error to report), instead of
    /// waiting for a deadline that a failed job will never beat.
    ///
    /// The poller (and any connection it holds) is dropped at the stream's
    /// last item, its own error or the poller's, and the stream then yields
    /// `None`: it is a [`FusedStream`](futures_core::stream::FusedStream)
    /// whatever the poller.
    ///
    /// The failing status is consumed into the error: a `.with_last_status()`
    /// wait after it reports the status *before* the failing one. To keep the
    /// failing status itself (the failed job's own report), judge it with
    /// [`until_result`](Poller::until_result) and
    /// [`Verdict::Failure`](crate::Verdict::Failure) instead.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Error, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let result = ShortPoll::new(|| async { Ok::<_, String>("failed") })
    ///     .fail_with(|s| (*s == "failed").then(|| "the export failed".to_string()))
    ///     .until(|s| *s == "completed")
    ///     .await;
    /// assert!(matches!(result, Err(Error::Failed(msg)) if msg == "the export failed"));
    /// # }
    /// ```
    fn fail_with<F>(self, check: F) -> FailWith<Self, F>
    where
        Self: Sized,
        F: FnMut(&<Self as Poller>::Status) -> Option<<Self as Poller>::Error>,
    {
        FailWith::new(self, check)
    }

    /// Maps each status with `f`; the result is still a `Poller`.
    ///
    /// # Examples
    /// ```
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let percent = ShortPoll::new(|| async { Ok::<_, String>(0.75_f64) })
    ///     .map_status(|fraction| (fraction * 100.0) as u32)
    ///     .until(|p| *p >= 75)
    ///     .await;
    /// assert_eq!(percent.unwrap(), 75);
    /// # }
    /// ```
    fn map_status<T, F>(self, f: F) -> MapStatus<Self, F>
    where
        Self: Sized,
        F: FnMut(<Self as Poller>::Status) -> T,
    {
        MapStatus::new(self, f)
    }

    /// Maps each status with `f`, which can fail (decoding an event's JSON,
    /// say): an `Err` ends the poller with [`Error::Fetch`], as a failed
    /// request would. The result is still a `Poller`; the poller inside is
    /// dropped at that error (or the poller's own), and the stream then
    /// yields `None`.
    ///
    /// # Examples
    /// ```
    /// use pollkit::{Error, Poller, SseStream};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// #[derive(Debug)]
    /// enum MyError { Io(std::io::Error), BadJson(String) }
    ///
    /// let body = "data: 40\n\ndata: 100\n\n";
    /// let percent = SseStream::new(|_| async move {
    ///         Ok::<_, MyError>(futures::stream::iter([Ok(body.as_bytes())]))
    ///     })
    ///     .try_map_status(|event| event.data().parse::<u8>().map_err(|e| MyError::BadJson(e.to_string())))
    ///     .until(|percent| *percent == 100)
    ///     .await;
    /// assert_eq!(percent.unwrap(), 100);
    /// # let _ = MyError::Io(std::io::Error::other(""));
    /// # }
    /// ```
    fn try_map_status<T, F>(self, f: F) -> TryMapStatus<Self, F>
    where
        Self: Sized,
        F: FnMut(<Self as Poller>::Status) -> Result<T, <Self as Poller>::Error>,
    {
        TryMapStatus::new(self, f)
    }

    /// Erases the poller's type, so that pollers of different strategies can
    /// be chosen at run time and held in one variable.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{BoxPoller, LongPoll, Poller, ShortPoll};
    /// use pollkit::long::Reply;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let use_long_polling = true;
    /// let poller: BoxPoller<u32, String> = if use_long_polling {
    ///     LongPoll::new(|_req| async { Ok(Reply::changed(7, 1_u64)) }).boxed_poller()
    /// } else {
    ///     ShortPoll::new(|| async { Ok(7) }).boxed_poller()
    /// };
    /// assert_eq!(poller.until(|s| *s == 7).await.unwrap(), 7);
    /// # }
    /// ```
    fn boxed_poller(self) -> BoxPoller<<Self as Poller>::Status, <Self as Poller>::Error>
    where
        Self: Sized + Send + 'static,
    {
        BoxPoller::new(self)
    }
}

impl<St, S, E> Poller for St
where
    St: Stream<Item = Result<S, Error<E>>> + ?Sized,
{
    type Status = S;
    type Error = E;
}
