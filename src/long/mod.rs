//! Long polling: the server holds each request until something changes or its
//! wait ends, and the client threads a cursor from one request to the next.
//!
//! See [`LongPoll`].

mod path;
mod reply;
mod request;

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::{Stream, TryFuture};
use tokio::time::Instant;

pub use reply::Reply;
pub use request::Request;

use crate::builder::{poll_after_setter, shared_setters};
use crate::driver::{Driver, Step, classify};
use crate::gate::StartClock;
use crate::hooks::Hooks;
use crate::schedule::{Pacing, Schedule, TokenBucket};
use crate::{Checkpoint, Error};
use path::PathLimit;

/// Default wait the server is asked to hold each request.
const WAIT: Duration = Duration::from_secs(30);
/// Default fixed part of the per-request timeout beyond the wait.
const MARGIN: Duration = Duration::from_secs(5);
/// An empty reply faster than this share of the wait ignored the wait.
const QUICK_SHARE: u32 = 10;
/// ... or faster than this, whichever is shorter (Kubernetes' "very short watch").
const QUICK_MAX: Duration = Duration::from_secs(1);
/// ... and always when faster than this: with a zero (or tiny) wait, a reply
/// without progress would otherwise never count as quick, and nothing would
/// slow a server that answers at once.
const QUICK_MIN: Duration = Duration::from_millis(10);

/// Long polling: each request carries the cursor of the last change seen and
/// asks the server to hold it until something newer exists or its wait ends;
/// the next request goes out at once.
///
/// `fetch` receives a [`Request`] (the cursor, `None` at first, and the wait to
/// ask for) and returns a [`Reply`]: [`changed`](Reply::changed) yields the
/// status and threads the new cursor, [`unchanged`](Reply::unchanged) yields
/// nothing, [`reset`](Reply::reset) drops the cursor. This fits Consul and
/// Nomad blocking queries, etcd watches, Kubernetes watches, SQS long polls,
/// Kafka fetches, Telegram `getUpdates`, and `If-None-Match` + `Prefer: wait`.
///
/// # Pacing
/// There is no interval: the server's wait paces the requests. A reply that
/// makes progress (a status with a new cursor, a cursor that advanced) is
/// followed by the next request at once, so a backlog is caught up as fast
/// as the server answers. Only replies that make no progress are slowed: an
/// empty reply, a reset or a status whose cursor did not move that comes
/// back much faster than the wait (under a tenth of it, and under 1 s: a
/// server that ignores the wait) backs off as errors do, without ever ending
/// polling on its own, as Kubernetes' client does for very short watches.
///
/// [`rate_limit`](Self::rate_limit) adds a hard ceiling on request starts,
/// progress included: over any window of length `W`, at most
/// `burst + W / period` requests start. Jitter may delay a start past its
/// slot, never advance it.
///
/// # Behind proxies
/// A proxy or load balancer whose read timeout is shorter than the wait cuts
/// every quiet request (a 504 or 502 after the same time, or a reset). When
/// two failures in a row come well short of the wait (under nine tenths of
/// it, after at least 1 s) and within a tenth of each other (at least 0.5 s), the poller
/// learns the path's limit `T`: it asks for `3/4 × T` from then on, forgives
/// the failures that taught it, records it in
/// [`Stats::waits_lowered`](crate::Stats::waits_lowered) and a tracing event,
/// and goes on. The limit only ever goes down.
///
/// # Default
/// - wait: 30 s, capped by the time left before the deadline, by three
///   quarters of `attempt_timeout` when one is set (so a quiet resource
///   never fails by timing out), and by the path's learned limit
/// - per-request timeout: the wait + wait/16 + 5 s (Consul's servers add up
///   to wait/16 of jitter to the wait), so a connection that hangs silently
///   is caught; `.attempt_timeout(d)` replaces it
/// - pacing: the next request at once after every reply; quick replies
///   without progress back off; no rate limit
/// - jitter: none (it applies to rate-limit waits; the backoff has its own)
/// - errors, backoff, hints, deadline, attempt limit: as [`ShortPoll`](crate::ShortPoll)
///
/// # Cancel safety
/// Dropping the poller drops the request in flight; nothing keeps running.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{LongPoll, Poller};
/// use pollkit::long::Reply;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // A fake server: the job finishes at index 3; each request waits for the next index.
/// let job = LongPoll::new(|req| {
///         let index = req.cursor().copied().unwrap_or(0) + 1;
///         async move {
///             tokio::time::sleep(Duration::from_secs(2)).await; // held until a change
///             let state = if index >= 3 { "finished" } else { "running" };
///             Ok::<_, std::io::Error>(Reply::changed(state, index))
///         }
///     })
///     .wait(Duration::from_secs(30))
///     .timeout(Duration::from_secs(600))
///     .until(|j| *j == "finished")
///     .await
///     .unwrap();
/// assert_eq!(job, "finished");
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct LongPoll<F, Fut: TryFuture, S, C> {
    fetch: F,
    driver: Driver<Fut, Fut::Error>,
    hooks: Hooks<S, Fut::Error>,
    cursor: Option<C>,
    wait: Duration,
    /// When the request in flight started and the wait it asked for.
    in_flight: (Instant, Duration),
    /// The limit the path puts on held requests, once learned.
    path: PathLimit,
}

// The fetch function is only called through `&mut`, never pinned; the request
// future lives in the driver's own pinned box.
impl<F, Fut: TryFuture, S, C> Unpin for LongPoll<F, Fut, S, C> {}

impl<F, Fut: TryFuture, S, C: fmt::Debug> fmt::Debug for LongPoll<F, Fut, S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LongPoll")
            .field("fetch", &std::any::type_name::<F>())
            .field("cursor", &self.cursor)
            .field("wait", &self.wait)
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl<F, Fut, S, C, E> LongPoll<F, Fut, S, C>
where
    F: FnMut(Request<C>) -> Fut,
    Fut: Future<Output = Result<Reply<S, C>, E>>,
    C: Clone + PartialEq,
{
    /// A long poller around `fetch`, which makes one held request per call.
    pub fn new(fetch: F) -> Self {
        LongPoll {
            fetch,
            driver: {
                let mut driver =
                    Driver::new(Schedule::new(Duration::ZERO, Pacing::Immediate), "long");
                // Each request is timed (quick replies, cuts): the clock read
                // at the end of a reply serves as the start of the request
                // that follows it at once; otherwise the gate reads anew.
                driver.gate_mut().start_clock = StartClock::Timed;
                driver
            },
            hooks: Hooks::default(),
            cursor: None,
            wait: WAIT,
            in_flight: (Instant::now(), Duration::ZERO),
            path: PathLimit::default(),
        }
    }

    /// How long the server may hold a request. Default: 30 s.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Starts from a known cursor instead of none (to resume a watch).
    pub fn cursor(mut self, cursor: C) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// A ceiling on request starts, progress, retries and the first request
    /// included: `burst` at once, then one per `period` (a token bucket).
    /// Over any window of length `W`, at most `burst + W / period` requests
    /// start; the jitter only delays a start past its slot. A burst of 0 is
    /// taken as 1; a zero period means no limit, and a period longer than 30
    /// years counts as 30 years (never, for a poller). Default: none.
    ///
    /// # Examples
    /// A server that ignores the wait and always has something new: at most 2
    /// requests at once, then one a second.
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use pollkit::LongPoll;
    /// use pollkit::long::{Reply, Request};
    /// use tokio::time::Instant;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let start = Instant::now();
    /// let starts: Vec<u64> = LongPoll::new(move |req: Request<u64>| {
    ///         let next = req.cursor().copied().unwrap_or(0) + 1;
    ///         let at = start.elapsed().as_secs();
    ///         async move { Ok::<_, std::io::Error>(Reply::changed(at, next)) }
    ///     })
    ///     .rate_limit(2, Duration::from_secs(1))
    ///     .take(5)
    ///     .map(|s| s.unwrap())
    ///     .collect()
    ///     .await;
    /// assert_eq!(starts, [0, 0, 1, 2, 3]);
    /// # }
    /// ```
    pub fn rate_limit(mut self, burst: u32, period: Duration) -> Self {
        self.parts()
            .0
            .set_rate((!period.is_zero()).then(|| TokenBucket::new(burst, period)));
        self
    }

    shared_setters!(S, E);
    poll_after_setter!(S);

    /// Where this wait stands (requests made, time spent, the cursor), to
    /// [`resume`](Self::resume) it after a restart.
    pub fn checkpoint(&self) -> Checkpoint<C> {
        self.driver.schedule().checkpoint(self.cursor.clone())
    }

    /// Goes on from a [`Checkpoint`]: from its cursor, with the requests made
    /// and the time spent counting toward `max_attempts` and `timeout`.
    pub fn resume(mut self, checkpoint: Checkpoint<C>) -> Self {
        self.driver
            .schedule_mut()
            .resume(checkpoint.attempts, checkpoint.elapsed);
        if checkpoint.cursor.is_some() {
            self.cursor = checkpoint.cursor;
        }
        self
    }

    fn parts(&mut self) -> (&mut Schedule, &mut Hooks<S, E>) {
        (self.driver.schedule_mut(), &mut self.hooks)
    }

    /// The per-request timeout for a request that asks the server to hold `wait`.
    fn limit(schedule: &Schedule, wait: Duration) -> Duration {
        schedule
            .attempt_timeout()
            .unwrap_or_else(|| wait.saturating_add(wait / 16).saturating_add(MARGIN))
    }

    /// The wait to ask for now: the configured one, capped by the path's
    /// learned limit, by three quarters of the per-request timeout (so the
    /// server answers before the client gives up on it) and by the time left.
    fn wait_now(path: &PathLimit, wait: Duration, schedule: &Schedule, now: Instant) -> Duration {
        let mut wait = path.wait(wait);
        if let Some(limit) = schedule.attempt_timeout() {
            wait = wait.min(limit - limit / 4);
        }
        schedule.remaining(now).map_or(wait, |left| wait.min(left))
    }

    /// A request failed with a transient error and no hint (a proxy's cut
    /// looks like that; a 503 with `Retry-After` does not): if this taught
    /// the path's limit, forgive the failures, say so, and ask again at once
    /// with the lower wait.
    fn learn_path(&mut self, now: Instant) -> bool {
        let (started, asked) = self.in_flight;
        let took = now.saturating_duration_since(started);
        let Some(wait) = self.path.failed_after(took, asked) else {
            return false;
        };
        let schedule = self.driver.schedule_mut();
        schedule.count_error();
        schedule.forgive();
        if let Some(stats) = schedule.stats() {
            stats.wait_lowered();
        }
        self.driver.gate_mut().trace.wait_lowered(took, wait);
        self.driver.plan(now, now);
        true
    }

    /// Whether an empty reply came back so fast that the server ignored the wait.
    fn was_quick(&self, now: Instant) -> bool {
        let (started, wait) = self.in_flight;
        let quick = (wait / QUICK_SHARE).min(QUICK_MAX).max(QUICK_MIN);
        now.saturating_duration_since(started) < quick
    }
}

impl<F, Fut, S, C, E> futures_core::FusedStream for LongPoll<F, Fut, S, C>
where
    F: FnMut(Request<C>) -> Fut,
    Fut: Future<Output = Result<Reply<S, C>, E>>,
    C: Clone + PartialEq,
{
    fn is_terminated(&self) -> bool {
        self.driver.gate().is_done()
    }
}

impl<F, Fut, S, C, E> Stream for LongPoll<F, Fut, S, C>
where
    F: FnMut(Request<C>) -> Fut,
    Fut: Future<Output = Result<Reply<S, C>, E>>,
    C: Clone + PartialEq,
{
    type Item = Result<S, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.driver.gate_mut().yielding(cx) {
            return Poll::Pending;
        }
        loop {
            let (fetch, cursor, in_flight) = (&mut this.fetch, &this.cursor, &mut this.in_flight);
            let (path, wait) = (&this.path, this.wait);
            let step = this.driver.poll_step(cx, |schedule, now| {
                let wait = Self::wait_now(path, wait, schedule, now);
                *in_flight = (now, wait);
                let request = Request::new(cursor.clone(), wait, schedule.attempts());
                let own = Self::limit(schedule, wait);
                (fetch(request), schedule.request_limit(now, Some(own)))
            });
            let step = ready!(step);
            // An error that means "not yet" (`pending_if`) is an answer
            // without news, as an unchanged reply: no failure, no cut.
            if matches!(&step, Step::Output(Err(e)) if this.hooks.is_pending(e)) {
                this.path.not_cut();
                this.driver.answered();
                let now = Instant::now();
                if this.was_quick(now) {
                    let at = this.driver.schedule_mut().after_quick_empty(now);
                    this.driver.plan(now, at);
                } else {
                    this.driver.succeeded_at(now, None);
                }
                continue;
            }
            // Classify an error once: `retry_if` and `retry_after` are the
            // user's `FnMut`s.
            let classified = match &step {
                Step::Output(Err(e)) => Some(classify(&mut this.hooks, e)),
                _ => None,
            };
            if let Some((true, None)) = classified {
                if this.learn_path(Instant::now()) {
                    // Forgiven, but still the last error seen if the
                    // deadline ends the wait before a reply.
                    if let Step::Output(Err(e)) = step {
                        this.driver.remember_error(e);
                    }
                    continue;
                }
            } else {
                // A reply, a timeout or a hinted or permanent error between
                // two cuts: they are not "in a row".
                this.path.not_cut();
            }
            let reply = match this
                .driver
                .settle_classified(step, &mut this.hooks, classified)
            {
                ControlFlow::Continue(Some(reply)) => reply,
                ControlFlow::Continue(None) => continue,
                ControlFlow::Break(item) => return Poll::Ready(item),
            };
            let (progress, status) = match reply {
                Reply::Changed { status, cursor } => {
                    let moved = this.cursor.as_ref() != Some(&cursor);
                    this.cursor = Some(cursor);
                    (moved, Some(status))
                }
                Reply::Advanced { cursor } => {
                    let moved = this.cursor.as_ref() != Some(&cursor);
                    this.cursor = Some(cursor);
                    (moved, None)
                }
                Reply::Unchanged => (false, None),
                Reply::Reset => {
                    this.cursor = None;
                    (false, None)
                }
            };
            if progress {
                // Progress is followed at once: no clock read unless a
                // deadline or a hint needs one.
                let hint = status.as_ref().and_then(|s| this.hooks.poll_after(s));
                this.driver.succeeded(hint);
            } else {
                let now = Instant::now();
                if this.was_quick(now) {
                    // A server that ignores the wait: slow down, never give up.
                    let at = this.driver.schedule_mut().after_quick_empty(now);
                    this.driver.plan(now, at);
                } else {
                    let hint = status.as_ref().and_then(|s| this.hooks.poll_after(s));
                    this.driver.succeeded_at(now, hint);
                }
            }
            if let Some(status) = status {
                return Poll::Ready(Some(Ok(status)));
            }
        }
    }
}
