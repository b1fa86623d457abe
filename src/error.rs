//! The one error type every poller yields.

use std::fmt;
use std::time::Duration;

/// Why polling ended without the result the caller waited for.
///
/// `E` is the error type of the user's own fetch function; it is never boxed
/// and is reachable by matching ([`Error::Fetch`], [`Error::Failed`], and the
/// `last_error` of [`Error::Timeout`] and [`Error::Exhausted`]), with
/// [`into_inner`](Error::into_inner) and [`last_error`](Error::last_error),
/// and through [`source`](std::error::Error::source).
///
/// An `Err` item is always the last item of a poller: the stream yields `None`
/// after it.
///
/// # Messages and sources
/// The conventional chain, as thiserror, futures and tower build it: each
/// message says what happened at its own level (`request failed`), and
/// [`source`](std::error::Error::source) is the error below it: the user's
/// error itself for [`Fetch`](Error::Fetch) and [`Failed`](Error::Failed),
/// the last error of a [`Timeout`](Error::Timeout) or an
/// [`Exhausted`](Error::Exhausted), the format error of an
/// [`Sse`](Error::Sse). So `downcast_ref` finds the user's error through an
/// `anyhow::Error` or a `Box<dyn Error>`, and an error reporter that prints
/// the whole chain prints each cause once.
///
/// # Growing
/// The enum and its variants with named fields are `#[non_exhaustive]`: a
/// later release may add a variant or a field without breaking a `match`
/// that ends with `_` and patterns that end with `..`. Outside pollkit, build
/// those variants with [`Error::timeout`], [`Error::exhausted`] and
/// [`Error::attempt_timeout`].
///
/// # Examples
/// ```
/// use std::error::Error as _;
/// use std::time::Duration;
/// use pollkit::Error;
///
/// let err: Error<std::io::Error> = Error::timeout(
///     Duration::from_secs(600),
///     120,
///     Some(std::io::Error::other("401 Unauthorized")),
/// );
/// assert_eq!(
///     err.to_string(),
///     "gave up waiting after 600s and 120 requests: the deadline passed; \
///      the last request failed",
/// );
/// // The last error is the next link of the chain.
/// assert_eq!(err.source().unwrap().to_string(), "401 Unauthorized");
/// // A pattern ends with `..`, so a field added later does not break it.
/// assert!(matches!(err, Error::Timeout { attempts: 120, .. }));
/// ```
///
/// Outside pollkit, a variant with named fields cannot be written out whole,
/// in a pattern or an expression:
/// ```compile_fail,E0638
/// use std::time::Duration;
/// let err: pollkit::Error<&str> = pollkit::Error::exhausted(3, None);
/// let pollkit::Error::Exhausted { attempts, last_error } = err else { return };
/// ```
/// ```compile_fail,E0639
/// let err: pollkit::Error<&str> = pollkit::Error::Exhausted { attempts: 3, last_error: None };
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The fetch function failed with an error that is permanent, or transient
    /// errors kept coming until the retry policy gave up. Holds the last error,
    /// which is also the error's [`source`](std::error::Error::source).
    Fetch(E),

    /// The overall deadline (`.timeout(..)`) passed before polling finished.
    #[non_exhaustive]
    Timeout {
        /// Time from the first request to the end.
        elapsed: Duration,
        /// Requests made.
        attempts: u32,
        /// The error of the last request, when requests were failing as the
        /// deadline passed (`None` when the last one succeeded); also the
        /// error's [`source`](std::error::Error::source).
        last_error: Option<E>,
    },

    /// The attempt limit (`.max_attempts(..)`) was reached.
    #[non_exhaustive]
    Exhausted {
        /// Requests made.
        attempts: u32,
        /// The error of the last request, when requests were failing as the
        /// limit was reached (`None` when the last one succeeded); also the
        /// error's [`source`](std::error::Error::source).
        last_error: Option<E>,
    },

    /// Requests kept taking longer than the per-request timeout
    /// (`.attempt_timeout(..)`) until the retry policy gave up; for
    /// `SseStream`, also a connect or an idle connection cut when its
    /// reconnect policy allows no more connections.
    #[non_exhaustive]
    AttemptTimeout {
        /// The per-request timeout that fired.
        timeout: Duration,
        /// Requests made.
        attempts: u32,
    },

    /// A status was recognised as a failure by
    /// [`Poller::fail_with`](crate::Poller::fail_with). The user's error is
    /// also the error's [`source`](std::error::Error::source).
    Failed(E),

    /// The status stream ended before the awaited condition held
    /// (see [`Poller::until`](crate::Poller::until)).
    Ended,

    /// A Server-Sent Events stream broke the format's limits (an event larger
    /// than the configured maximum); the format error is also the error's
    /// [`source`](std::error::Error::source).
    Sse(crate::sse::Error),
}

impl<E> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The inner error is the source, so it is not repeated here.
        match self {
            Error::Fetch(_) => f.write_str("request failed"),
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
                last_failure(f, last_error.is_some())
            }
            Error::Exhausted {
                attempts,
                last_error,
            } => {
                write!(
                    f,
                    "gave up after {attempts} requests: the attempt limit was reached"
                )?;
                last_failure(f, last_error.is_some())
            }
            Error::AttemptTimeout { timeout, attempts } => write!(
                f,
                "request {attempts} took longer than {}s",
                timeout.as_secs_f64()
            ),
            Error::Failed(_) => f.write_str("the watched resource failed"),
            Error::Ended => {
                f.write_str("the status stream ended before the awaited condition held")
            }
            Error::Sse(_) => f.write_str("the server-sent event stream broke the format's limits"),
        }
    }
}

fn last_failure(f: &mut fmt::Formatter<'_>, failing: bool) -> fmt::Result {
    if failing {
        f.write_str("; the last request failed")?;
    }
    Ok(())
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Fetch(e) | Error::Failed(e) => Some(e),
            Error::Timeout { last_error, .. } | Error::Exhausted { last_error, .. } => {
                last_error.as_ref().map(|e| e as _)
            }
            Error::Sse(e) => Some(e),
            Error::AttemptTimeout { .. } | Error::Ended => None,
        }
    }
}

impl<E> Error<E> {
    /// An [`Error::Timeout`]: the deadline passed after `elapsed` and
    /// `attempts` requests, the last of which failed with `last_error` (if
    /// it failed). For an admission, a hub or a transport of your own that
    /// reports pollkit's errors.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::Error;
    ///
    /// let e: Error<&str> = Error::timeout(Duration::from_secs(5), 2, None);
    /// assert!(matches!(e, Error::Timeout { attempts: 2, last_error: None, .. }));
    /// ```
    pub fn timeout(elapsed: Duration, attempts: u32, last_error: Option<E>) -> Self {
        Error::Timeout {
            elapsed,
            attempts,
            last_error,
        }
    }

    /// An [`Error::Exhausted`]: the attempt limit was reached after
    /// `attempts` requests, the last of which failed with `last_error` (if it
    /// failed).
    ///
    /// # Examples
    /// ```
    /// use pollkit::Error;
    ///
    /// let e: Error<&str> = Error::exhausted(3, Some("503"));
    /// assert_eq!(e.last_error(), Some(&"503"));
    /// ```
    pub fn exhausted(attempts: u32, last_error: Option<E>) -> Self {
        Error::Exhausted {
            attempts,
            last_error,
        }
    }

    /// An [`Error::AttemptTimeout`]: request number `attempts` took longer
    /// than `timeout`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::Error;
    ///
    /// let e: Error<&str> = Error::attempt_timeout(Duration::from_secs(30), 4);
    /// assert_eq!(e.to_string(), "request 4 took longer than 30s");
    /// ```
    pub fn attempt_timeout(timeout: Duration, attempts: u32) -> Self {
        Error::AttemptTimeout { timeout, attempts }
    }

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
    /// let e: Error<&str> = Error::exhausted(3, Some("503"));
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
    /// assert_eq!(shared.last_error().map(|e| e.to_string()), Some("reset".to_owned()));
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
    /// let deadline: Error<&str> = Error::timeout(Duration::from_secs(600), 120, None);
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
    /// let deadline: Error<&str> = Error::timeout(Duration::from_secs(600), 120, None);
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
    fn each_cause_is_printed_once_in_a_chain() {
        let reset = || Outer(std::io::Error::other("connection reset"));
        let e: Error<Outer> = Error::Fetch(reset());
        assert_eq!(
            chain(&e),
            ["request failed", "http 502", "connection reset"]
        );
        let e: Error<Outer> = Error::Failed(reset());
        assert_eq!(
            chain(&e),
            [
                "the watched resource failed",
                "http 502",
                "connection reset"
            ]
        );
        let e: Error<Outer> = Error::timeout(Duration::from_secs(5), 4, Some(reset()));
        assert_eq!(
            chain(&e),
            [
                "gave up waiting after 5s and 4 requests: the deadline passed; \
                 the last request failed",
                "http 502",
                "connection reset"
            ]
        );
        let e: Error<Outer> = Error::exhausted(2, Some(reset()));
        assert_eq!(chain(&e)[1..], ["http 502", "connection reset"]);
        let e: Error<Outer> = Error::exhausted(2, None);
        assert_eq!(chain(&e).len(), 1);
        assert!(e.source().is_none());
        let e: Error<Outer> = Error::Sse(crate::sse::Error::EventTooLarge { limit: 8 });
        assert_eq!(chain(&e).len(), 2);
    }

    #[test]
    fn the_users_error_is_the_source() {
        let e: Error<Outer> = Error::Fetch(Outer(std::io::Error::other("reset")));
        let source = e.source().and_then(|s| s.downcast_ref::<Outer>());
        assert!(source.is_some(), "downcast_ref finds the user's error");
        let e: Error<Outer> = Error::exhausted(1, Some(Outer(std::io::Error::other("x"))));
        assert!(e.source().and_then(|s| s.downcast_ref::<Outer>()).is_some());
    }
}
