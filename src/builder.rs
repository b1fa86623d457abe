//! Builder methods that every strategy shares, written once.
//!
//! Each strategy implements `fn parts(&mut self) -> (&mut Schedule, &mut Hooks<S, E>)`
//! and invokes this macro inside its `impl` block, so the knobs and their
//! documentation are identical everywhere.
//!
//! # Setting after the first poll
//! A strategy is its own builder and stays `Unpin`, so a setter can be
//! called between polls too. The rule, the same for every setter: it takes
//! effect from the next request on. `timeout` always counts from the first
//! poll (set later, it moves the deadline); `seed` restarts the jitter's
//! sequence; `resume` replaces the requests made and the time spent, and
//! the deadline counts from it; `stagger` delays only the first request, so
//! after it has nothing left to do.

macro_rules! shared_setters {
    ($status:ty, $error:ty) => {
        /// The jitter applied to every planned delay.
        ///
        /// Default: [`Jitter::None`](crate::Jitter::None) (see each strategy
        /// for its own default where it differs).
        pub fn jitter(mut self, jitter: crate::Jitter) -> Self {
            self.parts().0.config.jitter = jitter;
            self
        }

        /// The overall deadline, counted from the first poll.
        ///
        /// No wait goes past it: the last one is shortened so that one final
        /// request is made at the deadline; after it the poller ends with
        /// [`Error::Timeout`](crate::Error::Timeout). A request in flight is
        /// bounded by the per-request timeout; without one, no request runs
        /// more than 5 s past the deadline, so a request that never answers
        /// cannot outlive the deadline either. `Duration::MAX` means none (a
        /// deadline that cannot be represented is dropped). Default: none.
        ///
        /// # Examples
        /// Shown with a `ShortPoll`; the same on every strategy.
        /// ```
        /// use std::time::Duration;
        /// use pollkit::{Error, Poller, ShortPoll};
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() {
        /// // A job that never finishes: give up after a minute.
        /// let end = ShortPoll::new(|| async { Ok::<_, std::io::Error>("running") })
        ///     .interval(Duration::from_secs(10))
        ///     .timeout(Duration::from_secs(60))
        ///     .until(|s| *s == "done")
        ///     .await;
        /// // Requests at 0, 10, ..., 60 s: the last one at the deadline.
        /// assert!(matches!(end, Err(Error::Timeout { attempts: 7, .. })));
        /// # }
        /// ```
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.parts().0.set_timeout(timeout);
            self
        }

        /// The per-request timeout: a request slower than this is dropped
        /// (which cancels it) and counts as a transient error. Default:
        /// `ShortPoll` 30 s; `LongPoll` the wait plus a margin; `SseStream`
        /// 30 s to connect (the body has `idle_timeout`). `Duration::MAX`
        /// means never.
        pub fn attempt_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.parts().0.config.cold_mut().attempt_timeout = Some(timeout);
            self
        }

        /// The most requests to make; after the last one the poller ends with
        /// [`Error::Exhausted`](crate::Error::Exhausted). A limit of 0 is taken
        /// as 1: the first request is always made. Default: no limit.
        ///
        /// # Examples
        /// Shown with a `ShortPoll`; the same on every strategy.
        /// ```
        /// use pollkit::{Error, Poller, ShortPoll};
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() {
        /// let end = ShortPoll::new(|| async { Ok::<_, std::io::Error>("queued") })
        ///     .max_attempts(3)
        ///     .until(|s| *s == "done")
        ///     .await;
        /// assert!(matches!(end, Err(Error::Exhausted { attempts: 3, .. })));
        /// # }
        /// ```
        pub fn max_attempts(mut self, max_attempts: u32) -> Self {
            self.parts().0.set_max_attempts(max_attempts.max(1));
            self
        }

        /// Which errors are transient (retried with backoff) rather than
        /// permanent (ending polling with [`Error::Fetch`](crate::Error::Fetch)).
        ///
        /// Default: every error is transient, and [`Backoff`](crate::Backoff)'s
        /// time bound (5 min of failures in a row) ends one that keeps
        /// coming: an outage is ridden out, and a permanent error still ends
        /// the wait. Say which errors are permanent (a 404, a 401) to end at
        /// once.
        ///
        /// # Examples
        /// Shown with a `ShortPoll`; the same on every strategy.
        /// ```
        /// use std::io::{Error as IoError, ErrorKind};
        /// use pollkit::{Error, Poller, ShortPoll};
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() {
        /// let mut calls = 0;
        /// let end = ShortPoll::new(move || {
        ///         calls += 1;
        ///         // A timeout first (worth retrying), then "not found" (not).
        ///         let kind = if calls == 1 { ErrorKind::TimedOut } else { ErrorKind::NotFound };
        ///         async move { Err::<(), _>(IoError::from(kind)) }
        ///     })
        ///     .retry_if(|e| e.kind() != ErrorKind::NotFound)
        ///     .until(|_| true)
        ///     .await;
        /// assert!(matches!(end, Err(Error::Fetch(e)) if e.kind() == ErrorKind::NotFound));
        /// # }
        /// ```
        pub fn retry_if(
            mut self,
            is_transient: impl FnMut(&$error) -> bool + Send + 'static,
        ) -> Self {
            self.parts().1.set_retry_if(is_transient);
            self
        }

        /// Which errors are an answer that means "not yet" rather than a
        /// failure: a `404` while waiting for a resource to be created, a
        /// `409` while it is being moved. Such an error is not retried with
        /// backoff and not counted toward `max_retries` or the backoff's
        /// time bound, and ends a failing streak: the next request goes at
        /// the pace after a success (the interval; for `LongPoll`, as after
        /// a reply without news; for `SseStream`, as after an empty
        /// connection). Nothing is yielded for it, and it is no
        /// `last_error` of a `Timeout`. It is checked before
        /// [`retry_if`](Self::retry_if); the deadline and `max_attempts`
        /// still count the request.
        ///
        /// With [`Poller::until_result`](crate::Poller::until_result) this
        /// is the third way an error can go: the acceptor decides on the
        /// errors that end the poller (permanent by `retry_if`), transient
        /// ones are retried, and these go on. Default: none.
        ///
        /// # Examples
        /// Shown with a `ShortPoll`; the same on every strategy.
        /// ```
        /// use std::time::Duration;
        /// use pollkit::{Backoff, Poller, ShortPoll};
        ///
        /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
        /// # async fn main() {
        /// // "Until the bucket exists": 404 for ten minutes, then 200.
        /// let start = tokio::time::Instant::now();
        /// let created = ShortPoll::new(move || async move {
        ///         let exists = start.elapsed() >= Duration::from_secs(600);
        ///         if exists { Ok("bucket") } else { Err("404 Not Found") }
        ///     })
        ///     .interval(Duration::from_secs(30))
        ///     // Five errors in a row would end the wait: a 404 is none of them.
        ///     .backoff(Backoff::new().max_retries(5))
        ///     .pending_if(|e| e.starts_with("404"))
        ///     .until(|_| true)
        ///     .await;
        /// assert_eq!(created.unwrap(), "bucket");
        /// assert_eq!(start.elapsed(), Duration::from_secs(600));
        /// # }
        /// ```
        pub fn pending_if(
            mut self,
            is_pending: impl FnMut(&$error) -> bool + Send + 'static,
        ) -> Self {
            self.parts().1.set_pending_if(is_pending);
            self
        }

        /// The backoff between retries after transient errors.
        /// Default: [`Backoff::new()`](crate::Backoff::new).
        pub fn backoff(mut self, backoff: crate::Backoff) -> Self {
            self.parts().0.config.cold_mut().retry =
                crate::schedule::RetryPolicy::Builtin(Box::new(backoff));
            self
        }

        /// Uses any `backoff::backoff::Backoff` as the retry policy: its
        /// `next_backoff()` gives each delay, `None` ends polling with the last
        /// error, and a success calls `reset()`.
        #[cfg(feature = "backoff")]
        #[cfg_attr(docsrs, doc(cfg(feature = "backoff")))]
        pub fn backoff_policy(
            mut self,
            policy: impl backoff::backoff::Backoff + Send + 'static,
        ) -> Self {
            self.parts().0.config.cold_mut().retry = crate::schedule::RetryPolicy::External(
                crate::schedule::ExternalBackoff(crate::hooks::Exclusive::new(Box::new(policy))),
            );
            self
        }

        /// Reads the server's "retry after" hint from an error (a 503's or a
        /// 429's `Retry-After`). The hint replaces the backoff delay: it is
        /// clamped to [`hint_bounds`](Self::hint_bounds), never shortened,
        /// and spread up to a fifth above it so that a fleet told the same
        /// hint does not come back in the same millisecond. The wait counts
        /// toward the backoff's time bound (`give_up_after`), not toward
        /// `max_retries`.
        pub fn retry_after(
            mut self,
            hint: impl FnMut(&$error) -> Option<std::time::Duration> + Send + 'static,
        ) -> Self {
            self.parts().1.set_retry_after(hint);
            self
        }

        /// Calls `observe` before each wait for a retry, with the error (or
        /// `None` for a per-request timeout), the server's hint, the number
        /// of the request that failed and the delay about to be waited: to
        /// log or count retries. It is not called for the error that ends
        /// polling (that one is yielded). Default: none.
        pub fn on_retry(
            mut self,
            observe: impl FnMut(&crate::Retry<'_, $error>) + Send + 'static,
        ) -> Self {
            self.parts().1.set_on_retry(observe);
            self
        }

        /// The bounds every server hint is clamped into, so a hostile or
        /// buggy server can make the client neither hammer it nor sleep for
        /// a year. Given in either order. Default: 1 s to 10 min.
        pub fn hint_bounds(mut self, min: std::time::Duration, max: std::time::Duration) -> Self {
            let config = &mut self.parts().0.config;
            let cold = config.cold_mut();
            cold.hint_min = min.min(max);
            cold.hint_max = max.max(min);
            self
        }

        /// Draws every request from a shared [`Budget`](crate::Budget), so that
        /// a fleet of pollers never exceeds its rate. Default: none.
        pub fn budget(mut self, budget: crate::Budget) -> Self {
            self.parts().0.set_admission(std::sync::Arc::new(budget));
            self
        }

        /// Passes every request through a shared [`Admission`](crate::Admission)
        /// step before it starts (a fleet-wide budget kept in a shared
        /// store, say). Replaces [`budget`](Self::budget). Default: none.
        pub fn admission(mut self, admission: impl crate::Admission) -> Self {
            self.parts().0.set_admission(std::sync::Arc::new(admission));
            self
        }

        /// Adds this poller's requests, errors, reconnects and waits to
        /// `stats` (which other pollers may share). Default: none.
        pub fn stats(mut self, stats: crate::Stats) -> Self {
            self.parts().0.config.cold_mut().stats = Some(stats);
            self
        }

        /// Names the watched resource (a job id, a key) in this poller's
        /// tracing span (with the `tracing` feature). Default: none.
        pub fn key(mut self, key: impl Into<String>) -> Self {
            self.parts().0.config.cold_mut().key = Some(key.into());
            self
        }

        /// Start jitter: the first request waits a random time, uniform in
        /// `[0, max]`, so that pollers started together (a deploy, a burst of
        /// new jobs) do not all ask at the same instant; jitter only spreads
        /// the requests after the first. Default: none (the first request goes
        /// out on the first poll).
        pub fn stagger(mut self, max: std::time::Duration) -> Self {
            self.parts().0.config.cold_mut().stagger = Some(max);
            self
        }

        /// Seeds the jitter, so that the same seed gives the same delays
        /// (for tests and simulations). Default: seeded from the process's
        /// random state, different for every poller.
        pub fn seed(mut self, seed: u64) -> Self {
            self.parts().0.set_seed(seed);
            self
        }
    };
}

/// `poll_after`, for the strategies that make one request per status
/// (an event stream has the spec's `retry` field instead).
macro_rules! poll_after_setter {
    ($status:ty) => {
        /// Reads the server's "ask again in" hint from a status (a
        /// `poll_after` field, a `Retry-After` header kept in the status).
        /// The hint replaces the planned delay: clamped to
        /// [`hint_bounds`](Self::hint_bounds), never shortened, and spread
        /// up to a fifth above it so that a fleet does not ask in lock-step.
        pub fn poll_after(
            mut self,
            hint: impl FnMut(&$status) -> Option<std::time::Duration> + Send + 'static,
        ) -> Self {
            self.parts().1.set_poll_after(hint);
            self
        }
    };
}

pub(crate) use poll_after_setter;
pub(crate) use shared_setters;
