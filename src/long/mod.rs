//! Long polling: the server holds each request until something changes or its
//! wait ends, and the client threads a cursor from one request to the next.
//!
//! See [`LongPoll`].

mod path;
mod reply;
mod request;
mod rules;

use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::{Stream, TryFuture};
use tokio::time::Instant;

pub use reply::Reply;
pub use request::Request;

use crate::builder::{poll_after_setter, shared_setters};
use crate::driver::{Driver, Step, classify};
use crate::gate::StartClock;
use crate::hooks::Hooks;
use crate::schedule::{Answer, Pacing, Schedule, TokenBucket};
use crate::{Checkpoint, Error};
use path::{Cut, Lesson, PathLimit};
use rules::Rules;

/// Default wait the server is asked to hold each request: under the
/// shortest common proxy limit (AWS API Gateway's 29 s) with room for the
/// server's own jitter (Consul adds up to wait/16).
pub(crate) const WAIT: Duration = Duration::from_secs(25);
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
/// A proxy or load balancer whose read timeout is shorter than the wait
/// cuts every quiet request: a 502, 503 or 504 without `Retry-After`, a
/// reset, or silence until the per-request timeout. The default wait (25 s)
/// fits under the common limits (AWS API Gateway 29 s, Heroku and Google
/// Cloud 30 s, nginx and AWS ALB 60 s, Cloudflare 100 s); for the others,
/// the poller treats cuts as hypotheses about the path, and checks them:
///
/// - **A cut** is a request that held at least 1 s and ended with a
///   transient failure without a server hint that
///   [`cut_if`](Self::cut_if) accepts (default: all of them), or with the
///   per-request timeout, at any time before its wait ended or after.
///   Failures under 1 s, hinted ones and those `cut_if` rejects (a connect
///   failure) never teach.
/// - **Taught.** Two cuts in a row at about the same time `T` (within a
///   tenth of each other, at least 0.5 s) lower the wait to `3/4 × T`; two
///   per-request timeouts in a row halve it (not below 1 s); three cuts in
///   a row that make no such pair (gateway nodes with different limits)
///   lower it to `3/4` of the shortest answer cut among them. A request at
///   a silently lowered wait of more than 25 s that is silenced too, before
///   any was answered, halves it again at once (a 5-minute wait behind a
///   30 s silent NAT would spend the failure bound on pairs). The request
///   at the lowered wait goes out at once. Counted in
///   [`Stats::waits_lowered`](crate::Stats::waits_lowered), with a tracing
///   event.
/// - **Verified.** That request tells a short path from a dead one: answered
///   normally (a change, or the end of its wait), the limit holds and the
///   cuts are forgiven (nothing yielded, the error streak ends); failed too,
///   the path is down: every failure since the first cut counts toward the
///   retry policy's time bound like any error, and the wait ends with the
///   last error when the bound is spent (at most one request at the lowered
///   wait past it).
/// - **Revisited.** A learned limit holds for 10 minutes; then one request
///   asks for the configured wait. Answered normally after holding at least
///   as long as the cut (or its whole wait), the configured wait is
///   restored; cut the same way as the lesson's requests, the learned wait
///   stays, no error is counted, and the next probe goes out 10 minutes
///   later; each probe cut again waits twice as long (up to 4 h). A probe
///   cut while the path is down (the request before or after it failed
///   too), or cut
///   another way than the lesson (a 504 after 29 s where the lesson was
///   2 s of silence), counts for nothing. A limit learned from an outage
///   is gone within 15 minutes of the outage's end; a silent lesson that an
///   outage halved below a real silent limit climbs back instead, doubling
///   at each probe that limit silences, up to half the configured wait.
///
/// A 503 or 429 with `Retry-After` is the server speaking, not a cut: its
/// hint is honoured.
///
/// # Expired cursors
/// A server that forgot the cursor (Kubernetes' `410 Gone`, etcd's
/// `errorCode 401`) can answer [`Reply::reset`], or fail with an error that
/// [`expired_if`](Self::expired_if) recognises: the poller starts over with
/// a fresh first request at once, and goes on.
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
    rules: Rules<Fut::Error>,
    cursor: Option<C>,
    wait: Duration,
    /// The request in flight (or the last one).
    in_flight: Held,
    /// The limit the path puts on held requests, once learned.
    path: PathLimit,
    /// Whether a request in flight is a sign of life for a `Fallback`:
    /// until one fails or runs past its per-request limit, then again once
    /// an answer comes.
    trusted: bool,
    /// Expired cursors in a row: the first is followed by a fresh first
    /// request at once, the next ones back off.
    expiries: u32,
}

/// What the request in flight asked for.
#[derive(Clone, Copy, Debug)]
struct Held {
    started: Instant,
    /// The wait it asked for.
    asked: Duration,
    /// Whether it probes the configured wait past a learned limit.
    probe: bool,
    /// Whether it carried a cursor.
    cursor: bool,
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
            rules: Rules::default(),
            cursor: None,
            wait: WAIT,
            in_flight: Held {
                started: Instant::now(),
                asked: Duration::ZERO,
                probe: false,
                cursor: false,
            },
            path: PathLimit::default(),
            // Not before a first answer: a path that only fails never
            // showed life.
            trusted: false,
            expiries: 0,
        }
    }

    /// How long the server may hold a request. Default: 25 s, under the
    /// shortest common proxy limit (AWS API Gateway's 29 s) with room for
    /// a server's jitter (Consul adds up to wait/16). A longer wait behind
    /// a shorter limit is learned from the cuts (see "Behind proxies").
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

    /// Which failures may be a path's cut (see "Behind proxies" above): of
    /// the transient failures without a server hint, those for which `cut`
    /// returns `true`. Return `false` for failures that never held the
    /// request (a refused or timed-out connect, DNS): they never teach the
    /// path a limit, however long they took. Failures under 1 s never teach
    /// either way. Default: every transient failure without a hint (the
    /// [`reqwest`](crate::reqwest) helpers set: a 502, 503 or 504, a reset,
    /// an early end of the body, never a connect failure).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::LongPoll;
    /// use pollkit::long::{Reply, Request};
    ///
    /// #[derive(Debug)]
    /// enum Failure { Connect, Gateway }
    ///
    /// let watch = LongPoll::new(|_: Request<u64>| async {
    ///         Ok::<Reply<u64, u64>, Failure>(Reply::unchanged())
    ///     })
    ///     // A connect timeout after 3 s says nothing about the path's limit.
    ///     .cut_if(|e: &Failure| !matches!(e, Failure::Connect));
    /// # let _ = watch;
    /// ```
    pub fn cut_if(mut self, cut: impl FnMut(&E) -> bool + Send + 'static) -> Self {
        self.rules.set_cut_if(cut);
        self
    }

    /// Which failures say that the cursor sent has expired (Kubernetes'
    /// `410 Gone`, etcd's `errorCode 401` "the event in the requested index
    /// is outdated and cleared", Kafka's offset out of range). On one, the
    /// poller drops its cursor and, at once, sends a fresh first request that
    /// reads the current state, yields it and goes on from there, as
    /// [`Reply::reset`] does: no error is counted or yielded. An expiry
    /// that comes again right after a fresh start backs off like a reply
    /// that made no progress. A failure on a request without a cursor is
    /// never an expiry.
    ///
    /// A relist may skip changes made between the expired cursor and the
    /// current state, as Kubernetes' watchers do: the status yielded is the
    /// latest, not every one in between. Default: no failure means expiry
    /// (the [`reqwest`](crate::reqwest) helpers set `410 Gone` and etcd's
    /// `errorCode 401`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use pollkit::LongPoll;
    /// use pollkit::long::{Reply, Request};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// // The server forgot index 1 (it keeps a short history): it answers
    /// // "410" to a request from there, and the state is now at 7.
    /// let seen: Vec<u64> = LongPoll::new(|req: Request<u64>| async move {
    ///         match req.cursor() {
    ///             None => Ok(Reply::changed(7, 7)),
    ///             Some(1) => Err("410 Gone"),
    ///             Some(_) => Ok(Reply::changed(8, 8)),
    ///         }
    ///     })
    ///     .cursor(1)
    ///     .expired_if(|e: &&str| e.starts_with("410"))
    ///     .take(2)
    ///     .map(Result::unwrap)
    ///     .collect()
    ///     .await;
    /// assert_eq!(seen, [7, 8]);
    /// # }
    /// ```
    pub fn expired_if(mut self, expired: impl FnMut(&E) -> bool + Send + 'static) -> Self {
        self.rules.set_expired_if(expired);
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
    /// learned limit (unless this request probes past it), by three
    /// quarters of the per-request timeout (so the server answers before
    /// the client gives up on it) and by the time left.
    fn wait_now(
        path: &PathLimit,
        wait: Duration,
        schedule: &Schedule,
        now: Instant,
    ) -> (Duration, bool) {
        let (mut wait, probe) = path.wait(wait, now);
        if let Some(limit) = schedule.attempt_timeout() {
            wait = wait.min(limit - limit / 4);
        }
        (
            schedule.remaining(now).map_or(wait, |left| wait.min(left)),
            probe,
        )
    }

    /// A request was cut (see [`path`]): when the cut taught the path's
    /// limit or cut a probe, ask again at once (with the lowered wait, or
    /// the learned one) and say so; `false` for an ordinary failure.
    ///
    /// A cut that teaches is not forgiven yet: the error streak keeps
    /// running from the first cut, and the request at the lowered wait
    /// settles it (answered normally, the streak ends; failed, the path is
    /// down and the streak's bound applies as to any failures). A cut probe
    /// is no error at all.
    fn learn_path(&mut self, cut: Cut, now: Instant) -> bool {
        let Held { asked, probe, .. } = self.in_flight;
        match self.path.cut(cut, asked, probe, now) {
            Lesson::Nothing => return false,
            Lesson::Taught(wait) => {
                let schedule = self.driver.schedule_mut();
                schedule.count_error();
                if let Some(stats) = schedule.stats() {
                    stats.wait_lowered();
                }
                let took = now.saturating_duration_since(self.in_flight.started);
                self.driver.gate_mut().trace.wait_lowered(took, wait);
            }
            Lesson::ProbeCut => {}
        }
        self.driver.plan(now, now);
        true
    }

    /// Whether an empty reply came back so fast that the server ignored the wait.
    fn was_quick(&self, now: Instant) -> bool {
        let Held { started, asked, .. } = self.in_flight;
        let quick = (asked / QUICK_SHARE).min(QUICK_MAX).max(QUICK_MIN);
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
                let (wait, probe) = Self::wait_now(path, wait, schedule, now);
                *in_flight = Held {
                    started: now,
                    asked: wait,
                    probe,
                    cursor: cursor.is_some(),
                };
                let request = Request::new(cursor.clone(), wait, schedule.attempts());
                let own = Self::limit(schedule, wait);
                (fetch(request), schedule.request_limit(now, Some(own)))
            });
            let mut step = match step {
                Poll::Ready(step) => step,
                Poll::Pending => {
                    // A held request within its own limit is how a quiet
                    // long poll lives: a sign of life for a `Fallback`.
                    if this.trusted && this.driver.in_flight() {
                        crate::life::heartbeat();
                    }
                    return Poll::Pending;
                }
            };
            if let Step::Output(Err(e)) = &step {
                if this.in_flight.cursor && this.rules.is_expired(e) {
                    // The cursor expired (410 Gone, etcd's 401): start over
                    // from the current state, as a reset reply does.
                    step = Step::Output(Ok(Reply::Reset));
                } else if this.hooks.is_pending(e) {
                    // An error that means "not yet" (`pending_if`) is an
                    // answer without news: an unchanged reply, no failure,
                    // no cut, paced as one.
                    step = Step::Output(Ok(Reply::Unchanged));
                }
            }
            // Only an answer makes the next held request a sign of life:
            // after a failure (a gateway's 504 in front of a dead upstream)
            // a held request proves nothing, and a `Fallback` kept "alive"
            // by it would watch a dead path forever.
            match &step {
                Step::Output(result) => this.trusted = result.is_ok(),
                Step::TimedOut(_) => this.trusted = false,
                Step::Stop(_) | Step::Done => {}
            }
            // Classify an error once: `retry_if` and `retry_after` are the
            // user's `FnMut`s.
            let classified = match &step {
                Step::Output(Err(e)) => Some(classify(&mut this.hooks, e)),
                _ => None,
            };
            // Only failures read the clock here: a reply's is read below,
            // and only when something needs it.
            let cut = match &step {
                Step::Output(Err(e)) if classified == Some((true, None)) => {
                    let now = Instant::now();
                    let took = now.saturating_duration_since(this.in_flight.started);
                    this.rules.may_be_cut(e).then_some((Cut::Answer(took), now))
                }
                Step::TimedOut(_) => {
                    // Silence, unless the deadline's grace cut the request.
                    let now = Instant::now();
                    let deadline = this.driver.past_deadline(now).is_some();
                    (!deadline).then_some((Cut::Silence, now))
                }
                _ => None,
            };
            match cut {
                Some((cut, now)) if this.learn_path(cut, now) => {
                    // Still the last error seen if the deadline ends the
                    // wait before a reply.
                    if let Step::Output(Err(e)) = step {
                        this.driver.remember_error(e);
                    }
                    continue;
                }
                Some(_) => {}
                None if matches!(step, Step::Output(Err(_))) => this.path.failed(),
                None => {}
            }
            let reply = match this
                .driver
                .settle_classified(step, &mut this.hooks, classified)
            {
                ControlFlow::Continue(Some(reply)) => reply,
                ControlFlow::Continue(None) => continue,
                ControlFlow::Break(item) => return Poll::Ready(item),
            };
            let Held {
                started,
                asked,
                probe,
                cursor: sent,
            } = this.in_flight;
            if matches!(reply, Reply::Reset) {
                this.path.not_cut();
            } else {
                if sent {
                    this.expiries = 0;
                }
                // A verification or a probe answered (no clock read for
                // a path that taught nothing).
                if this.path.unsettled() {
                    let took = Instant::now().saturating_duration_since(started);
                    if this.path.answered(took, asked, probe) {
                        this.driver.gate_mut().trace.wait_restored(this.wait);
                    }
                }
            }
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
                    // The first reset of a cursor is followed at once by a
                    // fresh first request; one that comes again right after
                    // it backs off, more each time.
                    let dropped = this.cursor.take().is_some();
                    if dropped {
                        this.expiries = this.expiries.saturating_add(1);
                        if this.expiries > 1 {
                            let now = Instant::now();
                            let step = this.expiries - 2;
                            this.driver.answer(now, Answer::Expired { step });
                            continue;
                        }
                    }
                    (dropped, None)
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
                    this.driver.answer(now, Answer::QuickEmpty);
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
