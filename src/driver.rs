//! The waiting → requesting loop shared by the request/response strategies.
//!
//! [`Driver`] owns the schedule, one timer and the slot for the request in
//! flight. Both live in a single heap block allocated on the first poll and
//! reused for the poller's whole life: a new request is written into the slot
//! with `Pin::set` and the timer is `reset`, so the static path allocates
//! nothing per poll, and the poller is `Unpin` whatever the user's future is
//! (so `poller.next().await` works without pinning it first).

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::Error;
use crate::hooks::Hooks;
use crate::schedule::{Plan, Schedule, Stop};

pin_project! {
    /// The timer and the request in flight, pinned together in one allocation.
    struct Slot<Fut> {
        #[pin]
        timer: Sleep,
        #[pin]
        request: Option<Fut>,
    }
}

/// Where the driver is between polls.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Not polled yet: the clock starts at the first poll.
    Fresh,
    /// The next request may start now.
    Ready,
    /// A zero delay: yield to the runtime once, then request.
    Yield,
    /// Sleeping on the timer until the next request.
    Waiting,
    /// A request is in flight; `limit` is its per-request timeout.
    Requesting {
        limit: Option<(Duration, Instant)>,
        armed: bool,
    },
    /// Polling must stop with this error on the next poll.
    Stopping(Stop),
    /// An error was yielded or the stream ended.
    Done,
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

/// Drives the schedule and the request future of one poller.
pub(crate) struct Driver<Fut> {
    pub(crate) schedule: Schedule,
    slot: Option<Pin<Box<Slot<Fut>>>>,
    phase: Phase,
    /// When the current wait began (for the user's stats).
    wait_began: Option<Instant>,
    /// The next request already holds its slot in the shared budget.
    admitted: bool,
    trace: crate::trace::Trace,
    /// The strategy reads the request start time itself (LongPoll).
    pub(crate) start_clock: bool,
    /// The last clock read, at the end of the last response.
    last_now: Option<Instant>,
}

impl<Fut> std::fmt::Debug for Driver<Fut> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("phase", &self.phase)
            .field("attempts", &self.schedule.attempts())
            .finish_non_exhaustive()
    }
}

impl<Fut: Future> Driver<Fut> {
    pub(crate) fn new(schedule: Schedule, strategy: &'static str) -> Self {
        Driver {
            schedule,
            slot: None,
            phase: Phase::Fresh,
            wait_began: None,
            admitted: false,
            trace: crate::trace::Trace::new(strategy),
            start_clock: true,
            last_now: None,
        }
    }

    /// Waits as planned, starts the next request with `start` (which returns
    /// the request future and its per-request timeout) and polls it to the end.
    pub(crate) fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        mut start: impl FnMut(&mut Schedule, Instant) -> (Fut, Option<Duration>),
    ) -> Poll<Step<Fut::Output>> {
        let _entered = self.trace.enter(&self.schedule);
        loop {
            match self.phase {
                Phase::Fresh => {
                    let now = Instant::now();
                    if !self.schedule.started() {
                        self.schedule.start(now);
                    }
                    if self.slot.is_none() {
                        self.slot = Some(Box::pin(Slot {
                            timer: tokio::time::sleep_until(now),
                            request: None,
                        }));
                    }
                    self.phase = Phase::Ready;
                }
                Phase::Yield => {
                    // A zero delay sets no timer, but a fetch that is always
                    // ready must not starve the other tasks on this worker.
                    self.phase = Phase::Ready;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Phase::Waiting => {
                    let Some(slot) = self.slot.as_mut() else {
                        self.phase = Phase::Fresh;
                        continue;
                    };
                    ready!(slot.as_mut().project().timer.poll(cx));
                    if let Some(began) = self.wait_began.take() {
                        self.schedule
                            .waited(Instant::now().saturating_duration_since(began));
                    }
                    self.phase = Phase::Ready;
                }
                Phase::Ready => {
                    let Some(slot) = self.slot.as_mut() else {
                        self.phase = Phase::Fresh;
                        continue;
                    };
                    let now = match self.last_now.take() {
                        Some(last) if !self.start_clock && !self.schedule.needs_start_clock() => {
                            last
                        }
                        _ => Instant::now(),
                    };
                    if !std::mem::replace(&mut self.admitted, true) {
                        let at = self.schedule.admit(now);
                        if at > now {
                            // The shared budget is spent: wait for our slot.
                            self.trace.plan(&self.schedule, now, Plan::At(at));
                            slot.as_mut().project().timer.reset(at);
                            self.wait_began = self.schedule.counting().then_some(now);
                            self.phase = Phase::Waiting;
                            continue;
                        }
                    }
                    self.admitted = false;
                    self.schedule.attempt(now);
                    self.trace.attempt(&self.schedule);
                    let (request, limit) = start(&mut self.schedule, now);
                    let mut slot = slot.as_mut().project();
                    slot.request.set(Some(request));
                    // The timeout timer is armed only if the request is pending.
                    let limit = limit.map(|limit| (limit, crate::schedule::later(now, limit)));
                    self.phase = Phase::Requesting {
                        limit,
                        armed: false,
                    };
                }
                Phase::Requesting { limit, armed } => {
                    let Some(slot) = self.slot.as_mut() else {
                        self.phase = Phase::Done;
                        return Poll::Ready(Step::Done);
                    };
                    let mut slot = slot.as_mut().project();
                    let Some(request) = slot.request.as_mut().as_pin_mut() else {
                        self.phase = Phase::Done;
                        return Poll::Ready(Step::Done);
                    };
                    if let Poll::Ready(output) = request.poll(cx) {
                        slot.request.set(None);
                        return Poll::Ready(Step::Output(output));
                    }
                    if let Some((limit, deadline)) = limit {
                        if !armed {
                            slot.timer.as_mut().reset(deadline);
                            self.phase = Phase::Requesting {
                                limit: Some((limit, deadline)),
                                armed: true,
                            };
                        }
                        if slot.timer.poll(cx).is_ready() {
                            // Dropping the future cancels the request.
                            slot.request.set(None);
                            return Poll::Ready(Step::TimedOut(limit));
                        }
                    }
                    return Poll::Pending;
                }
                Phase::Stopping(stop) => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Step::Stop(stop));
                }
                Phase::Done => return Poll::Ready(Step::Done),
            }
        }
    }

    /// Plans the next request at `at` (capped at the deadline), or the stop
    /// that the deadline or the attempt limit calls for.
    #[inline]
    pub(crate) fn plan(&mut self, now: Instant, at: Instant) {
        let plan = self.schedule.plan(now, at);
        self.trace.plan(&self.schedule, now, plan);
        match plan {
            Plan::Stop(stop) => self.phase = Phase::Stopping(stop),
            Plan::Now => self.phase = Phase::Yield,
            Plan::At(at) => match self.slot.as_mut() {
                Some(slot) => {
                    slot.as_mut().project().timer.reset(at);
                    self.wait_began = self.schedule.counting().then_some(now);
                    self.phase = Phase::Waiting;
                }
                // Unreachable in practice: the slot exists once a request ran.
                None => self.phase = Phase::Fresh,
            },
        }
    }

    /// After a success: plans the next request by interval, pacing or `hint`.
    #[inline]
    pub(crate) fn succeeded(&mut self, hint: Option<Duration>) {
        let now = Instant::now();
        self.last_now = Some(now);
        let at = self.schedule.after_success(now, hint);
        self.plan(now, at);
    }

    /// After a transient error: plans a retry and returns `true`, or returns
    /// `false` when retries ran out (the caller then yields the error).
    pub(crate) fn failed(&mut self, hint: Option<Duration>) -> bool {
        let now = Instant::now();
        match self.schedule.after_error(now, hint) {
            Some(at) => {
                self.plan(now, at);
                true
            }
            None => false,
        }
    }

    /// Settles everything about a step but a successful output, the same way
    /// for every strategy: a transient error or a per-request timeout plans a
    /// retry (`Continue(None)`) until retries run out; anything else ends the
    /// poller with the item to yield (`Break`). A success is handed back as
    /// `Continue(Some(value))` for the strategy to interpret.
    #[inline]
    pub(crate) fn settle<T, S, E>(
        &mut self,
        step: Step<Result<T, E>>,
        hooks: &mut Hooks<S, E>,
    ) -> ControlFlow<Option<Result<S, Error<E>>>, Option<T>> {
        match step {
            Step::Output(Ok(value)) => ControlFlow::Continue(Some(value)),
            Step::Output(Err(e)) => {
                if hooks.is_transient(&e) {
                    let hint = hooks.retry_after(&e);
                    if self.failed(hint) {
                        return ControlFlow::Continue(None);
                    }
                }
                self.finish();
                ControlFlow::Break(Some(Err(Error::Fetch(e))))
            }
            Step::TimedOut(timeout) => {
                // Cut by the deadline's grace rather than a per-request timeout:
                // that is the deadline passing, and says so.
                if let Err(stop) = self.schedule.check_deadline(Instant::now()) {
                    self.finish();
                    return ControlFlow::Break(Some(Err(stop.into_error())));
                }
                if self.failed(None) {
                    return ControlFlow::Continue(None);
                }
                let attempts = self.schedule.attempts();
                self.finish();
                ControlFlow::Break(Some(Err(Error::AttemptTimeout { timeout, attempts })))
            }
            Step::Stop(stop) => ControlFlow::Break(Some(Err(stop.into_error()))),
            Step::Done => ControlFlow::Break(None),
        }
    }

    /// The poller's progress, with the strategy's resume position.
    pub(crate) fn checkpoint<C>(&self, cursor: Option<C>) -> crate::Checkpoint<C> {
        crate::Checkpoint {
            attempts: self.schedule.attempts(),
            elapsed: self.schedule.elapsed(Instant::now()),
            cursor,
        }
    }

    /// Ends the poller: the strategy yields its last item, then `None`.
    pub(crate) fn finish(&mut self) {
        self.phase = Phase::Done;
        if let Some(slot) = self.slot.as_mut() {
            slot.as_mut().project().request.set(None);
        }
    }
}
