//! [`FleetBudget`]: one request budget for every instance of a service, kept
//! in Redis.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use pollkit::{Admission, Budget, Reservation};
use redis::Script;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// The reservation: one atomic GCRA step on the server's clock.
static RESERVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/reserve.lua")));
/// Gives back a slot a dropped poller will not use.
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release.lua")));

/// The largest offset sent to a script (about 31 years in microseconds),
/// well within the integers a Lua number holds exactly.
const MAX_MICROS: i64 = 1_000_000_000_000_000;

/// A request budget shared by every instance of a service: a token bucket of
/// `rate` requests per second with a burst of `burst`, kept in one Redis key
/// and updated by one atomic Lua script per request. It is a
/// [`pollkit::Admission`]: give it to any poller with `.admission(..)`.
///
/// It keeps the semantics of the in-process [`pollkit::Budget`]: each request
/// reserves the earliest free slot at or after the instant it is due, in the
/// order requests ask, so when the budget is short every poller slows down and
/// none starves; no reservation pushes a request past its poller's deadline
/// (the script reserves nothing then, and the poller ends with `Timeout` at its
/// deadline instead of sending a final request over budget).
/// Any number of instances sharing the key stay within `rate` and `burst` in
/// every window of time.
///
/// # Waiting for the slot
/// The reservation's answer comes at the slot: the budget waits for it
/// itself, so that a slot already far in the past when the wait ends (the
/// process was paused, or starved of CPU, past it by more than
/// [`late`](Self::late)) is not used but reserved again, at the back of the
/// queue. An instance that resumes does not start all its overdue requests
/// at once next to the rest of the fleet's. A poller dropped while it waits
/// for the last slot booked gives it back (a release script; a slot in the
/// middle of the queue is lost instead, never booked twice). So in any
/// window of `w`, the
/// fleet starts at most `rate × (w + late) + burst` requests, across every
/// fault below.
///
/// # A lost bucket
/// The key may be lost while instances hold slots it granted (`DEL`,
/// `FLUSHALL`, eviction, a failover that lost writes, Redis restarting
/// empty). Each instance sends the furthest slot it holds with every
/// reservation, and the script keeps the bucket full at least one period
/// past it: a lost bucket is re-seeded from the slots still out there,
/// instead of starting empty next to them. A reservation that finds the key
/// gone while its instance holds a slot ahead counts as a Redis fault
/// ([`FleetBudgetStats::failures`] and [`FleetBudgetStats::lost`]).
///
/// # Clocks
/// The script reads the Redis server's clock (`TIME`); an instance sends only
/// durations ("due in 30 ms", "deadline in 4 s") and receives one ("start in
/// 120 ms"), which it adds to its own monotonic clock *when the answer
/// arrives*. So the wall clocks of the instances never enter the sums, and
/// skew between them does not matter; a request starts at its slot on the
/// server's clock or up to one round trip later (never earlier). The
/// assumption is a Redis clock that does not jump: a step back of the
/// server's clock by `d` (or a failover to a replica whose clock is `d`
/// behind) delays the fleet's requests by up to `d`.
///
/// # Degraded mode
/// When Redis does not answer within [`timeout`](Self::timeout) (it is down,
/// slow, or unreachable), requests are admitted by a local
/// [`pollkit::Budget`] instead: by default `rate / instances` with a burst of
/// `burst / instances` (at least 1), see [`instances`](Self::instances) and
/// [`local`](Self::local). While degraded, one request every
/// [`retry_every`](Self::retry_every) asks Redis again (the others do not
/// wait for it), and the first answer ends the degraded mode.
/// [`stats`](Self::stats) counts both kinds of admission.
///
/// Slots already reserved are kept across a switch, and neither bucket
/// grants one before the furthest slot the other granted this instance: an
/// instance does not add the two rates when Redis fails or returns. Across
/// instances, what remains is this: when Redis returns, an instance that
/// asks it first is granted slots after its own local slots, while another
/// instance whose local queue runs further has not asked yet (it asks within
/// `retry_every`). So for up to `retry_every` after Redis returns, the fleet
/// may start the other instances' local shares on top of the rate:
/// `(instances - 1) / instances × rate × retry_every` more requests, plus
/// one local burst per instance.
///
/// # Default
/// - burst 1;
/// - instances 1: while Redis is down, each instance keeps the whole rate for
///   itself. Set it to the number of instances you run so that a fleet in
///   degraded mode keeps the rate too;
/// - timeout 250 ms per round trip;
/// - retry_every 1 s;
/// - late 50 ms.
///
/// Configure it before cloning it into pollers: clones share the bucket and
/// the local budget.
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use pollkit::{Poller, ShortPoll};
/// use pollkit_redis::FleetBudget;
///
/// # #[tokio::main] async fn main() -> Result<(), pollkit_redis::Error> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let conn = pollkit_redis::connect(&client).await?;
/// // 100 requests per second to the jobs API, for all 20 instances together.
/// let budget = FleetBudget::per_second(conn, "pollkit:budget:jobs-api", 100)
///     .burst(10)
///     .instances(20);
/// let status = ShortPoll::new(|| async { Ok::<_, std::io::Error>("done") })
///     .interval(Duration::from_secs(1))
///     .admission(budget.clone())
///     .until(|s| *s == "done")
///     .await;
/// # let _ = status; Ok(()) }
/// ```
#[derive(Clone)]
pub struct FleetBudget {
    config: Arc<Config>,
    state: Arc<State>,
}

#[derive(Clone)]
struct Config {
    conn: ConnectionManager,
    key: String,
    period: Duration,
    burst: u32,
    instances: u32,
    /// Set by [`FleetBudget::local`]; otherwise derived from the shares.
    explicit_local: bool,
    local: Budget,
    timeout: Duration,
    retry_every: Duration,
    late: Duration,
}

#[derive(Default)]
struct State {
    /// The script is loaded once before the first reservation, so that a
    /// herd of first reservations does not meet `NOSCRIPT` a thousand times
    /// (`invoke_async` still reloads it after a server restart).
    loaded: tokio::sync::OnceCell<()>,
    health: Mutex<Health>,
    remote: AtomicU64,
    local: AtomicU64,
    failures: AtomicU64,
    recoveries: AtomicU64,
    lost: AtomicU64,
    late: AtomicU64,
    /// The furthest slot granted to this instance (by Redis or the local
    /// budget): the floor of the shared bucket, should it be lost.
    furthest: Mutex<Option<Instant>>,
}

/// Whether Redis answers; `None` while it does.
#[derive(Debug, Default)]
struct Health {
    down: Option<Down>,
}

#[derive(Debug)]
struct Down {
    /// When the next request may ask Redis again.
    retry_at: Instant,
    /// A request is asking Redis right now: the others stay local.
    probing: bool,
}

/// Where a reservation goes.
enum Route {
    Local,
    Remote { probe: bool },
}

/// Counters of a [`FleetBudget`] (all of its clones together), from the
/// moment it was made.
///
/// # Examples
/// ```
/// let stats = pollkit_redis::FleetBudgetStats::default();
/// assert_eq!(stats.remote + stats.local, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetBudgetStats {
    /// Reservations Redis answered.
    pub remote: u64,
    /// Reservations the local budget answered (degraded mode).
    pub local: u64,
    /// Round trips that failed or timed out, and reservations that found
    /// the bucket lost.
    pub failures: u64,
    /// Times Redis answered again after a failure.
    pub recoveries: u64,
    /// Reservations that found the bucket's key gone while this instance
    /// held a slot ahead (it was re-seeded from that slot).
    pub lost: u64,
    /// Slots not used because the wait for them ended more than
    /// [`late`](FleetBudget::late) past them (reserved again).
    pub late: u64,
}

impl fmt::Debug for FleetBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBudget")
            .field("key", &self.config.key)
            .field("period", &self.config.period)
            .field("burst", &self.config.burst)
            .field("instances", &self.config.instances)
            .field("timeout", &self.config.timeout)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

impl FleetBudget {
    /// A budget of `rate` requests per second (a rate of 0 is taken as 1)
    /// kept in the Redis key `key`, for every instance that names the same
    /// key. Make `conn` with [`connect`](crate::connect).
    pub fn per_second(conn: ConnectionManager, key: impl Into<String>, rate: u32) -> Self {
        Self::every(conn, key, Duration::from_secs(1) / rate.max(1))
    }

    /// A budget of one request per `period` (at least one microsecond, the
    /// script's unit), kept in the Redis key `key`.
    pub fn every(conn: ConnectionManager, key: impl Into<String>, period: Duration) -> Self {
        let period = period.max(Duration::from_micros(1));
        let mut config = Config {
            conn,
            key: key.into(),
            period,
            burst: 1,
            instances: 1,
            explicit_local: false,
            local: Budget::every(period),
            timeout: Duration::from_millis(250),
            retry_every: Duration::from_secs(1),
            late: Duration::from_millis(50),
        };
        config.derive_local();
        FleetBudget {
            config: Arc::new(config),
            state: Arc::default(),
        }
    }

    /// How many requests may start at once when the budget is full, across
    /// the fleet (0 is taken as 1). Every instance must use the same rate
    /// and burst for a key.
    pub fn burst(mut self, burst: u32) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.burst = burst.max(1);
        config.derive_local();
        self
    }

    /// How many instances share the budget: in degraded mode each one keeps
    /// `rate / instances` with a burst of `burst / instances` (at least 1)
    /// for itself. 0 is taken as 1.
    pub fn instances(mut self, instances: u32) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.instances = instances.max(1);
        config.derive_local();
        self
    }

    /// The local budget that admits requests while Redis does not answer,
    /// instead of the share [`instances`](Self::instances) computes.
    pub fn local(mut self, budget: Budget) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.local = budget;
        config.explicit_local = true;
        self
    }

    /// How long a reservation waits for Redis before the local budget
    /// answers instead (at least 1 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.config).timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// While degraded, how often a request asks Redis again (at least 10 ms).
    pub fn retry_every(mut self, every: Duration) -> Self {
        Arc::make_mut(&mut self.config).retry_every = every.max(Duration::from_millis(10));
        self
    }

    /// How far past its slot a wait may end before the slot is not used but
    /// reserved again (see "Waiting for the slot"; at least 1 ms).
    pub fn late(mut self, late: Duration) -> Self {
        Arc::make_mut(&mut self.config).late = late.max(Duration::from_millis(1));
        self
    }

    /// The Redis key of the bucket.
    pub fn key(&self) -> &str {
        &self.config.key
    }

    /// Whether the last round trip to Redis failed (requests are admitted by
    /// the local budget until Redis answers again).
    pub fn is_degraded(&self) -> bool {
        self.state.health().down.is_some()
    }

    /// Counters of reservations, failures and recoveries.
    pub fn stats(&self) -> FleetBudgetStats {
        let s = &self.state;
        FleetBudgetStats {
            remote: s.remote.load(Ordering::Relaxed),
            local: s.local.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            recoveries: s.recoveries.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            late: s.late.load(Ordering::Relaxed),
        }
    }

    /// Reserves a slot, waits for it, and reserves again while the wait
    /// ends more than `late` past the slot; `None`: no slot before the
    /// deadline. Dropped while waiting, it gives the slot back.
    async fn admit(self, mut due: Instant, deadline: Option<Instant>) -> Option<Instant> {
        loop {
            let slot = match self.state.route(Instant::now()) {
                Route::Local => self.reserve_local(due, deadline)?,
                Route::Remote { probe } => {
                    self.clone().reserve_remote(due, deadline, probe).await?
                }
            };
            if slot > Instant::now() {
                let held = Held {
                    budget: &self,
                    slot: Some(slot),
                };
                tokio::time::sleep_until(slot).await;
                held.keep();
            }
            let now = Instant::now();
            if now.saturating_duration_since(slot) <= self.config.late {
                return Some(slot);
            }
            // Woken far past the slot (paused or starved): using it now
            // would start it next to the slots granted since.
            self.state.late.fetch_add(1, Ordering::Relaxed);
            due = now;
        }
    }

    /// The local share's answer; `None`: no slot before the deadline.
    fn reserve_local(&self, due: Instant, deadline: Option<Instant>) -> Option<Instant> {
        self.state.local.fetch_add(1, Ordering::Relaxed);
        // Not before the slots Redis granted this instance and that are
        // still ahead: a switch does not add the two buckets' rates.
        let due = due.max(self.state.furthest().unwrap_or(due));
        let at = match self.config.local.reserve(due, deadline) {
            Reservation::At(at) => at,
            Reservation::Refused => return None,
            // A pollkit::Budget answers at once; anything else is not ours
            // to wait for.
            // (`Reservation` is non-exhaustive.)
            _ => due,
        };
        self.state.granted(at);
        Some(at)
    }

    /// One round trip to the reservation script; the local budget answers if
    /// it fails.
    async fn reserve_remote(
        self,
        due: Instant,
        deadline: Option<Instant>,
        probe: bool,
    ) -> Option<Instant> {
        let mut guard = ProbeGuard {
            state: probe.then_some(&*self.state),
        };
        let config = &self.config;
        let sent = Instant::now();
        let limit = deadline.map_or(-1, |d| micros(d.saturating_duration_since(sent)));
        let floor = self
            .state
            .furthest()
            .filter(|f| *f > sent)
            .map_or(-1, |f| micros(f - sent));
        let mut conn = config.conn.clone();
        let mut call = RESERVE.key(&config.key);
        call.arg(micros(config.period).max(1))
            .arg(config.burst)
            .arg(micros(due.saturating_duration_since(sent)))
            .arg(limit)
            .arg(floor);
        let round_trip = async {
            let mut load = conn.clone();
            self.state
                .loaded
                .get_or_try_init(|| async move { RESERVE.load_async(&mut load).await.map(drop) })
                .await?;
            call.invoke_async::<(i64, i64, i64)>(&mut conn).await
        };
        let answer = tokio::time::timeout(config.timeout, round_trip).await;
        match answer {
            Ok(Ok((reserved, offset, lost))) => {
                guard.state = None;
                self.state.succeeded();
                if lost == 1 {
                    // Re-seeded already; a fault all the same.
                    self.state.lost.fetch_add(1, Ordering::Relaxed);
                    self.state.failures.fetch_add(1, Ordering::Relaxed);
                }
                // Anchored at the answer's arrival: the server's "now" was
                // between sending and arriving, so the request never starts
                // before its slot on the server's clock.
                let at = Instant::now() + Duration::from_micros(u64::try_from(offset).unwrap_or(0));
                let at = at.max(due);
                match deadline {
                    // No slot before the deadline: nothing reserved, and the
                    // poller ends at its deadline without a request.
                    Some(deadline) if reserved == 0 || at > deadline => None,
                    _ => {
                        self.state.granted(at);
                        Some(at)
                    }
                }
            }
            _ => {
                guard.state = None;
                self.state.failed(Instant::now(), config.retry_every);
                self.reserve_local(due, deadline)
            }
        }
    }
}

impl Config {
    /// The local share: `rate / instances`, `burst / instances`.
    fn derive_local(&mut self) {
        if self.explicit_local {
            return;
        }
        let share = self.period.saturating_mul(self.instances);
        self.local = Budget::every(share).burst((self.burst / self.instances).max(1));
    }
}

impl State {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn route(&self, now: Instant) -> Route {
        let mut health = self.health();
        match health.down.as_mut() {
            None => Route::Remote { probe: false },
            Some(down) if down.probing || now < down.retry_at => Route::Local,
            Some(down) => {
                down.probing = true;
                Route::Remote { probe: true }
            }
        }
    }

    fn succeeded(&self) {
        self.remote.fetch_add(1, Ordering::Relaxed);
        if self.health().down.take().is_some() {
            self.recoveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn furthest(&self) -> Option<Instant> {
        *self.furthest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot was granted: it may be the furthest.
    fn granted(&self, slot: Instant) {
        let mut furthest = self.furthest.lock().unwrap_or_else(PoisonError::into_inner);
        if furthest.is_none_or(|f| slot > f) {
            *furthest = Some(slot);
        }
    }

    /// A slot was given back: it no longer holds the bucket up.
    fn released(&self, slot: Instant) {
        let mut furthest = self.furthest.lock().unwrap_or_else(PoisonError::into_inner);
        if *furthest == Some(slot) {
            *furthest = None;
        }
    }

    fn failed(&self, now: Instant, retry_every: Duration) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.health().down = Some(Down {
            retry_at: now + retry_every,
            probing: false,
        });
    }
}

/// A slot being waited for: given back if the wait is dropped.
struct Held<'a> {
    budget: &'a FleetBudget,
    slot: Option<Instant>,
}

impl Held<'_> {
    /// The wait ended: the slot is used (or missed), not given back.
    fn keep(mut self) {
        self.slot = None;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.budget.release(slot);
        }
    }
}

/// Lets the next request probe Redis if this probe is dropped unanswered
/// (its poller was dropped while asking).
struct ProbeGuard<'a> {
    state: Option<&'a State>,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state {
            if let Some(down) = state.health().down.as_mut() {
                down.probing = false;
            }
        }
    }
}

impl Admission for FleetBudget {
    /// Answers at the slot (see "Waiting for the slot").
    fn reserve(&self, due: Instant, deadline: Option<Instant>) -> Reservation {
        Reservation::Pending(Box::pin(self.clone().admit(due, deadline)))
    }

    /// Gives the slot back to the bucket it most likely came from: the local
    /// budget while degraded, Redis otherwise (in the background, without
    /// waiting; outside a Tokio runtime nothing is given back).
    fn release(&self, slot: Instant) {
        self.state.released(slot);
        if self.is_degraded() {
            self.config.local.release(slot);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let config = Arc::clone(&self.config);
        runtime.spawn(async move {
            let mut conn = config.conn.clone();
            let mut call = RELEASE.key(&config.key);
            call.arg(micros(config.period).max(1))
                .arg(micros(slot.saturating_duration_since(Instant::now())))
                .arg(config.burst.max(1));
            // Best effort: a slot not given back only costs one period.
            let _ = tokio::time::timeout(config.timeout, call.invoke_async::<i64>(&mut conn)).await;
        });
    }
}

/// A duration in whole microseconds, saturating at [`MAX_MICROS`].
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).map_or(MAX_MICROS, |m| m.min(MAX_MICROS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_saturates() {
        assert_eq!(micros(Duration::from_millis(3)), 3_000);
        assert_eq!(micros(Duration::MAX), MAX_MICROS);
    }
}
