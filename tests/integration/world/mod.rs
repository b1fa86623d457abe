//! A seeded world for the simulator (`tests/world_sim.rs`): a resource that
//! changes (or stays quiet) behind a path that cuts held requests (a status,
//! a reset or silence, at a limit of 1 s to 120 s), with outages of up to
//! 10 minutes, maintenance windows with `Retry-After` from 1 s to 1 h, a
//! cursor history that expires, and sometimes an upstream that goes down
//! for good. Everything runs on tokio's paused clock.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// splitmix64: small, seedable, good enough to draw worlds.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Uniform in `[lo, hi]`, to the millisecond.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// How long a watch runs.
pub const HORIZON: Duration = Duration::from_secs(3600);
/// The failure bound the pollers are given (`Backoff::give_up_after`).
pub const BOUND: Duration = Duration::from_secs(15 * 60);
/// The most a hint may be (`hint_bounds`).
pub const HINT_MAX: Duration = Duration::from_secs(2 * 3600);

/// How a proxy cuts a request it holds past its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutKind {
    /// A 502, 503 or 504 without `Retry-After`.
    Status,
    /// A reset: the connection ends without an answer.
    Reset,
    /// Nothing at all: the client hears silence.
    Silence,
}

/// How a request fails while the path is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// A 502 at once (upstream refused).
    Refused,
    /// A connect timeout after 3 s.
    ConnectTimeout,
    /// A gateway in front of a dead upstream: a 504 after this long.
    Gateway(Duration),
    /// No answer ever.
    Black,
}

/// The user's error in the simulated world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// A 5xx, with the server's hint if any.
    Unavailable { retry_after: Option<Duration> },
    /// A connect failure (it never held a request).
    Connect,
    /// The cursor is older than the server's history.
    Expired,
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for SimError {}

impl SimError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SimError::Unavailable { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// One world, drawn from a seed.
#[derive(Clone, Debug)]
pub struct World {
    pub seed: u64,
    /// When change `n` (from 1) happens.
    pub changes: Vec<Duration>,
    /// A proxy's limit on a held request, and how it cuts.
    pub proxy: Option<(Duration, CutKind)>,
    /// Windows in which every request fails.
    pub outages: Vec<(Duration, Duration, Down)>,
    /// Windows in which every request gets a 503 with this `Retry-After`.
    pub maintenance: Vec<(Duration, Duration, Duration)>,
    /// How many changes back a cursor may be before it expires.
    pub history: Option<u64>,
    /// The path goes down for good from here.
    pub down_from: Option<(Duration, Down)>,
}

impl World {
    pub fn draw(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut changes = Vec::new();
        if rng.chance(40) {
            // Quiet: a few changes in the hour, or none.
            for _ in 0..rng.below(4) {
                changes.push(rng.between(secs(1), HORIZON));
            }
            changes.sort();
        } else {
            let gap = rng.between(secs(1), secs(120));
            let mut t = Duration::ZERO;
            loop {
                t += rng.between(Duration::from_millis(100), gap * 2);
                if t >= HORIZON {
                    break;
                }
                changes.push(t);
            }
        }
        let proxy = rng.chance(60).then(|| {
            let limit = rng.between(secs(1), secs(120));
            (
                limit,
                rng.pick(&[CutKind::Status, CutKind::Reset, CutKind::Silence]),
            )
        });
        let downs = [
            Down::Refused,
            Down::ConnectTimeout,
            Down::Gateway(secs(5)),
            Down::Gateway(secs(29)),
            Down::Black,
        ];
        // Trouble windows one after another, at least 3 minutes apart (a
        // success between them ends the failure streak).
        let (mut outages, mut maintenance) = (Vec::new(), Vec::new());
        let mut t = rng.between(Duration::ZERO, secs(20 * 60));
        for _ in 0..rng.below(4) {
            if rng.chance(60) {
                let len = rng.between(Duration::ZERO, secs(600));
                outages.push((t, t + len, rng.pick(&downs)));
                t += len;
            } else {
                let hint =
                    rng.pick(&[secs(1), secs(7), secs(30), secs(120), secs(600), secs(3600)]);
                // The window ends before the hint does: the retry after it
                // finds the server back.
                let len = rng.between(Duration::ZERO, hint);
                maintenance.push((t, t + len, hint));
                // The client comes back up to a fifth past the hint: the
                // next trouble starts after that, or the two are one
                // streak of failures.
                t += len.max(hint + hint / 5);
            }
            t += rng.between(secs(180), secs(900));
        }
        let history = rng.chance(30).then(|| 1 + rng.below(5));
        let down_from = rng
            .chance(15)
            .then(|| (rng.between(secs(60), HORIZON / 2), rng.pick(&downs)));
        World {
            seed,
            changes,
            proxy,
            outages,
            maintenance,
            history,
            down_from,
        }
    }

    /// The latest change at `at`.
    pub fn index_at(&self, at: Duration) -> u64 {
        self.changes.partition_point(|t| *t <= at) as u64
    }

    /// How a request that starts at `at` fails at once (or after its own
    /// delay), if the path is down or in maintenance.
    pub fn failing(&self, at: Duration) -> Option<Result<Down, Duration>> {
        if let Some((from, down)) = self.down_from {
            if at >= from {
                return Some(Ok(down));
            }
        }
        for &(from, to, down) in &self.outages {
            if at >= from && at < to {
                return Some(Ok(down));
            }
        }
        for &(from, to, hint) in &self.maintenance {
            if at >= from && at < to {
                return Some(Err(hint));
            }
        }
        None
    }

    /// When the path's last trouble ends (outages and maintenance windows),
    /// if it recovers at all.
    pub fn recovered_at(&self) -> Option<Duration> {
        if self.down_from.is_some() {
            return None;
        }
        let outages = self.outages.iter().map(|o| o.1);
        let maintenance = self.maintenance.iter().map(|m| m.1);
        Some(outages.chain(maintenance).max().unwrap_or(Duration::ZERO))
    }

    /// Whether a watch may end with an error at `at`: the path went down
    /// for good before it, or a maintenance window's hint is longer than
    /// the failure bound (the client cannot honour it: it ends at once).
    pub fn may_end_at(&self, at: Duration) -> bool {
        if self.down_from.is_some_and(|(from, _)| at >= from) {
            return true;
        }
        self.maintenance
            .iter()
            .any(|&(from, to, hint)| hint > BOUND && at >= from && at <= to + secs(60))
    }

    /// When a watch must have ended: the path down for good, plus the
    /// failure bound, plus what one more round of requests may take (a
    /// held request at the lowered wait, a per-request timeout, a backoff).
    pub fn must_end_by(&self) -> Option<Duration> {
        self.down_from.map(|(from, _)| from + BOUND + secs(180))
    }
}

/// What the server saw and said, for the invariants.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Request starts (from the world's start) and the wait each asked for.
    pub requests: Vec<(Duration, Duration)>,
    /// Hints given: at, and how long.
    pub hints: Vec<(Duration, Duration)>,
    /// Whether an expired cursor was answered.
    pub expired: bool,
}

/// The server's side: the world, its clock, its log.
#[derive(Clone)]
pub struct Server {
    pub world: Arc<World>,
    pub start: Instant,
    pub log: Arc<Mutex<Log>>,
}

impl Server {
    pub fn new(world: World) -> Self {
        Server {
            world: Arc::new(world),
            start: Instant::now(),
            log: Arc::default(),
        }
    }

    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn log(&self) -> Log {
        self.log.lock().unwrap().clone()
    }

    /// Logs a request that starts now and fails it if the path is down.
    pub async fn admit(&self, wait: Duration) -> Result<(), SimError> {
        let at = self.now();
        self.log.lock().unwrap().requests.push((at, wait));
        match self.world.failing(at) {
            None => Ok(()),
            Some(Err(hint)) => {
                self.log.lock().unwrap().hints.push((at, hint));
                Err(SimError::Unavailable {
                    retry_after: Some(hint),
                })
            }
            Some(Ok(Down::Refused)) => Err(SimError::Unavailable { retry_after: None }),
            Some(Ok(Down::ConnectTimeout)) => {
                tokio::time::sleep(secs(3)).await;
                Err(SimError::Connect)
            }
            Some(Ok(Down::Gateway(after))) => {
                tokio::time::sleep(after).await;
                Err(SimError::Unavailable { retry_after: None })
            }
            Some(Ok(Down::Black)) => std::future::pending().await,
        }
    }

    /// Holds a request from now until `until` (a change or the end of its
    /// wait), unless the proxy cuts it first: `Ok(())` when it was held.
    pub async fn hold(&self, until: Duration) -> Result<(), SimError> {
        let held = until.saturating_sub(self.now());
        if let Some((limit, kind)) = self.world.proxy {
            if limit < held {
                tokio::time::sleep(limit).await;
                return match kind {
                    CutKind::Status | CutKind::Reset => {
                        Err(SimError::Unavailable { retry_after: None })
                    }
                    CutKind::Silence => std::future::pending().await,
                };
            }
        }
        tokio::time::sleep(held).await;
        Ok(())
    }
}
