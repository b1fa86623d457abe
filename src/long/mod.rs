//! Long polling: the server holds each request until something changes or its
//! wait ends, and the client threads a cursor from one request to the next.
//!
//! See [`LongPoll`].

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

use crate::builder::shared_setters;
use crate::driver::Driver;
use crate::hooks::Hooks;
use crate::schedule::{Config, Pacing, Schedule, TokenBucket};
use crate::{Checkpoint, Error, Jitter};

/// Default wait the server is asked to hold each request.
const WAIT: Duration = Duration::from_secs(30);
/// Default fixed part of the per-request timeout beyond the wait.
const MARGIN: Duration = Duration::from_secs(5);
/// Default burst of the request-start limiter.
const BURST: u32 = 2;
/// Default refill period of the request-start limiter.
const PERIOD: Duration = Duration::from_secs(1);
/// An empty reply faster than this share of the wait ignored the wait.
const QUICK_SHARE: u32 = 10;
/// ... or faster than this, whichever is shorter (Kubernetes' "very short watch").
const QUICK_MAX: Duration = Duration::from_secs(1);

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
/// There is no interval. Request *starts* are limited by a token bucket (a
/// burst of 2, then one per second, the shape Consul's documentation advises).
/// The jitter spreads each token's refill time, so that waits for a token
/// are spread too; with the default [`Jitter::Equal`] (or `None`, `Full`) they
/// never exceed the refill period (with `Proportional(f)` up to `1 + f` times
/// it, with `Decorrelated` 1.5 times). So a server that ignores
/// the wait, or a resource that changes all the time, cannot turn the client
/// into a busy loop, while a quiet resource is asked again at once. An empty
/// reply that comes back much faster than the wait (under a tenth of it, and
/// under 1 s) counts toward backoff as Kubernetes' client does for very short
/// watches, without ever ending polling on its own.
///
/// # Default
/// - wait: 30 s, capped by the time left before the deadline
/// - per-request timeout: the wait + wait/16 + 5 s (Consul's servers add up
///   to wait/16 of jitter to the wait), so a connection that hangs silently
///   is caught; `.attempt_timeout(d)` replaces it
/// - rate of request starts: burst 2, then one token per second; jitter
///   [`Jitter::Equal`] on each token's refill time, so under constant churn
///   the next request starts 0.5–1 s after the previous one (about 1.3 per
///   second), and never more than 1 s after a reply
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
    driver: Driver<Fut>,
    hooks: Hooks<S, Fut::Error>,
    cursor: Option<C>,
    wait: Duration,
    /// When the request in flight started and the wait it asked for.
    in_flight: (Instant, Duration),
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
    C: Clone,
{
    /// A long poller around `fetch`, which makes one held request per call.
    pub fn new(fetch: F) -> Self {
        let mut config = Config::new(
            Duration::ZERO,
            Pacing::Bucket(TokenBucket::new(BURST, PERIOD)),
        );
        config.jitter = Jitter::Equal;
        LongPoll {
            fetch,
            driver: Driver::new(Schedule::new(config), "long"),
            hooks: Hooks::default(),
            cursor: None,
            wait: WAIT,
            in_flight: (Instant::now(), Duration::ZERO),
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

    /// Limits request starts to `burst` at once, then one per `period`.
    /// A burst of 0 is taken as 1. Default: 2, then one per second.
    pub fn rate_limit(mut self, burst: u32, period: Duration) -> Self {
        self.parts().0.pacing = Pacing::Bucket(TokenBucket::new(burst, period));
        self
    }

    shared_setters!(S, E);

    /// Where this wait stands (requests made, time spent, the cursor), to
    /// [`resume`](Self::resume) it after a restart.
    pub fn checkpoint(&self) -> Checkpoint<C> {
        self.driver.schedule.checkpoint(self.cursor.clone())
    }

    /// Goes on from a [`Checkpoint`]: from its cursor, with the requests made
    /// and the time spent counting toward `max_attempts` and `timeout`.
    pub fn resume(mut self, checkpoint: Checkpoint<C>) -> Self {
        self.driver
            .schedule
            .resume(checkpoint.attempts, checkpoint.elapsed);
        if checkpoint.cursor.is_some() {
            self.cursor = checkpoint.cursor;
        }
        self
    }

    fn parts(&mut self) -> (&mut Config, &mut Hooks<S, E>) {
        (&mut self.driver.schedule.config, &mut self.hooks)
    }

    /// The per-request timeout for a request that asks the server to hold `wait`.
    fn limit(config: &Config, wait: Duration) -> Duration {
        config
            .attempt_timeout
            .unwrap_or_else(|| wait.saturating_add(wait / 16).saturating_add(MARGIN))
    }

    /// Whether an empty reply came back so fast that the server ignored the wait.
    fn was_quick(&self, now: Instant) -> bool {
        let (started, wait) = self.in_flight;
        let quick = (wait / QUICK_SHARE).min(QUICK_MAX);
        now.saturating_duration_since(started) < quick
    }
}

impl<F, Fut, S, C, E> Stream for LongPoll<F, Fut, S, C>
where
    F: FnMut(Request<C>) -> Fut,
    Fut: Future<Output = Result<Reply<S, C>, E>>,
    C: Clone,
{
    type Item = Result<S, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let (fetch, cursor, wait, in_flight) = (
                &mut this.fetch,
                &this.cursor,
                this.wait,
                &mut this.in_flight,
            );
            let step = this.driver.poll_step(cx, |schedule, now| {
                let wait = schedule.remaining(now).map_or(wait, |left| wait.min(left));
                *in_flight = (now, wait);
                let request = Request::new(cursor.clone(), wait, schedule.attempts());
                let own = Self::limit(&schedule.config, wait);
                (fetch(request), schedule.request_limit(now, Some(own)))
            });
            let reply = match this.driver.settle(ready!(step), &mut this.hooks) {
                ControlFlow::Continue(Some(reply)) => reply,
                ControlFlow::Continue(None) => continue,
                ControlFlow::Break(item) => return Poll::Ready(item),
            };
            match reply {
                Reply::Changed { status, cursor } => {
                    this.cursor = Some(cursor);
                    let hint = this.hooks.poll_after(&status);
                    this.driver.succeeded(hint);
                    return Poll::Ready(Some(Ok(status)));
                }
                Reply::Unchanged => {
                    let now = Instant::now();
                    if this.was_quick(now) {
                        let at = this.driver.schedule.after_quick_empty(now);
                        this.driver.plan(now, at);
                    } else {
                        this.driver.succeeded(None);
                    }
                }
                Reply::Advanced { cursor } => {
                    this.cursor = Some(cursor);
                    this.driver.succeeded(None);
                }
                Reply::Reset => {
                    this.cursor = None;
                    this.driver.succeeded(None);
                }
            }
        }
    }
}
