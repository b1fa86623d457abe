//! The one error type every poller yields.

use std::fmt;
use std::time::Duration;

/// Why polling ended without the result the caller waited for.
///
/// `E` is the error type of the user's own fetch function; it is never boxed
/// and is reachable by matching ([`Error::Fetch`], [`Error::Failed`], and the
/// `last_error` of [`Error::Timeout`] and [`Error::Exhausted`]) or with
/// [`into_inner`](Error::into_inner) and [`last_error`](Error::last_error).
///
/// An `Err` item is always the last item of a poller: the stream yields `None`
/// after it.
///
/// # Messages and sources
/// Each message says what happened, the user's error included (`request
/// failed: connection reset`), and [`source`](std::error::Error::source)
/// continues the chain *below* the text already printed (the user's error's
/// own source), so an error reporter that prints the whole chain never prints
/// the same text twice.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::Error;
///
/// let err: Error<std::io::Error> = Error::Timeout {
///     elapsed: Duration::from_secs(600),
///     attempts: 120,
///     last_error: Some(std::io::Error::other("401 Unauthorized")),
/// };
/// assert_eq!(
///     err.to_string(),
///     "gave up waiting after 600s and 120 requests: the deadline passed; \
///      the last request failed: 401 Unauthorized",
/// );
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The fetch function failed with an error that is permanent, or transient
    /// errors kept coming until the retry policy gave up. Holds the last error.
    Fetch(E),

    /// The overall deadline (`.timeout(..)`) passed before polling finished.
    Timeout {
        /// Time from the first request to the end.
        elapsed: Duration,
        /// Requests made.
        attempts: u32,
        /// The error of the last request, when requests were failing as the
        /// deadline passed (`None` when the last one succeeded).
        last_error: Option<E>,
    },

    /// The attempt limit (`.max_attempts(..)`) was reached.
    Exhausted {
        /// Requests made.
        attempts: u32,
        /// The error of the last request, when requests were failing as the
        /// limit was reached (`None` when the last one succeeded).
        last_error: Option<E>,
    },

    /// Requests kept taking longer than the per-request timeout
    /// (`.attempt_timeout(..)`) until the retry policy gave up; for
    /// `SseStream`, also a connect or an idle connection cut when its
    /// reconnect policy allows no more connections.
    AttemptTimeout {
        /// The per-request timeout that fired.
        timeout: Duration,
        /// Requests made.
        attempts: u32,
    },

    /// A status was recognised as a failure by [`Poller::fail_with`](crate::Poller::fail_with).
    Failed(E),

    /// The status stream ended before the awaited condition held
    /// (see [`Poller::until`](crate::Poller::until)).
    Ended,

    /// A Server-Sent Events stream broke the format's limits (an event larger
    /// than the configured maximum).
    Sse(crate::sse::Error),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Fetch(e) => write!(f, "request failed: {e}"),
            Error::Timeout {
                elapsed,
                attempts,
                last_error,
            } => {
                write!(
                    f,
                    "gave up waiting after {}s and {attempts} requests: the deadline passed",
                    elapsed.as_secs_f64()
                )?;
                last_failure(f, last_error.as_ref())
            }
            Error::Exhausted {
                attempts,
                last_error,
            } => {
                write!(
                    f,
                    "gave up after {attempts} requests: the attempt limit was reached"
                )?;
                last_failure(f, last_error.as_ref())
            }
            Error::AttemptTimeout { timeout, attempts } => write!(
                f,
                "request {attempts} took longer than {}s",
                timeout.as_secs_f64()
            ),
            Error::Failed(e) => write!(f, "the watched resource failed: {e}"),
            Error::Ended => {
                f.write_str("the status stream ended before the awaited condition held")
            }
            Error::Sse(e) => write!(f, "server-sent events: {e}"),
        }
    }
}

fn last_failure<E: fmt::Display>(f: &mut fmt::Formatter<'_>, last: Option<&E>) -> fmt::Result {
    match last {
        Some(e) => write!(f, "; the last request failed: {e}"),
        None => Ok(()),
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The message already printed the inner error: go on below it.
        match self {
            Error::Fetch(e) | Error::Failed(e) => e.source(),
            Error::Timeout { last_error, .. } | Error::Exhausted { last_error, .. } => {
                last_error.as_ref().and_then(|e| e.source())
            }
            Error::Sse(e) => e.source(),
            Error::AttemptTimeout { .. } | Error::Ended => None,
        }
    }
}

impl<E> Error<E> {
    /// The user's error, when this is [`Fetch`](Error::Fetch) or
    /// [`Failed`](Error::Failed), or the last error that a
    /// [`Timeout`](Error::Timeout) or [`Exhausted`](Error::Exhausted) carries.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Fetch(e) | Error::Failed(e) => Some(e),
            Error::Timeout { last_error, .. } | Error::Exhausted { last_error, .. } => last_error,
            _ => None,
        }
    }

    /// The user's error this one holds, if any (see [`into_inner`](Self::into_inner)).
    ///
    /// # Examples
    /// ```
    /// use pollkit::Error;
    ///
    /// let e: Error<&str> = Error::Exhausted { attempts: 3, last_error: Some("503") };
    /// assert_eq!(e.last_error(), Some(&"503"));
    /// ```
    pub fn last_error(&self) -> Option<&E> {
        match self {
            Error::Fetch(e) | Error::Failed(e) => Some(e),
            Error::Timeout { last_error, .. } | Error::Exhausted { last_error, .. } => {
                last_error.as_ref()
            }
            _ => None,
        }
    }

    /// Maps the user's error (in [`Fetch`](Error::Fetch), [`Failed`](Error::Failed)
    /// and the `last_error` fields) with `f`, keeping every other variant.
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
            Error::Timeout {
                elapsed,
                attempts,
                last_error,
            } => Error::Timeout {
                elapsed,
                attempts,
                last_error: last_error.map(f),
            },
            Error::Exhausted {
                attempts,
                last_error,
            } => Error::Exhausted {
                attempts,
                last_error: last_error.map(f),
            },
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
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::Error;
    ///
    /// let deadline: Error<&str> =
    ///     Error::Timeout { elapsed: Duration::from_secs(600), attempts: 120, last_error: None };
    /// assert!(deadline.ran_out());
    /// assert!(!Error::Fetch("404 Not Found").ran_out());
    /// ```
    pub fn ran_out(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. } | Error::Exhausted { .. } | Error::AttemptTimeout { .. }
        )
    }

    /// Whether this error is about the transport rather than the wait: not
    /// the deadline ([`Timeout`](Error::Timeout)), the attempt limit
    /// ([`Exhausted`](Error::Exhausted)) or a status judged a failure
    /// ([`Failed`](Error::Failed)), which would end the wait on any
    /// transport. It is [`Fallback`](crate::Fallback)'s default
    /// [`unusable_if`](crate::Fallback::unusable_if), to extend rather than
    /// retype.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::Error;
    ///
    /// assert!(Error::Fetch("406 Not Acceptable").is_transport_failure());
    /// assert!(!Error::Failed("job failed").is_transport_failure());
    /// let deadline: Error<&str> =
    ///     Error::Timeout { elapsed: Duration::from_secs(600), attempts: 120, last_error: None };
    /// assert!(!deadline.is_transport_failure());
    /// ```
    pub fn is_transport_failure(&self) -> bool {
        !matches!(
            self,
            Error::Timeout { .. } | Error::Exhausted { .. } | Error::Failed(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("http 502")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// The message, then every source, as an error reporter prints them.
    fn chain(e: &dyn std::error::Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut next = e.source();
        while let Some(s) = next {
            out.push(s.to_string());
            next = s.source();
        }
        out
    }

    #[test]
    fn no_text_is_printed_twice_in_a_chain() {
        let reset = || Outer(std::io::Error::other("connection reset"));
        let e: Error<Outer> = Error::Fetch(reset());
        assert_eq!(chain(&e), ["request failed: http 502", "connection reset"]);
        let e: Error<Outer> = Error::Timeout {
            elapsed: Duration::from_secs(5),
            attempts: 4,
            last_error: Some(reset()),
        };
        assert_eq!(
            chain(&e),
            [
                "gave up waiting after 5s and 4 requests: the deadline passed; \
                 the last request failed: http 502",
                "connection reset"
            ]
        );
        let e: Error<Outer> = Error::Exhausted {
            attempts: 2,
            last_error: None,
        };
        assert_eq!(chain(&e).len(), 1);
        assert!(e.source().is_none());
    }
}
