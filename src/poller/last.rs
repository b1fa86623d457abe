//! The last status on a failed wait: [`Failed`], and whether a wait keeps
//! its last status ([`ForgetLast`], [`KeepLast`]).

use std::fmt;

use crate::Error;

/// A wait that ended without success, with the last status it saw: what a
/// waiting future made with `.with_last_status()` resolves to on failure
/// (see [`Until::with_last_status`](crate::Until::with_last_status)).
///
/// The error is pollkit's [`Error`], unchanged: a `Timeout` after ten
/// minutes, an `Exhausted`, a [`Verdict::Failure`](crate::Verdict::Failure)
/// or a failed request. `last` is the last status the wait saw before it
/// ended (`percent: 95, state: "stuck-in-review"`), or `None` when no status
/// arrived; for a status judged a failure by the acceptor, that status.
///
/// # Why a wrapper and not a field of `Error`
/// Putting the status in [`Error`] would make it `Error<S, E>` for everyone,
/// with a status type in every signature and a status kept alive in every
/// error, for users who never read it. The last status is opt-in instead,
/// on the wait that needs it, and `Failed` converts back to the plain
/// [`Error`] (`?` works in a function returning `Error<E>`, or through
/// [`into_error`](Failed::into_error)).
///
/// Its `Display` is the error's, and its `Debug` shows only whether a last
/// status is there (`last: Some(..)`): the status is the user's own data and
/// may hold what the server sent (a signed URL, body text), so pollkit never
/// prints it, even through `unwrap()`. Read it from the field. Its
/// [`source`](std::error::Error::source) is the error's source.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Error, Poller, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut percent = 90;
/// let failed = ShortPoll::new(move || {
///         percent = (percent + 5).min(95);
///         async move { Ok::<_, std::io::Error>(percent) }
///     })
///     .interval(Duration::from_secs(10))
///     .timeout(Duration::from_secs(60))
///     .until(|p| *p == 100)
///     .with_last_status()
///     .await
///     .unwrap_err();
/// assert!(matches!(failed.error, Error::Timeout { .. }));
/// assert_eq!(failed.last, Some(95));
/// # }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Failed<S, E> {
    /// The last status the wait saw, if any.
    pub last: Option<S>,
    /// Why the wait ended.
    pub error: Error<E>,
}

impl<S, E> Failed<S, E> {
    /// A failed wait: `error`, after `last`.
    pub fn new(last: Option<S>, error: Error<E>) -> Self {
        Failed { last, error }
    }

    /// The error, without the last status.
    pub fn into_error(self) -> Error<E> {
        self.error
    }
}

impl<S, E> From<Failed<S, E>> for Error<E> {
    fn from(failed: Failed<S, E>) -> Self {
        failed.error
    }
}

impl<S, E: fmt::Debug> fmt::Debug for Failed<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The status is never printed (see the type's docs).
        let last = if self.last.is_some() {
            "Some(..)"
        } else {
            "None"
        };
        f.debug_struct("Failed")
            .field("last", &format_args!("{last}"))
            .field("error", &self.error)
            .finish()
    }
}

impl<S, E: fmt::Display> fmt::Display for Failed<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<S, E: std::error::Error + 'static> std::error::Error for Failed<S, E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: the message is the error's, so the chain goes on
        // where the error's own chain goes on.
        std::error::Error::source(&self.error)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Whether a waiting future keeps the last status it saw, for its error:
/// [`ForgetLast`] (the default: a failed wait is a plain [`Error`]) or
/// [`KeepLast`] (a failed wait is a [`Failed`], made by `.with_last_status()`).
///
/// Sealed: it names the two behaviours in the waiting futures' types and is
/// not meant to be implemented.
pub trait LastStatus<S, E>: sealed::Sealed {
    /// What a failed wait resolves to.
    type Error;

    /// Sees a status that did not end the wait.
    #[doc(hidden)]
    fn saw(&mut self, status: S);

    /// The failed wait's error.
    #[doc(hidden)]
    fn fail(&mut self, error: Error<E>) -> Self::Error;
}

/// A waiting future that keeps no status: a failed wait is a plain
/// [`Error`]. The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForgetLast;

/// A waiting future that keeps the last status it saw: a failed wait is a
/// [`Failed`] with it. Made by `.with_last_status()`.
#[derive(Clone, Debug)]
pub struct KeepLast<S>(Option<S>);

impl<S> Default for KeepLast<S> {
    fn default() -> Self {
        KeepLast(None)
    }
}

impl sealed::Sealed for ForgetLast {}
impl<S> sealed::Sealed for KeepLast<S> {}

impl<S, E> LastStatus<S, E> for ForgetLast {
    type Error = Error<E>;

    #[inline]
    fn saw(&mut self, _status: S) {}

    #[inline]
    fn fail(&mut self, error: Error<E>) -> Error<E> {
        error
    }
}

impl<S, E> LastStatus<S, E> for KeepLast<S> {
    type Error = Failed<S, E>;

    #[inline]
    fn saw(&mut self, status: S) {
        // Moved, not cloned: a status that did not end the wait is dropped
        // anyway, so keeping it costs nothing but its place.
        self.0 = Some(status);
    }

    fn fail(&mut self, error: Error<E>) -> Failed<S, E> {
        Failed::new(self.0.take(), error)
    }
}
