//! The one question every strategy asks its schedule after an answer from
//! the server: when does the next request start (see [`Answer`]).

use std::time::Duration;

use tokio::time::Instant;

use super::streak::Verdict;
use super::{Answer, Disconnect, HINT_SPREAD, Jitter, Reason, RetryPolicy, Schedule, Stop};

impl Schedule {
    /// When next: the start of the next request after the server's
    /// `answer`, or `None` when the retry policy gives up (only after an
    /// error or a failed connection). [`reason`](Self::reason) then says
    /// why, and [`plan`](Self::plan) whether the deadline or the attempt
    /// limit stops polling first.
    #[inline]
    pub(crate) fn next(&mut self, now: Instant, answer: Answer) -> Option<Instant> {
        match answer {
            Answer::Success { hint } => Some(self.after_success(now, hint)),
            Answer::Error { hint } => self.after_error(now, hint),
            Answer::QuickEmpty => Some(self.after_quick_empty(now)),
            Answer::Expired { step } => Some(self.after_expired(now, step)),
            Answer::Disconnect { base, how } => self.after_disconnect(now, base, how),
        }
    }

    /// Why the last planned wait is as long as it is.
    #[inline]
    pub(crate) fn reason(&self) -> Reason {
        self.reason
    }

    /// Adaptive pacing: what the last status said (see [`Pacer::observe`]).
    pub(crate) fn observe(&mut self, changed: bool, eta: Option<Duration>) {
        self.pacer.observe(changed, eta);
    }

    /// The next start after a success; `hint` is the server's "ask again in".
    #[inline]
    fn after_success(&mut self, now: Instant, hint: Option<Duration>) -> Instant {
        self.alive();
        if let Some(hint) = hint {
            self.reason = Reason::Hint;
            let delay = self.spread_hint(hint);
            return self.pacer.rebase(now, delay);
        }
        let (at, reason) = self.pacer.next(now, self.config.jitter, &mut self.rng);
        self.reason = reason;
        at
    }

    /// The plan after a success when it needs no clock (see
    /// [`Pacer::next_at_once`]): the next request at once (`Ok`) or the
    /// attempt limit's stop. `None` when the plan depends on the time: a
    /// deadline, an interval, jitter or an estimate.
    #[inline]
    pub(crate) fn plan_at_once(&mut self) -> Option<Result<(), Stop>> {
        if self.limits.deadline().is_some() {
            return None;
        }
        let reason = self.pacer.next_at_once(self.config.jitter)?;
        self.alive();
        self.reason = reason;
        Some(self.limits.check_attempts())
    }

    /// The next start after a transient error, or `None` when the retry
    /// policy gives up (its count or the streak's time bound).
    fn after_error(&mut self, now: Instant, hint: Option<Duration>) -> Option<Instant> {
        self.after_failure(now, hint, None)
    }

    /// One more failure in the streak, as the retry policy sees it: the
    /// next start, or `None` when the policy gives up. `reconnect` is the
    /// reconnection time in force after a streaming connection failed
    /// (SSE): a backoff then never comes sooner than it, and is spread
    /// above it; a server hint is waited as after any error.
    fn after_failure(
        &mut self,
        now: Instant,
        hint: Option<Duration>,
        reconnect: Option<Duration>,
    ) -> Option<Instant> {
        let hint = self.honourable(hint)?;
        let mut default = RetryPolicy::Default;
        let retry = self.config.retry(&mut default);
        self.unsettled = true;
        let delay = match self.streak.failed(now, hint, retry, &mut self.rng) {
            Verdict::GiveUp => return None,
            Verdict::Hinted(hint) => {
                self.reason = Reason::Hint;
                self.spread_hint(hint)
            }
            Verdict::Backoff { delay, step } => match reconnect {
                None => {
                    self.reason = Reason::Backoff;
                    delay
                }
                // The first failure after a working connection waits
                // the reconnection time, as a browser does.
                Some(base) if step == 0 => return Some(self.reconnect_after(now, base)),
                Some(base) => {
                    self.reason = Reason::Backoff;
                    return Some(self.reconnect_after(now, base.max(delay)));
                }
            },
        };
        Some(self.pacer.rebase(now, delay))
    }

    /// The next start after a reply that made no progress and came back
    /// suspiciously fast (a server ignoring the wait): grows like error
    /// backoff, but never ends polling on its own. It is a successful
    /// response all the same: it ends any error streak.
    fn after_quick_empty(&mut self, now: Instant) -> Instant {
        self.forgive();
        self.reason = Reason::Backoff;
        self.unsettled = true;
        let delay = self.quiet.next(&self.config.cold().retry, &mut self.rng);
        self.pacer.rebase(now, delay)
    }

    /// The next start after a cursor expired again right after a fresh
    /// start (`step` such expiries in a row before this one, from 0): a
    /// delay that grows as the backoff's does and never ends polling. The
    /// strategy keeps the count: the fresh start's reply between two
    /// expiries is a success, which ends every streak here.
    fn after_expired(&mut self, now: Instant, step: u32) -> Instant {
        // The server answered: any error streak is over.
        self.alive();
        self.reason = Reason::Backoff;
        let delay = self
            .config
            .cold()
            .retry
            .nominal(step, Duration::ZERO, &mut self.rng);
        self.pacer.rebase(now, delay)
    }

    /// The reconnect after a streaming connection ended, `base` being the
    /// reconnection time in force; `None` when the retry policy gave up.
    ///
    /// No reconnect comes sooner than the reconnection time: the jitter
    /// spreads it above, never below.
    fn after_disconnect(
        &mut self,
        now: Instant,
        base: Duration,
        how: Disconnect,
    ) -> Option<Instant> {
        self.reason = Reason::Reconnect;
        if !matches!(how, Disconnect::Delivered) {
            self.unsettled = true;
        }
        let delay = match how {
            Disconnect::Failed { hint } => return self.after_failure(now, hint, Some(base)),
            Disconnect::Delivered => {
                self.alive();
                base
            }
            Disconnect::Empty => {
                // The server answered the connect: whatever failed before
                // is over (a quiet stream behind a proxy that drops it
                // before its keep-alive must not carry an outage's streak
                // into the next failure).
                self.forgive();
                self.quiet.next_reconnect(base, &self.config.cold().retry)
            }
        };
        Some(self.reconnect_after(now, delay))
    }

    /// A reconnect `delay` from now, spread above by the jitter (never
    /// sooner than the reconnection time).
    fn reconnect_after(&mut self, now: Instant, delay: Duration) -> Instant {
        let delay = self.config.jitter.above(delay, &mut self.rng);
        self.pacer.rebase(now, delay)
    }

    /// The connection or the poller is alive (a success, bytes on a
    /// stream): the next failure is the first of a new streak.
    #[inline]
    pub(crate) fn alive(&mut self) {
        if self.unsettled {
            self.forgive();
            self.quiet.reset();
            self.unsettled = false;
        }
    }

    /// Forgives the streak so far: the failures were the path's doing and
    /// the strategy has adapted to them (LongPoll's learned wait).
    pub(crate) fn forgive(&mut self) {
        let mut default = RetryPolicy::Default;
        self.streak.reset(self.config.retry(&mut default));
    }

    /// A server's "retry after" as the retry policy sees it: raised to
    /// `hint_min`, or `None` when it is longer than `hint_max`. A hint the
    /// client will not wait for in full ends the wait at once with the
    /// error that carried it, rather than coming back early to be refused
    /// again (a 429 with `Retry-After: 3600` against a 10-minute cap).
    fn honourable(&self, hint: Option<Duration>) -> Option<Option<Duration>> {
        let Some(hint) = hint else {
            return Some(None);
        };
        let cold = self.config.cold();
        (hint <= cold.hint_max).then_some(Some(hint.max(cold.hint_min)))
    }

    /// A server hint, clamped to the bounds and spread above.
    fn spread_hint(&mut self, hint: Duration) -> Duration {
        Jitter::Proportional(HINT_SPREAD).above(self.clamp_hint(hint), &mut self.rng)
    }
}

#[cfg(test)]
mod at_once_tests {
    //! `plan_at_once` is a shortcut of `after_success` + `plan` for the
    //! plans that need no clock: wherever it answers, it must leave the
    //! schedule exactly as the general path does, and where it declines it
    //! must change nothing.
    use super::*;
    use crate::schedule::{Cadence, Pacing, Plan};

    #[derive(Clone, Copy, Debug)]
    struct Setup {
        immediate: bool,
        interval_ms: u64,
        fixed_rate: bool,
        jitter: u8,
        adaptive: Option<(u64, u64)>,
        observe: Option<(bool, Option<u64>)>,
        max_attempts: Option<u32>,
        errors: u32,
        quick: bool,
    }

    fn build(s: Setup, t0: Instant) -> (Schedule, Instant) {
        let pacing = if s.immediate {
            Pacing::Immediate
        } else {
            Pacing::Interval
        };
        let mut sch = Schedule::new(Duration::from_millis(s.interval_ms), pacing);
        sch.config.jitter = match s.jitter {
            0 => Jitter::None,
            1 => Jitter::Full,
            2 => Jitter::Decorrelated,
            _ => Jitter::Proportional(0.0),
        };
        if s.fixed_rate {
            sch.set_cadence(Cadence::FixedRate);
        }
        if let Some((f, c)) = s.adaptive {
            sch.set_adaptive(Duration::from_millis(f), Duration::from_millis(c));
        }
        if let Some(m) = s.max_attempts {
            sch.set_max_attempts(m);
        }
        sch.set_seed(7);
        sch.start(t0);
        sch.attempt(t0);
        let mut t = t0;
        for _ in 0..s.errors {
            t += Duration::from_millis(3);
            if let Some(at) = sch.after_error(t, None) {
                t = at.max(t);
            }
            sch.attempt(t);
        }
        if s.quick {
            t += Duration::from_millis(3);
            t = sch.after_quick_empty(t).max(t);
            sch.attempt(t);
        }
        if let Some((changed, eta)) = s.observe {
            sch.observe(changed, eta.map(Duration::from_millis));
        }
        (sch, t)
    }

    #[test]
    fn plan_at_once_is_the_general_path() {
        let t0 = Instant::now();

        let mut taken = 0;
        for immediate in [false, true] {
            for interval_ms in [0, 1] {
                for fixed_rate in [false, true] {
                    for jitter in 0..4 {
                        for adaptive in [None, Some((1, 0)), Some((0, 0)), Some((1, 30))] {
                            for observe in [
                                None,
                                Some((true, None)),
                                Some((false, None)),
                                Some((true, Some(0))),
                            ] {
                                for max_attempts in [None, Some(1), Some(2), Some(5)] {
                                    for errors in [0, 2] {
                                        for quick in [false, true] {
                                            let s = Setup {
                                                immediate,
                                                interval_ms,
                                                fixed_rate,
                                                jitter,
                                                adaptive,
                                                observe,
                                                max_attempts,
                                                errors,
                                                quick,
                                            };
                                            let (mut a, last) = build(s, t0);
                                            let (mut b, _) = build(s, t0);
                                            let now = last + Duration::from_millis(50);
                                            match a.plan_at_once() {
                                                None => {
                                                    assert_eq!(
                                                        format!("{a:?}"),
                                                        format!("{b:?}"),
                                                        "{s:?}: None mutated"
                                                    );
                                                }
                                                Some(r) => {
                                                    taken += 1;
                                                    let at = b.after_success(now, None);
                                                    let plan = b.plan(now, at);
                                                    let expect = match r {
                                                        Ok(()) => Plan::Now,
                                                        Err(s) => Plan::Stop(s),
                                                    };
                                                    assert_eq!(plan, expect, "{s:?}");
                                                    assert_eq!(
                                                        format!("{a:?}"),
                                                        format!("{b:?}"),
                                                        "{s:?}"
                                                    );
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(taken > 0);
    }
}
