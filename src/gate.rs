//! [`Gate`]: everything before a request starts, shared by every strategy.
//!
//! A poller's life alternates between the gate (the first poll, waiting for
//! the planned instant on the timer or with a yield, admission by a shared
//! budget, the stop a plan calls for) and its own work (a request in flight
//! for ShortPoll and LongPoll, a connection for SseStream). The gate owns the
//! first half once for all of them; the strategy owns the timer and lends it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::time::{Instant, Sleep};

use crate::hooks::Exclusive;
use crate::schedule::{Admit, Plan, Schedule, Stop};

type Answer = crate::schedule::Asked;
use crate::trace::Trace;

/// Where the gate is between polls.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Not polled yet: the clock starts at the first poll.
    Fresh,
    /// The next request may start now (once the budget admits it).
    Ready,
    /// A zero delay: yield to the runtime once, then start.
    Yield,
    /// Sleeping on the timer until the next request.
    Waiting,
    /// Waiting for a shared admission's answer.
    Asking,
    /// A request is under way: the strategy is in control.
    Open,
    /// Polling must stop with the gate's `stop` on the next poll.
    Stopping,
    /// The poller has ended.
    Done,
}

/// Which clock read may stand in for the start of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartClock {
    /// Always read the clock (SseStream: it times every connection).
    Read,
    /// The strategy times each request (LongPoll: quick replies, cuts): the
    /// read at the end of the last reply stands in when the request follows
    /// it at once; after a wait, or a reply that read no clock, read anew.
    Timed,
    /// The strategy reads the start only through the schedule's policies
    /// (ShortPoll): when none of them needs the time
    /// ([`Schedule::needs_start_clock`]), any earlier read stands in.
    Policies,
}

/// What [`Gate::poll_open`] lets through.
#[derive(Debug)]
pub(crate) enum Gated {
    /// Start the next request now: the instant the request starts at, as
    /// precise as the strategy's [`StartClock`] needs.
    Go(Instant),
    /// Stop with this error (deadline or attempt limit).
    Stop(Stop),
    /// The poller has ended: yield `None`.
    Done,
}

/// The waiting half of a poller (`repr(C)`: the rarely read fields first,
/// the ones every request reads last, next to the timer that follows the
/// gate in the driver).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Gate {
    /// A shared admission's answer in flight (the option inside the
    /// wrapper: 8 bytes less than outside it).
    answer: Exclusive<Option<Answer>>,
    /// The stop to report while `Stopping` (out of the phase, which every
    /// request reads, to keep it one byte).
    stop: Option<Stop>,
    /// When the current wait began (only with the user's stats).
    wait_began: Option<Instant>,
    pub(crate) trace: Trace,
    /// The last clock read.
    last_now: Option<Instant>,
    phase: Phase,
    /// Which clock read may stand in for a request's start.
    pub(crate) start_clock: StartClock,
    /// Whether `last_now` was read at the end of the reply just handled,
    /// with no wait since.
    fresh: bool,
}

impl Gate {
    pub(crate) fn new(strategy: &'static str) -> Self {
        Gate {
            answer: Exclusive::new(None),
            stop: None,
            wait_began: None,
            trace: Trace::new(strategy),
            last_now: None,
            phase: Phase::Fresh,
            start_clock: StartClock::Read,
            fresh: false,
        }
    }

    /// Whether the instant [`Gated::Go`] hands out may be a stand-in older
    /// than the request's start: a strategy that reads the start only
    /// through the schedule's policies, none of which needs the clock.
    #[inline]
    pub(crate) fn may_stand_in(&self, schedule: &Schedule) -> bool {
        self.start_clock == StartClock::Policies && !schedule.needs_start_clock()
    }

    /// Waits until the next request may start, and counts it as started.
    #[inline(always)]
    pub(crate) fn poll_open(
        &mut self,
        cx: &mut Context<'_>,
        schedule: &mut Schedule,
        mut timer: Pin<&mut Sleep>,
    ) -> Poll<Gated> {
        loop {
            match self.phase {
                Phase::Fresh => {
                    let now = Instant::now();
                    self.last_now = Some(now);
                    if !schedule.started() {
                        schedule.start(now);
                    }
                    if let Err(stop) = schedule.check_resumed(now) {
                        // Resumed from a checkpoint already past its limits:
                        // end at once, without a request.
                        self.stop(stop);
                        continue;
                    }
                    let first = schedule.first_at(now);
                    if first > now {
                        // Start jitter: pollers started together spread their
                        // first requests too.
                        self.sleep(schedule, now, first, timer.as_mut());
                        continue;
                    }
                    self.phase = Phase::Ready;
                }
                Phase::Yield => {
                    // Strategies take the yield before the driver runs
                    // (`yielding`); SseStream's gate comes here.
                    self.yielding(cx);
                    return Poll::Pending;
                }
                Phase::Asking => {
                    let Some(answer) = self.answer.get_mut().as_mut() else {
                        self.phase = Phase::Ready;
                        continue;
                    };
                    let slot = ready!(Pin::new(answer).poll(cx));
                    *self.answer.get_mut() = None;
                    let now = Instant::now();
                    let at = schedule.answered(now, slot);
                    if at > now {
                        self.trace.plan(schedule, Some(now), Plan::At(at));
                        self.sleep(schedule, now, at, timer.as_mut());
                    } else {
                        self.phase = Phase::Ready;
                    }
                }
                Phase::Waiting => {
                    ready!(timer.as_mut().poll(cx));
                    if schedule.counting() {
                        if let Some(began) = self.wait_began.take() {
                            schedule.waited(Instant::now().saturating_duration_since(began));
                        }
                    }
                    self.phase = Phase::Ready;
                }
                Phase::Ready => {
                    let stand_in = match self.start_clock {
                        StartClock::Read => false,
                        StartClock::Timed => self.fresh && !schedule.needs_start_clock(),
                        StartClock::Policies => !schedule.needs_start_clock(),
                    };
                    self.fresh = false;
                    let now = match self.last_now {
                        Some(last) if stand_in => last,
                        _ => {
                            let now = Instant::now();
                            self.last_now = Some(now);
                            now
                        }
                    };
                    match schedule.admit(now) {
                        Admit::Go => {}
                        Admit::Stop(stop) => {
                            self.stop(stop);
                            continue;
                        }
                        Admit::At(at, _) => {
                            // The rate limit or the shared budget is spent:
                            // wait for our slot.
                            self.trace.plan(schedule, Some(now), Plan::At(at));
                            self.sleep(schedule, now, at, timer.as_mut());
                            continue;
                        }
                        Admit::Ask(answer) => {
                            *self.answer.get_mut() = Some(answer);
                            self.phase = Phase::Asking;
                            continue;
                        }
                    }
                    schedule.attempt(now);
                    self.trace.attempt(schedule);
                    self.phase = Phase::Open;
                    return Poll::Ready(Gated::Go(now));
                }
                // Polled while the strategy's request is under way: nothing
                // to wait for here (the strategy should not do this).
                Phase::Open => return Poll::Ready(Gated::Go(Instant::now())),
                Phase::Stopping => {
                    self.phase = Phase::Done;
                    return Poll::Ready(match self.stop.take() {
                        Some(stop) => Gated::Stop(stop),
                        // Unreachable: `stop` is set with the phase.
                        None => Gated::Done,
                    });
                }
                Phase::Done => return Poll::Ready(Gated::Done),
            }
        }
    }

    /// The yield between two requests planned at once, taken before anything
    /// else is looked at: `true` when the poller must return `Pending` now
    /// (it has woken itself and goes on at its next poll). A zero delay sets
    /// no timer, but a fetch that is always ready must not starve the other
    /// tasks on this worker.
    #[inline(always)]
    pub(crate) fn yielding(&mut self, cx: &mut Context<'_>) -> bool {
        if matches!(self.phase, Phase::Yield) {
            self.phase = Phase::Ready;
            cx.waker().wake_by_ref();
            return true;
        }
        false
    }

    /// Plans the next request at `at` (capped at the deadline), or the stop
    /// that the deadline or the attempt limit calls for.
    #[inline]
    pub(crate) fn plan(
        &mut self,
        schedule: &mut Schedule,
        now: Instant,
        at: Instant,
        timer: Pin<&mut Sleep>,
    ) {
        match schedule.plan(now, at) {
            Plan::At(at) => {
                if schedule.reason() == crate::schedule::Reason::Hint {
                    // A `Fallback` above must not let another transport
                    // ask the server before its hint allows.
                    crate::life::hinted(at);
                }
                self.trace.plan(schedule, Some(now), Plan::At(at));
                self.sleep(schedule, now, at, timer);
            }
            Plan::Now => self.at_once(schedule, Some(now), Ok(())),
            Plan::Stop(stop) => self.at_once(schedule, Some(now), Err(stop)),
        }
    }

    /// Takes a plan that needs no timer: the next request at once (`Ok`), or
    /// the stop that the deadline or the attempt limit calls for.
    pub(crate) fn at_once(
        &mut self,
        schedule: &Schedule,
        now: Option<Instant>,
        next: Result<(), Stop>,
    ) {
        match next {
            Ok(()) => {
                self.trace.plan(schedule, now, Plan::Now);
                self.phase = Phase::Yield;
            }
            Err(stop) => {
                self.trace.plan(schedule, now, Plan::Stop(stop));
                self.stop(stop);
            }
        }
    }

    #[inline]
    fn sleep(&mut self, schedule: &Schedule, now: Instant, at: Instant, timer: Pin<&mut Sleep>) {
        // After a wait the last reply's clock read is no request's start.
        self.fresh = false;
        timer.reset(at);
        if schedule.counting() {
            self.wait_began = Some(now);
        }
        self.phase = Phase::Waiting;
    }

    /// The clock read at the end of the last response (see [`StartClock`]).
    pub(crate) fn note_now(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.fresh = true;
    }

    /// Stops at the next poll with `stop`.
    pub(crate) fn stop(&mut self, stop: Stop) {
        self.stop = Some(stop);
        self.phase = Phase::Stopping;
    }

    /// Whether the last plan was a stop (deadline or attempt limit).
    pub(crate) fn is_stopping(&self) -> bool {
        matches!(self.phase, Phase::Stopping)
    }

    /// Whether the poller has ended (it yields only `None` from now on).
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Ends the poller.
    pub(crate) fn finish(&mut self) {
        self.phase = Phase::Done;
    }
}

/// Where the fields every request reads start, from the gate's start.
#[cfg(test)]
pub(crate) fn hot_start() -> usize {
    std::mem::offset_of!(Gate, last_now)
}
