//! [`ShortPoll`]: ask at an interval; the server answers at once.

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::{Stream, TryFuture};

use crate::builder::{poll_after_setter, shared_setters};
use crate::driver::Driver;
use crate::gate::StartClock;
use crate::hooks::Hooks;
use crate::schedule::{Pacing, Schedule};
use crate::{Cadence, Checkpoint, Error};

/// Default per-request timeout: the server answers at once, so a request
/// still open after this was swallowed (a silent load balancer, a server
/// that never answers) and fails instead of hanging the watch.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Short polling: one request now, then one every interval, until you stop
/// listening, a condition holds, or a limit is reached.
///
/// `fetch` makes one request with your own transport (reqwest, hyper, gRPC, a
/// database query...) and returns your status type. `ShortPoll` is a
/// [`Stream`] of `Result<S, Error<E>>` and a [`Poller`](crate::Poller): iterate
/// it, or finish it with [`until`](crate::Poller::until).
///
/// # Default
/// - interval: 1 s, counted from the end of each response
///   ([`Cadence::FixedDelay`]); a zero interval sets no timer but still
///   yields to the runtime once between requests
/// - jitter: none
/// - per-request timeout: 30 s (a request that a proxy or the server
///   swallows fails with [`Error::AttemptTimeout`](crate::Error::AttemptTimeout)
///   and is retried like any transient error, so a silent path ends the watch
///   within the retry bound instead of hanging it);
///   [`attempt_timeout`](Self::attempt_timeout) changes it
///   (`Duration::MAX`: never)
/// - deadline, attempt limit: none
/// - errors: all transient, retried by [`Backoff::new()`](crate::Backoff::new)
///   (1 s doubling to 30 s, equal jitter), until failures have gone on for
///   5 minutes in a row (an upstream restart or a maintenance window is
///   ridden out); no retry count
/// - server hints: not read; once read, clamped to 1 s ..= 10 min, waited in
///   full and spread up to a fifth above
///
/// # Cancel safety
/// Dropping the poller (or a future built from it) drops the request in
/// flight and its timer; nothing keeps running. The poller spawns no task.
///
/// # Panics
/// Polling it outside a Tokio runtime with the time driver enabled panics, as
/// every `tokio::time` timer does.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Poller, ShortPoll};
///
/// #[derive(Debug, Clone, PartialEq)]
/// enum Export { Running(u8), Completed(String) }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), pollkit::Error<std::io::Error>> {
/// let mut polls = 0;
/// let export = ShortPoll::new(move || {
///         polls += 1;
///         let status = if polls < 3 { Export::Running(polls * 40) }
///                      else { Export::Completed("https://example.test/e.csv".into()) };
///         async move { Ok::<_, std::io::Error>(status) }
///     })
///     .interval(Duration::from_secs(5))
///     .timeout(Duration::from_secs(600))
///     .until(|s| matches!(s, Export::Completed(_)))
///     .await?;
/// assert_eq!(export, Export::Completed("https://example.test/e.csv".into()));
/// # Ok(()) }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct ShortPoll<F, Fut: TryFuture> {
    fetch: F,
    driver: Driver<Fut, Fut::Error>,
    hooks: Hooks<Fut::Ok, Fut::Error>,
}

// The fetch function is only ever called through `&mut`, never pinned, and
// the request future lives in the driver's own pinned box.
impl<F, Fut: TryFuture> Unpin for ShortPoll<F, Fut> {}

impl<F, Fut: TryFuture> fmt::Debug for ShortPoll<F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShortPoll")
            .field("fetch", &std::any::type_name::<F>())
            .field("driver", &self.driver)
            .field("hooks", &self.hooks)
            .finish()
    }
}

/// The least an adaptive interval may shrink to.
const MIN_ADAPTIVE: Duration = Duration::from_millis(1);

impl<F, Fut, S, E> ShortPoll<F, Fut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    /// A short poller around `fetch`, which makes one request per call.
    ///
    /// Nothing happens until the poller is polled: the first request goes out
    /// on the first poll, and the clock for `timeout` starts there.
    pub fn new(fetch: F) -> Self {
        let schedule = Schedule::new(Duration::from_secs(1), Pacing::Interval);
        ShortPoll {
            fetch,
            driver: {
                let mut driver = Driver::new(schedule, "short");
                // ShortPoll reads no start time of its own.
                driver.gate_mut().start_clock = StartClock::Policies;
                driver
            },
            hooks: Hooks::default(),
        }
    }

    /// The time between requests. Default: 1 s.
    ///
    /// A zero interval sets no timer: the next request starts as soon as the
    /// runtime has run its other ready tasks once (the poller yields between
    /// requests, so a fetch that is always ready cannot starve them).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.parts().0.set_interval(interval);
        self
    }

    /// Whether the interval counts from the end of a response
    /// ([`Cadence::FixedDelay`], the default) or from the start of a request
    /// ([`Cadence::FixedRate`]).
    pub fn cadence(mut self, cadence: Cadence) -> Self {
        self.parts().0.set_cadence(cadence);
        self
    }

    /// Adaptive pacing: the interval shortens (halving, down to `floor`, at
    /// least 1 ms)
    /// after a status that differs from the one before, and lengthens (by
    /// half, up to `cap`) while the status stays the same. So a job is polled
    /// often while it moves and rarely while it sits in a queue. The interval
    /// set by [`interval`](Self::interval) is the starting point.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut polls = 0;
    /// let done = ShortPoll::new(move || {
    ///         polls += 1;
    ///         let state = if polls < 4 { "queued" } else if polls < 8 { "running" } else { "done" };
    ///         async move { Ok::<_, std::io::Error>(state) }
    ///     })
    ///     .interval(Duration::from_secs(4))
    ///     .adaptive(Duration::from_secs(1), Duration::from_secs(30))
    ///     .until(|s| *s == "done")
    ///     .await;
    /// assert_eq!(done.unwrap(), "done");
    /// # }
    /// ```
    pub fn adaptive(mut self, floor: Duration, cap: Duration) -> Self
    where
        S: PartialEq + Clone + Send + 'static,
    {
        // A zero floor would let the interval halve to zero and never grow
        // back (half of zero is zero): 1 ms is the least it may shrink to,
        // whichever of the two bounds is the lower.
        let (floor, cap) = (floor.max(MIN_ADAPTIVE), cap.max(MIN_ADAPTIVE));
        self.parts().0.set_adaptive(floor, cap);
        self.hooks.track_changes();
        self
    }

    /// Progress-aware pacing: `eta` maps a status to the time it expects the
    /// work to need ("40 %, about 30 s left"), and the next request is planned
    /// then, clamped to the [`adaptive`](Self::adaptive) bounds (which this
    /// needs; without them it has no effect). A status without an estimate
    /// falls back to the adaptive interval.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let mut polls = 0;
    /// let done = ShortPoll::new(move || {
    ///         polls += 1;
    ///         // (percent, seconds left): the first answer says "about 40 s left".
    ///         let status = if polls == 1 { (20, Some(40)) } else { (100, None) };
    ///         async move { Ok::<_, std::io::Error>(status) }
    ///     })
    ///     .adaptive(Duration::from_secs(1), Duration::from_secs(60))
    ///     .eta(|(_, left)| left.map(Duration::from_secs))
    ///     .until(|(percent, _)| *percent == 100)
    ///     .await;
    /// assert!(done.is_ok());
    /// assert_eq!(start.elapsed(), Duration::from_secs(40));
    /// # }
    /// ```
    pub fn eta(mut self, eta: impl FnMut(&S) -> Option<Duration> + Send + 'static) -> Self {
        self.hooks.set_eta(eta);
        self
    }

    shared_setters!(S, E);
    poll_after_setter!(S);

    /// Where this wait stands (requests made, time spent), to
    /// [`resume`](Self::resume) it after a restart.
    pub fn checkpoint(&self) -> Checkpoint {
        self.driver.schedule().checkpoint(None)
    }

    /// Goes on from a [`Checkpoint`]: the requests made and the time spent
    /// count toward `max_attempts` and `timeout`.
    ///
    /// # Examples
    /// A service restarts in the middle of a wait limited to 10 requests:
    /// ```
    /// use futures::StreamExt;
    /// use pollkit::{Error, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let fetch = || async { Ok::<_, std::io::Error>("queued") };
    /// let mut before = ShortPoll::new(fetch).max_attempts(10);
    /// for _ in 0..4 {
    ///     before.next().await;
    /// }
    /// // Saved (with feature `serde`, as JSON) before the restart...
    /// let saved = before.checkpoint();
    /// assert_eq!(saved.attempts, 4);
    /// // ...and after it, the wait goes on with the 6 requests left.
    /// let mut made = 0;
    /// let end = ShortPoll::new(|| { made += 1; fetch() })
    ///     .max_attempts(10)
    ///     .resume(saved)
    ///     .until(|s| *s == "done")
    ///     .await;
    /// assert!(matches!(end, Err(Error::Exhausted { attempts: 10, .. })));
    /// assert_eq!(made, 6);
    /// # }
    /// ```
    pub fn resume(mut self, checkpoint: Checkpoint) -> Self {
        self.driver
            .schedule_mut()
            .resume(checkpoint.attempts, checkpoint.elapsed);
        self
    }

    fn parts(&mut self) -> (&mut Schedule, &mut Hooks<S, E>) {
        (self.driver.schedule_mut(), &mut self.hooks)
    }
}

impl<F, Fut, S, E> futures_core::FusedStream for ShortPoll<F, Fut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    fn is_terminated(&self) -> bool {
        self.driver.gate().is_done()
    }
}

impl<F, Fut, S, E> Stream for ShortPoll<F, Fut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    type Item = Result<S, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.driver.gate_mut().yielding(cx) {
            return Poll::Pending;
        }
        loop {
            let fetch = &mut this.fetch;
            let step = this.driver.poll_step(cx, |schedule, now| {
                let own = schedule.attempt_timeout().or(Some(ATTEMPT_TIMEOUT));
                (fetch(), schedule.request_limit(now, own))
            });
            let status = match this.driver.settle(ready!(step), &mut this.hooks) {
                ControlFlow::Continue(Some(status)) => status,
                ControlFlow::Continue(None) => continue,
                ControlFlow::Break(item) => return Poll::Ready(item),
            };
            if let Some((changed, eta)) = this.hooks.observe(&status) {
                this.driver.schedule_mut().observe(changed, eta);
            }
            let hint = this.hooks.poll_after(&status);
            this.driver.succeeded(hint);
            return Poll::Ready(Some(Ok(status)));
        }
    }
}
