//! Pacing after a success: the interval (fixed delay or fixed rate, adaptive,
//! near the status's expected time left), or at once.

use std::time::Duration;

use tokio::time::Instant;

use super::jitter::Spread;
use super::rng::Rng;
use super::{Cadence, Jitter, Nanos, Reason, later};

/// How the next request is paced after a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// Every `interval` (ShortPoll).
    Interval,
    /// At once (LongPoll after progress; the server's wait paces it).
    Immediate,
}

/// The interval and its state.
///
/// The fields every success reads come first; the configured interval and
/// the adaptive bounds (boxed: few pollers set them), read only when the
/// pacing is set up or a status is observed, last.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Pacer {
    pacing: Pacing,
    cadence: Cadence,
    /// The adaptive interval in force (equals `interval` otherwise).
    current: Nanos,
    /// The last jittered delay (decorrelated jitter grows from it).
    previous: Nanos,
    /// The expected time left that the last status reported, for the next
    /// tick ([`Nanos::NONE`] when there is none).
    eta: Nanos,
    /// The fixed-rate grid: the planned (unjittered) start of the last tick.
    tick: Option<Instant>,
    interval: Duration,
    /// Adaptive interval bounds (ShortPoll): `(floor, cap)`.
    adaptive: Option<Box<(Duration, Duration)>>,
}

impl Pacer {
    pub(crate) fn new(interval: Duration, pacing: Pacing) -> Self {
        Pacer {
            pacing,
            interval,
            cadence: Cadence::FixedDelay,
            adaptive: None,
            tick: None,
            current: Nanos::from(interval),
            eta: Nanos::NONE,
            previous: Nanos::from(interval),
        }
    }

    pub(crate) fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
        self.current = Nanos::from(self.clamped(interval));
    }

    pub(crate) fn set_cadence(&mut self, cadence: Cadence) {
        self.cadence = cadence;
    }

    pub(crate) fn set_adaptive(&mut self, floor: Duration, cap: Duration) {
        self.adaptive = Some(Box::new((floor.min(cap), cap.max(floor))));
        self.current = Nanos::from(self.clamped(self.interval));
    }

    fn clamped(&self, d: Duration) -> Duration {
        match self.adaptive.as_deref() {
            Some(&(floor, cap)) => d.max(floor).min(cap),
            None => d,
        }
    }

    /// Starts from the configured interval.
    pub(crate) fn start(&mut self) {
        // Decorrelated jitter grows from the previous delay: start it from
        // the configured interval, not the default one.
        self.previous = Nanos::from(self.interval);
        self.current = Nanos::from(self.clamped(self.interval));
    }

    /// Whether the first request's start must be read (to anchor the grid).
    #[inline]
    pub(crate) fn needs_anchor(&self) -> bool {
        self.tick.is_none()
    }

    /// Anchors the fixed-rate grid at the first request.
    #[inline]
    pub(crate) fn anchor(&mut self, now: Instant) {
        if self.tick.is_none() {
            self.tick = Some(now);
        }
    }

    /// Plans `delay` from now and restarts the fixed-rate grid there.
    pub(crate) fn rebase(&mut self, now: Instant, delay: Duration) -> Instant {
        let at = later(now, delay);
        self.tick = Some(at);
        at
    }

    /// Adaptive pacing: what the last status said. A change shortens the
    /// interval (halving it, down to the floor), no change lengthens it (by
    /// half, up to the cap); `eta`, the status's expected time left, plans the
    /// next tick near it, within the same bounds.
    pub(crate) fn observe(&mut self, changed: bool, eta: Option<Duration>) {
        let Some(&(floor, cap)) = self.adaptive.as_deref() else {
            return;
        };
        let current = self.current.get();
        self.current = Nanos::from(if changed {
            (current / 2).max(floor)
        } else {
            current.saturating_add(current / 2).max(floor).min(cap)
        });
        self.eta = Nanos::from_option(eta.map(|d| d.max(floor).min(cap)));
    }

    /// The next start after a success at `now`, and why.
    #[inline]
    pub(crate) fn next(
        &mut self,
        now: Instant,
        jitter: Jitter,
        rng: &mut Rng,
    ) -> (Instant, Reason) {
        match self.pacing {
            Pacing::Immediate => (now, Reason::Pacing),
            Pacing::Interval => {
                let reason = if self.eta.is_some() {
                    Reason::Eta
                } else {
                    Reason::Interval
                };
                (self.next_tick(now, jitter, rng), reason)
            }
        }
    }

    /// The reason for the next start after a success when that start is
    /// "at once" whatever the clock says: immediate pacing, or a zero
    /// interval without jitter and without an estimate. `None` when the next
    /// start depends on the time ([`next`](Self::next) then plans it).
    #[inline]
    pub(crate) fn next_at_once(&mut self, jitter: Jitter) -> Option<Reason> {
        match self.pacing {
            Pacing::Immediate => Some(Reason::Pacing),
            Pacing::Interval
                if self.current.is_zero()
                    && !self.eta.is_some()
                    && matches!(jitter, Jitter::None)
                    && (self.tick.is_some() || self.cadence == Cadence::FixedDelay) =>
            {
                // As `next` would: no jitter keeps the previous delay, and a
                // zero interval leaves the fixed-rate grid where it is.
                self.previous = Nanos::ZERO;
                Some(Reason::Interval)
            }
            Pacing::Interval => None,
        }
    }

    #[inline]
    fn jittered(&mut self, d: Duration, jitter: Jitter, rng: &mut Rng) -> Duration {
        if matches!(jitter, Jitter::None) {
            self.previous = Nanos::from(d);
            return d;
        }
        let previous = self.previous.get();
        let delay = jitter.apply(d, || Spread::around(d, previous), rng);
        self.previous = Nanos::from(delay);
        delay
    }

    /// The next interval tick after a success at `now`.
    #[inline]
    fn next_tick(&mut self, now: Instant, jitter: Jitter, rng: &mut Rng) -> Instant {
        let interval = self.eta.take().unwrap_or(self.current.get());
        let delay = self.jittered(interval, jitter, rng);
        match self.cadence {
            Cadence::FixedDelay => later(now, delay),
            Cadence::FixedRate => {
                let last = self.tick.unwrap_or(now);
                let mut tick = later(last, interval);
                if tick < now && !interval.is_zero() {
                    // Skip the ticks a slow response missed, staying on the grid.
                    let behind = (now - tick).as_nanos();
                    let step = interval.as_nanos();
                    let missed = behind.div_ceil(step);
                    let skip = u64::try_from(missed.saturating_mul(step)).unwrap_or(u64::MAX);
                    tick = later(tick, Duration::from_nanos(skip));
                }
                self.tick = Some(tick);
                // The jitter moves this one request around its tick, not the grid.
                let at = if delay >= interval {
                    later(tick, delay - interval)
                } else {
                    tick.checked_sub(interval - delay).unwrap_or(tick)
                };
                at.max(now)
            }
        }
    }
}

/// Where the fields a success reads end, from the pacer's start.
#[cfg(test)]
pub(super) fn hot_end() -> usize {
    std::mem::offset_of!(Pacer, tick) + std::mem::size_of::<Option<Instant>>()
}
