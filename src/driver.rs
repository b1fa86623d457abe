//! The waiting → requesting loop of every strategy, and the bookkeeping of
//! a failing streak, written once.
//!
//! [`Driver`] owns the schedule, the [`Gate`] that decides when the next
//! request may start, one timer and the slot for the request in flight.
//! ShortPoll and LongPoll run every request through it; SseStream runs its
//! connects through it, and lends its timer while a body is read. The rules
//! about a failing streak live here and nowhere else: the last error kept
//! for the stop that may end the wait, the deadline's grace, the retry a
//! failure plans and the `on_retry` it tells.
//!
//! All of it lives in a single heap block ([`Core`]), allocated when the
//! poller is made and reused for its whole life: a new request is written
//! into the slot with `Pin::set` and the timer is `reset`, so the static
//! path allocates nothing per poll, and the poller is `Unpin` whatever the
//! user's future is (so `poller.next().await` works without pinning it
//! first).
//!
//! One block rather than a poller-sized struct plus a timer block: with
//! 100,000 pollers a timer that fires finds everything its tick reads in a
//! few neighbouring cache lines (the gate's phase, the timer, the in-flight
//! record, the request, the schedule's attempt count and pacer), not
//! scattered over the task and a second allocation. Fields a tick does not
//! read sit at the block's two ends or in boxes made only when a knob is set.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::Error;
use crate::gate::{Gate, Gated};
use crate::hooks::Hooks;
use crate::schedule::{Answer, Nanos, Schedule, Stop};
use crate::trace::Entered;

pin_project! {
    /// Everything a request reads and writes, pinned together in one
    /// allocation, in the order a tick touches it: the gate (its rare
    /// fields first), the timer that fires, the request's bookkeeping and
    /// the request, then the schedule (its own rare fields at both ends).
    #[repr(C)]
    struct Core<Fut, E> {
        gate: Gate,
        // Made on the first poll: a timer needs the runtime.
        #[pin]
        timer: Option<Sleep>,
        in_flight: Option<InFlight>,
        // The error of the last request while requests are failing, for the
        // `Timeout` or `Exhausted` that may end the wait.
        last_error: Option<E>,
        #[pin]
        request: Option<Fut>,
        schedule: Schedule,
    }
}

/// A request in flight and its per-request time limit.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// When the request started: its limit counts from here.
    started: Instant,
    /// The limit, if any. The instant it ends at is worked out only if the
    /// request has to wait.
    limit: Nanos,
    /// Whether the timer is set for it (only once the request is pending).
    armed: bool,
    /// Whether `started` is a stand-in older than the start: the limit then
    /// counts from when the request is first found pending (read then, in
    /// the same poll that started it).
    stale: bool,
}

/// What the driver hands to its strategy.
pub(crate) enum Step<T> {
    /// The request finished with this output.
    Output(T),
    /// The request took longer than its per-request timeout and was dropped.
    TimedOut(Duration),
    /// The schedule says stop (deadline or attempt limit).
    Stop(Stop),
    /// The poller finished earlier; yield `None`.
    Done,
}

/// Drives the schedule and the request (or connect) future of one poller.
pub(crate) struct Driver<Fut, E> {
    core: Pin<Box<Core<Fut, E>>>,
}

impl<Fut, E> std::fmt::Debug for Driver<Fut, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("gate", &self.core.gate)
            .field("in_flight", &self.core.in_flight)
            .field("attempts", &self.core.schedule.attempts())
            .finish_non_exhaustive()
    }
}

impl<Fut, E> Driver<Fut, E> {
    /// The schedule, to read.
    #[inline]
    pub(crate) fn schedule(&self) -> &Schedule {
        &self.core.schedule
    }

    /// The schedule, to configure or tell.
    #[inline]
    pub(crate) fn schedule_mut(&mut self) -> &mut Schedule {
        self.core.as_mut().project().schedule
    }

    /// The gate, to read.
    #[inline]
    pub(crate) fn gate(&self) -> &Gate {
        &self.core.gate
    }

    /// The gate, to configure.
    #[inline]
    pub(crate) fn gate_mut(&mut self) -> &mut Gate {
        self.core.as_mut().project().gate
    }

    /// Enters the poller's span for a whole poll (SseStream: its body is
    /// read outside [`poll_step`](Driver::poll_step)).
    pub(crate) fn enter(&mut self) -> Entered {
        let core = self.core.as_mut().project();
        core.gate.trace.enter(core.schedule)
    }

    /// Sets the timer to fire at `at`, for a wait of the strategy's own
    /// while no request is in flight (SseStream: the idle timeout and the
    /// deadline while a body is read). Nothing before the first request.
    pub(crate) fn set_timer(&mut self, at: Instant) {
        if let Some(timer) = self.core.as_mut().project().timer.as_pin_mut() {
            timer.reset(at);
        }
    }

    /// Polls the timer [`set_timer`](Self::set_timer) set (pending when
    /// there is none yet).
    pub(crate) fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.core.as_mut().project().timer.as_pin_mut() {
            Some(timer) => timer.poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<Fut: Future, E> Driver<Fut, E> {
    pub(crate) fn new(schedule: Schedule, strategy: &'static str) -> Self {
        Driver {
            core: Box::pin(Core {
                gate: Gate::new(strategy),
                timer: None,
                in_flight: None,
                last_error: None,
                request: None,
                schedule,
            }),
        }
    }

    /// Waits as planned, starts the next request with `start` (which returns
    /// the request future and its per-request timeout) and polls it to the end.
    #[inline]
    pub(crate) fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        mut start: impl FnMut(&mut Schedule, Instant) -> (Fut, Option<Duration>),
    ) -> Poll<Step<Fut::Output>> {
        let core = self.core.as_mut().project();
        let (gate, schedule) = (core.gate, core.schedule);
        let _entered = gate.trace.enter(schedule);
        let mut timer = core.timer;
        if timer.is_none() {
            timer.set(Some(tokio::time::sleep_until(Instant::now())));
        }
        let Some(mut timer) = timer.as_pin_mut() else {
            // Unreachable: the timer was set just above.
            return Poll::Ready(Step::Done);
        };
        let mut request = core.request;
        let in_flight = match *core.in_flight {
            Some(in_flight) => in_flight,
            None => {
                let gated = gate.poll_open(cx, schedule, timer.as_mut());
                let now = match ready!(gated) {
                    Gated::Go(now) => now,
                    Gated::Stop(stop) => return Poll::Ready(Step::Stop(stop)),
                    Gated::Done => return Poll::Ready(Step::Done),
                };
                let (fut, limit) = start(schedule, now);
                request.set(Some(fut));
                // The timer is armed for the limit only if the request is pending.
                InFlight {
                    started: now,
                    limit: Nanos::from_option(limit),
                    armed: false,
                    stale: gate.may_stand_in(schedule),
                }
            }
        };
        let Some(fut) = request.as_mut().as_pin_mut() else {
            *core.in_flight = None;
            gate.finish();
            return Poll::Ready(Step::Done);
        };
        if let Poll::Ready(output) = fut.poll(cx) {
            request.set(None);
            *core.in_flight = None;
            return Poll::Ready(Step::Output(output));
        }
        // Pending: the request stays in flight until a later poll.
        *core.in_flight = Some(in_flight);
        if let Some(limit) = in_flight.limit.as_option() {
            if !in_flight.armed {
                let started = if in_flight.stale {
                    Instant::now()
                } else {
                    in_flight.started
                };
                timer.as_mut().reset(crate::schedule::later(started, limit));
                *core.in_flight = Some(InFlight {
                    started,
                    armed: true,
                    stale: false,
                    ..in_flight
                });
            }
            if timer.poll(cx).is_ready() {
                // Dropping the future cancels the request.
                request.set(None);
                *core.in_flight = None;
                return Poll::Ready(Step::TimedOut(limit));
            }
        }
        Poll::Pending
    }

    /// Whether a request is in flight (and within its time limit: past it,
    /// the last poll ended it).
    #[inline]
    pub(crate) fn in_flight(&self) -> bool {
        self.core.in_flight.is_some()
    }

    /// Plans the next request at `at` (capped at the deadline), or the stop
    /// that the deadline or the attempt limit calls for.
    #[inline]
    pub(crate) fn plan(&mut self, now: Instant, at: Instant) {
        let core = self.core.as_mut().project();
        match core.timer.as_pin_mut() {
            Some(timer) => core.gate.plan(core.schedule, now, at, timer),
            // Unreachable in practice: the timer exists once a request ran.
            None => core.gate.finish(),
        }
    }

    /// After a success: plans the next request by interval, pacing or `hint`.
    /// A next request that goes at once whatever the time (no deadline, no
    /// hint, no interval) reads no clock.
    #[inline]
    pub(crate) fn succeeded(&mut self, hint: Option<Duration>) {
        if hint.is_none() {
            let core = self.core.as_mut().project();
            if let Some(next) = core.schedule.plan_at_once() {
                core.gate.at_once(core.schedule, None, next);
                return;
            }
        }
        self.succeeded_at(Instant::now(), hint);
    }

    /// [`succeeded`](Self::succeeded), with the clock already read at `now`.
    #[inline]
    pub(crate) fn succeeded_at(&mut self, now: Instant, hint: Option<Duration>) {
        self.gate_mut().note_now(now);
        self.answer(now, Answer::Success { hint });
    }

    /// Plans the next request after an answer that never ends polling on
    /// its own (a success, a quick empty reply, an expired cursor), as the
    /// schedule says ([`Schedule::next`]).
    #[inline]
    pub(crate) fn answer(&mut self, now: Instant, answer: Answer) {
        match self.schedule_mut().next(now, answer) {
            Some(at) => self.plan(now, at),
            // Unreachable: only an error or a failed connection gives up.
            None => self.finish(),
        }
    }

    /// After a transient error: plans a retry and returns the delay before
    /// it (`Some(None)` when the plan is the deadline's or the attempt
    /// limit's stop instead), or `None` when the retry policy gave up (the
    /// caller then yields the error).
    fn failed(&mut self, hint: Option<Duration>) -> Option<Option<Duration>> {
        let now = Instant::now();
        let at = self.schedule_mut().next(now, Answer::Error { hint })?;
        Some(self.retry_at(now, at))
    }

    /// Plans the retry of a failure (or SseStream's reconnect) at `at`, and
    /// returns the delay before it, or `None` when the plan is the
    /// deadline's or the attempt limit's stop instead (nothing to retry,
    /// nothing to tell `on_retry`).
    pub(crate) fn retry_at(&mut self, now: Instant, at: Instant) -> Option<Duration> {
        self.plan(now, at);
        if self.gate().is_stopping() {
            return None;
        }
        Some(self.schedule().cap(at).saturating_duration_since(now))
    }

    /// Tells the user's `on_retry` about the retry just planned, `delay`
    /// from now, after `error` (`None`: a request cut by its time limit)
    /// and the server's `hint`.
    pub(crate) fn tell_retry<S>(
        &self,
        hooks: &mut Hooks<S, E>,
        error: Option<&E>,
        hint: Option<Duration>,
        delay: Duration,
    ) {
        hooks.retrying(&crate::Retry {
            error,
            hint,
            attempt: self.schedule().attempts(),
            delay,
        });
    }

    /// The deadline's grace: a request cut by its time limit once the
    /// deadline has passed was cut by the deadline, not by a per-request
    /// timeout (nor by a path's limit). `Some` with the deadline's stop
    /// when that is so at `now`.
    pub(crate) fn past_deadline(&self, now: Instant) -> Option<Stop> {
        self.schedule().check_deadline(now).err()
    }

    /// [`past_deadline`](Self::past_deadline), acted on: the poller ends,
    /// and this is the error to yield (the deadline's, with the last
    /// error); `None` while the deadline holds.
    pub(crate) fn cut_by_deadline(&mut self, now: Instant) -> Option<Error<E>> {
        let stop = self.past_deadline(now)?;
        self.finish();
        Some(self.stopped(stop))
    }

    /// The error to yield for the stop that ends the wait (the deadline or
    /// the attempt limit), with the last error of the failing streak.
    pub(crate) fn stopped(&mut self, stop: Stop) -> Error<E> {
        stop.into_error(self.take_last_error())
    }

    /// Settles everything about a step but a successful output, the same way
    /// for every strategy: a transient error or a per-request timeout plans a
    /// retry (`Continue(None)`) until retries run out; anything else ends the
    /// poller with the item to yield (`Break`). A success is handed back as
    /// `Continue(Some(value))` for the strategy to interpret.
    #[inline]
    pub(crate) fn settle<T, S>(
        &mut self,
        step: Step<Result<T, E>>,
        hooks: &mut Hooks<S, E>,
    ) -> ControlFlow<Option<Result<S, Error<E>>>, Option<T>> {
        self.settle_classified(step, hooks, None)
    }

    /// [`settle`](Self::settle), with an error already classified by the
    /// strategy (`(transient, hint)`), so the user's `retry_if` and
    /// `retry_after` run once per error.
    #[inline]
    pub(crate) fn settle_classified<T, S>(
        &mut self,
        step: Step<Result<T, E>>,
        hooks: &mut Hooks<S, E>,
        classified: Option<(bool, Option<Duration>)>,
    ) -> ControlFlow<Option<Result<S, Error<E>>>, Option<T>> {
        match step {
            Step::Output(Ok(value)) => {
                // A response is a sign of life for a `Fallback` above us.
                self.answered();
                ControlFlow::Continue(Some(value))
            }
            Step::Output(Err(e)) => self.settle_error(e, hooks, classified),
            Step::TimedOut(timeout) => self.settle_timeout(timeout, hooks),
            Step::Stop(stop) => ControlFlow::Break(Some(Err(self.stopped(stop)))),
            Step::Done => ControlFlow::Break(None),
        }
    }

    /// A failed request: a transient error plans a retry (`Continue(None)`)
    /// until retries run out; anything else ends the poller with the error.
    /// Out of line: the success is the hot path.
    #[inline(never)]
    fn settle_error<T, S>(
        &mut self,
        e: E,
        hooks: &mut Hooks<S, E>,
        classified: Option<(bool, Option<Duration>)>,
    ) -> ControlFlow<Option<Result<S, Error<E>>>, Option<T>> {
        // An answer that means "not yet" (`pending_if`) is no failure: the
        // next request goes at the pace of a success. A strategy that
        // classified the error itself has checked this already. (Here, out
        // of line, so that the success path stays small.)
        if classified.is_none() && hooks.is_pending(&e) {
            self.answered();
            self.succeeded(None);
            return ControlFlow::Continue(None);
        }
        self.schedule().count_error();
        let (transient, hint) = classified.unwrap_or_else(|| classify(hooks, &e));
        if transient {
            if let Some(delay) = self.failed(hint) {
                if let Some(delay) = delay {
                    self.tell_retry(hooks, Some(&e), hint, delay);
                }
                self.remember_error(e);
                return ControlFlow::Continue(None);
            }
        }
        self.finish();
        ControlFlow::Break(Some(Err(Error::Fetch(e))))
    }

    /// A request cut by its per-request time limit: retried like a
    /// transient error, or the deadline's stop when the deadline's grace
    /// cut it. Out of line, as [`settle_error`](Self::settle_error).
    #[inline(never)]
    fn settle_timeout<T, S>(
        &mut self,
        timeout: Duration,
        hooks: &mut Hooks<S, E>,
    ) -> ControlFlow<Option<Result<S, Error<E>>>, Option<T>> {
        self.schedule().count_error();
        if let Some(e) = self.cut_by_deadline(Instant::now()) {
            return ControlFlow::Break(Some(Err(e)));
        }
        if let Some(delay) = self.failed(None) {
            if let Some(delay) = delay {
                self.tell_retry(hooks, None, None, delay);
            }
            return ControlFlow::Continue(None);
        }
        let attempts = self.schedule().attempts();
        self.finish();
        ControlFlow::Break(Some(Err(Error::AttemptTimeout { timeout, attempts })))
    }

    /// The server answered (a response, an error that means "not yet", the
    /// first bytes of an event stream): the failing streak, if any, is
    /// over, and the server is alive.
    #[inline]
    pub(crate) fn answered(&mut self) {
        self.forget_error();
        crate::life::heartbeat();
    }

    /// The failing streak is over: no last error for a stop to carry.
    #[inline]
    pub(crate) fn forget_error(&mut self) {
        *self.core.as_mut().project().last_error = None;
    }

    /// The last error of a failing streak, for the stop that ends it.
    fn take_last_error(&mut self) -> Option<E> {
        self.core.as_mut().project().last_error.take()
    }

    /// Keeps `e` as the last error, for a `Timeout` or `Exhausted` that may
    /// end the wait (a strategy that handled the error itself).
    pub(crate) fn remember_error(&mut self, e: E) {
        *self.core.as_mut().project().last_error = Some(e);
    }

    /// Ends the poller: the strategy yields its last item, then `None`.
    pub(crate) fn finish(&mut self) {
        let mut core = self.core.as_mut().project();
        core.gate.finish();
        *core.in_flight = None;
        core.request.set(None);
    }
}

/// Whether `e` is transient, and the server's hint when it is: each of the
/// user's functions called once.
pub(crate) fn classify<S, E>(hooks: &mut Hooks<S, E>, e: &E) -> (bool, Option<Duration>) {
    let transient = hooks.is_transient(e);
    let hint = if transient {
        hooks.retry_after(e)
    } else {
        None
    };
    (transient, hint)
}

#[cfg(test)]
mod layout_tests {
    //! The layout that keeps a tick to a few cache lines with many pollers
    //! (README, "Performance"): a field added in the middle of the block
    //! should be a decision, not an accident.
    use std::mem::{offset_of, size_of};

    use super::*;

    type Ready = std::future::Ready<Result<(), std::io::Error>>;
    type SmallCore = Core<Ready, std::io::Error>;

    #[test]
    fn a_driver_is_one_pointer_to_one_block() {
        assert_eq!(
            size_of::<Driver<Ready, std::io::Error>>(),
            size_of::<usize>()
        );
        // The tracing feature adds the poller's span to the gate's cold end.
        let lines = if cfg!(feature = "tracing") { 9 } else { 8 };
        assert!(
            size_of::<SmallCore>() <= lines * 64,
            "{}",
            size_of::<SmallCore>()
        );
    }

    #[test]
    fn what_every_request_reads_spans_at_most_five_cache_lines() {
        let start = offset_of!(SmallCore, gate) + crate::gate::hot_start();
        let end = offset_of!(SmallCore, schedule) + crate::schedule::hot_end();
        assert!(start < end);
        assert!(end - start <= 5 * 64, "hot span {start}..{end}");
    }
}
