//! The one error type every poller yields.

use std::time::Duration;

/// Why polling ended without the result the caller waited for.
///
/// `E` is the error type of the user's own fetch function; it is never boxed
/// and is reachable both by matching on [`Error::Fetch`] and through
/// [`std::error::Error::source`].
///
/// An `Err` item is always the last item of a poller: the stream yields `None`
/// after it.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::Error;
///
/// let err: Error<std::io::Error> = Error::Timeout {
///     elapsed: Duration::from_secs(600),
///     attempts: 120,
/// };
/// assert_eq!(
///     err.to_string(),
///     "gave up waiting after 600s and 120 requests: the deadline passed",
/// );
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E> {
    /// The fetch function failed with an error that is permanent, or transient
    /// errors kept coming until the retries ran out. Holds the last error.
    #[error("request failed: {0}")]
    Fetch(#[source] E),

    /// The overall deadline (`.timeout(..)`) passed before polling finished.
    #[error(
        "gave up waiting after {}s and {attempts} requests: the deadline passed",
        elapsed.as_secs_f64()
    )]
    Timeout {
        /// Time from the first request to the end.
        elapsed: Duration,
        /// Requests made.
        attempts: u32,
    },

    /// The attempt limit (`.max_attempts(..)`) was reached.
    #[error("gave up after {attempts} requests: the attempt limit was reached")]
    Exhausted {
        /// Requests made.
        attempts: u32,
    },

    /// Requests kept taking longer than the per-request timeout
    /// (`.attempt_timeout(..)`) until the retries ran out.
    #[error(
        "request {attempts} took longer than {}s and the retries ran out",
        timeout.as_secs_f64()
    )]
    AttemptTimeout {
        /// The per-request timeout that fired.
        timeout: Duration,
        /// Requests made.
        attempts: u32,
    },

    /// A status was recognised as a failure by [`Poller::fail_with`](crate::Poller::fail_with).
    #[error("the watched resource failed: {0}")]
    Failed(#[source] E),

    /// The status stream ended before the awaited condition held
    /// (see [`Poller::until`](crate::Poller::until)).
    #[error("the status stream ended before the awaited condition held")]
    Ended,

    /// A Server-Sent Events stream broke the format's limits (an event larger
    /// than the configured maximum).
    #[error("server-sent events: {0}")]
    Sse(#[source] crate::sse::Error),
}

impl<E> Error<E> {
    /// The user's error, when this is [`Fetch`](Error::Fetch) or
    /// [`Failed`](Error::Failed).
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Fetch(e) | Error::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the user's error (in [`Fetch`](Error::Fetch) and
    /// [`Failed`](Error::Failed)) with `f`, keeping every other variant.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use pollkit::Error;
    ///
    /// let e: Error<std::io::Error> = Error::Fetch(std::io::Error::other("reset"));
    /// let shared: Error<Arc<std::io::Error>> = e.map(Arc::new);
    /// assert_eq!(shared.to_string(), "request failed: reset");
    /// ```
    pub fn map<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        match self {
            Error::Fetch(e) => Error::Fetch(f(e)),
            Error::Failed(e) => Error::Failed(f(e)),
            Error::Timeout { elapsed, attempts } => Error::Timeout { elapsed, attempts },
            Error::Exhausted { attempts } => Error::Exhausted { attempts },
            Error::AttemptTimeout { timeout, attempts } => {
                Error::AttemptTimeout { timeout, attempts }
            }
            Error::Ended => Error::Ended,
            Error::Sse(e) => Error::Sse(e),
        }
    }

    /// Whether polling ended because time or attempts ran out
    /// ([`Timeout`](Error::Timeout), [`Exhausted`](Error::Exhausted) or
    /// [`AttemptTimeout`](Error::AttemptTimeout)) rather than because of an
    /// answer from the server.
    pub fn ran_out(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Exhausted { .. } | Error::AttemptTimeout { .. }
        )
    }
}
