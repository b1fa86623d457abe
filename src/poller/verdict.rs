//! [`Verdict`]: what an acceptor decides about one answer.

/// What an acceptor ([`Poller::until_result`](crate::Poller::until_result))
/// decides about one answer from the server, a status or an error: the wait
/// succeeded, failed, or goes on.
///
/// As the AWS SDK's waiters do, an acceptor sees errors as well as statuses,
/// so "until the export is deleted" is a `404` judged
/// [`Success`](Verdict::Success), with no status made up for it.
///
/// # Combining acceptors
/// Acceptors are plain functions, so they combine as functions do: call one,
/// and ask the next when it has no verdict ([`or_else`](Verdict::or_else)).
/// Conditions on statuses combine with `&&`, `||` and `!` inside one closure.
///
/// ```
/// use pollkit::Verdict;
///
/// fn failed(state: &str) -> Verdict<&'static str, String> {
///     if state == "failed" { Verdict::Failure("the job failed".into()) } else { Verdict::Pending }
/// }
/// fn done(state: &str) -> Verdict<&'static str, String> {
///     if state == "done" { Verdict::Success("done") } else { Verdict::Pending }
/// }
/// let done_or_failed = |state: &str| failed(state).or_else(|| done(state));
/// assert_eq!(done_or_failed("done"), Verdict::Success("done"));
/// assert!(matches!(done_or_failed("failed"), Verdict::Failure(_)));
/// assert_eq!(done_or_failed("running"), Verdict::Pending);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a verdict does nothing unless returned to the wait"]
pub enum Verdict<T, E> {
    /// The wait is over and succeeded: it resolves to this value (the
    /// status itself, a field of it, or anything else: `()` for "deleted").
    Success(T),
    /// The wait is over and failed: it resolves to
    /// [`Error::Failed`](crate::Error::Failed) with this error, as
    /// [`Poller::fail_with`](crate::Poller::fail_with) does.
    Failure(E),
    /// No verdict yet: the wait goes on. For the error that ends the poller
    /// (there is no next answer), the wait ends with that error as it is.
    Pending,
}

impl<T, E> Verdict<T, E> {
    /// This verdict, or when it is [`Pending`](Verdict::Pending) the one
    /// `next` gives: the way to try acceptors in order, first decisive one
    /// wins (AWS waiters run their acceptors the same way).
    ///
    /// # Examples
    /// See [`Verdict`].
    pub fn or_else(self, next: impl FnOnce() -> Verdict<T, E>) -> Verdict<T, E> {
        match self {
            Verdict::Pending => next(),
            decided => decided,
        }
    }

    /// Whether this verdict ends the wait (a success or a failure).
    ///
    /// # Examples
    /// ```
    /// use pollkit::Verdict;
    ///
    /// assert!(Verdict::<(), ()>::Success(()).is_decided());
    /// assert!(!Verdict::<(), ()>::Pending.is_decided());
    /// ```
    pub fn is_decided(&self) -> bool {
        !matches!(self, Verdict::Pending)
    }

    /// Maps the success value with `f`.
    ///
    /// # Examples
    /// ```
    /// use pollkit::Verdict;
    ///
    /// let v: Verdict<u8, ()> = Verdict::Success(4);
    /// assert_eq!(v.map(|n| n * 25), Verdict::Success(100));
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U, E> {
        match self {
            Verdict::Success(t) => Verdict::Success(f(t)),
            Verdict::Failure(e) => Verdict::Failure(e),
            Verdict::Pending => Verdict::Pending,
        }
    }
}

impl<T, E> From<bool> for Verdict<T, E>
where
    T: Default,
{
    /// `true` is a success with `T::default()` (`()` for a plain condition),
    /// `false` is [`Pending`](Verdict::Pending): a predicate used as an
    /// acceptor, `Verdict::from(s.done)`.
    fn from(done: bool) -> Self {
        if done {
            Verdict::Success(T::default())
        } else {
            Verdict::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_decisive_verdict_wins() {
        let first: Verdict<u8, ()> = Verdict::Success(1);
        assert_eq!(first.or_else(|| Verdict::Success(2)), Verdict::Success(1));
        let pending: Verdict<u8, ()> = Verdict::Pending;
        assert_eq!(
            pending.or_else(|| Verdict::Failure(())),
            Verdict::Failure(())
        );
        assert_eq!(Verdict::<(), ()>::from(true), Verdict::Success(()));
        assert_eq!(Verdict::<(), ()>::from(false), Verdict::Pending);
    }
}
