//! Defaults on real paths, on tokio's paused clock: a proxy whose read
//! timeout is shorter than the long-poll wait, an upstream restart (a minute
//! of 502s), a maintenance window (a minute of 503 + `Retry-After`), a
//! backlog after a reconnect, a fleet told the same `Retry-After`.
//!
//! A simulated world stands in for server and proxy: a resource whose
//! changes happen at known instants, behind a path that fails as told. Every
//! poller runs on its defaults and must deliver every change once, in order,
//! and notice each one soon after the path works again.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ApiError, ms, secs};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Error, Fallback, Jitter, LongPoll, Poller, ShortPoll, SseStream, Stats};
use tokio::time::Instant;

/// What the path does at an instant (counted from the start).
#[derive(Clone, Default)]
struct Path {
    /// A proxy answers 504 to any request held this long.
    gateway_timeout: Option<Duration>,
    /// Every request in this window fails at once (502: upstream down).
    outage: Option<(Duration, Duration)>,
    /// Every request in this window gets 503 with `Retry-After` (the hint).
    maintenance: Option<(Duration, Duration, Duration)>,
}

/// A resource whose n-th change (from 1) happens at `changes[n - 1]`.
#[derive(Clone)]
struct World {
    start: Instant,
    changes: Arc<Vec<Duration>>,
    path: Path,
    requests: Arc<Mutex<Vec<Duration>>>,
}

impl World {
    fn new(changes: Vec<Duration>, path: Path) -> Self {
        World {
            start: Instant::now(),
            changes: Arc::new(changes),
            path,
            requests: Arc::default(),
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The latest change at `at`.
    fn index_at(&self, at: Duration) -> u64 {
        self.changes.iter().filter(|t| **t <= at).count() as u64
    }

    /// How the path answers a request starting now, if it fails at once.
    fn refused(&self) -> Option<ApiError> {
        let now = self.now();
        self.requests.lock().unwrap().push(now);
        if let Some((from, to)) = self.path.outage {
            if now >= from && now < to {
                return Some(ApiError::Unavailable { retry_after: None });
            }
        }
        if let Some((from, to, hint)) = self.path.maintenance {
            if now >= from && now < to {
                return Some(ApiError::Unavailable {
                    retry_after: Some(hint),
                });
            }
        }
        None
    }

    /// One short poll: the latest index.
    async fn get(self) -> Result<u64, ApiError> {
        match self.refused() {
            Some(e) => Err(e),
            None => Ok(self.index_at(self.now())),
        }
    }

    /// One blocking query: held until a change after `cursor` or the wait
    /// ends, unless the gateway cuts it first.
    async fn watch(self, req: Request<u64>) -> Result<Reply<u64, u64>, ApiError> {
        if let Some(e) = self.refused() {
            return Err(e);
        }
        let cursor = req.cursor().copied().unwrap_or(0);
        let now = self.now();
        let next = self.changes.get(cursor as usize).copied();
        if next.is_some_and(|t| t <= now) {
            // One change per reply, as etcd v2 answers a waitIndex.
            return Ok(Reply::changed(cursor + 1, cursor + 1));
        }
        let held = next.map_or(req.wait(), |t| (t - now).min(req.wait()));
        if let Some(cut) = self.path.gateway_timeout {
            if cut < held {
                tokio::time::sleep(cut).await;
                return Err(ApiError::Unavailable { retry_after: None });
            }
        }
        tokio::time::sleep(held).await;
        if next.is_some_and(|t| t <= self.now()) {
            Ok(Reply::changed(cursor + 1, cursor + 1))
        } else {
            Ok(Reply::unchanged())
        }
    }

    /// One event-stream connection: the changes after `last_id`, each as it
    /// happens, a keep-alive comment every 15 s, cut by the gateway.
    async fn connect(
        self,
        last_id: Option<String>,
    ) -> Result<futures::stream::BoxStream<'static, Result<String, ApiError>>, ApiError> {
        if let Some(e) = self.refused() {
            return Err(e);
        }
        let from: u64 = last_id.and_then(|id| id.parse().ok()).unwrap_or(0);
        let opened = self.now();
        let world = self.clone();
        let body = futures::stream::unfold((from, opened), move |(sent, last)| {
            let world = world.clone();
            async move {
                let next = world.changes.get(sent as usize).copied();
                let keepalive = last + secs(15);
                let at = next
                    .map_or(keepalive, |t| t.min(keepalive))
                    .max(world.now());
                if let Some(cut) = world.path.gateway_timeout {
                    if at >= opened + cut {
                        tokio::time::sleep_until(world.start + opened + cut).await;
                        // A chunked body cut by the proxy: an error.
                        return Some((
                            Err(ApiError::Unavailable { retry_after: None }),
                            (u64::MAX, last),
                        ));
                    }
                }
                if sent == u64::MAX {
                    return None;
                }
                tokio::time::sleep_until(world.start + at).await;
                if next.is_some_and(|t| t <= at) {
                    let n = sent + 1;
                    Some((Ok(format!("id: {n}\ndata: {n}\n\n")), (n, at)))
                } else {
                    Some((Ok(": keep-alive\n\n".to_owned()), (sent, at)))
                }
            }
        })
        .boxed();
        Ok(body)
    }
}

/// Changes every 3 s for `n` changes, starting at 1 s.
fn every_3s(n: u64) -> Vec<Duration> {
    (0..n).map(|i| secs(1 + 3 * i)).collect()
}

/// Collects `n` changes with a LongPoll on defaults.
async fn long_poll_sees_all(world: &World, n: u64, stats: &Stats) -> Vec<u64> {
    let w = world.clone();
    LongPoll::new(move |req| w.clone().watch(req))
        .retry_after(ApiError::retry_after)
        .stats(stats.clone())
        .take(n as usize)
        .map(|r| r.unwrap())
        .collect()
        .await
}

#[tokio::test(start_paused = true)]
async fn a_gateway_shorter_than_the_wait_is_learned_not_fatal() {
    let world = World::new(
        every_3s(5).into_iter().map(|t| t * 20).collect(),
        Path {
            gateway_timeout: Some(secs(5)),
            ..Path::default()
        },
    );
    let stats = Stats::new();
    let got = long_poll_sees_all(&world, 5, &stats).await;
    assert_eq!(got, [1, 2, 3, 4, 5]);
    assert_eq!(stats.waits_lowered(), 1, "learned once");
    // Two 504s taught the limit; after that no request is cut.
    assert_eq!(stats.errors(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_minute_long_outage_is_ridden_out_by_every_strategy() {
    let path = Path {
        outage: Some((secs(10), secs(70))),
        ..Path::default()
    };
    let changes = every_3s(40); // 1 s .. 118 s, 20 of them during the outage
    // LongPoll.
    let world = World::new(changes.clone(), path.clone());
    let got = long_poll_sees_all(&world, 40, &Stats::new()).await;
    assert_eq!(got, (1..=40).collect::<Vec<_>>());
    // Back within the 30 s backoff cap of the end of the outage.
    let first_after = world
        .requests
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|t| *t >= secs(70));
    assert!(first_after.unwrap() <= secs(100), "{first_after:?}");

    // SseStream.
    let world = World::new(changes.clone(), path.clone());
    let w = world.clone();
    let events: Vec<u64> = SseStream::new(move |id| w.clone().connect(id))
        .take(40)
        .map(|e| e.unwrap().data().parse::<u64>().unwrap())
        .collect()
        .await;
    assert_eq!(events, (1..=40).collect::<Vec<_>>());

    // ShortPoll (every change it can see, in order, up to the last).
    let world = World::new(changes, path);
    let w = world.clone();
    let last = ShortPoll::new(move || w.clone().get())
        .interval(secs(1))
        .until(|n| *n == 40)
        .await;
    assert_eq!(last.unwrap(), 40);
}

#[tokio::test(start_paused = true)]
async fn a_maintenance_window_is_ridden_out_and_retry_after_is_honoured() {
    let path = Path {
        maintenance: Some((secs(10), secs(70), secs(7))),
        ..Path::default()
    };
    let world = World::new(every_3s(40), path);
    let got = long_poll_sees_all(&world, 40, &Stats::new()).await;
    assert_eq!(got, (1..=40).collect::<Vec<_>>());
    // No request in the window came sooner than 7 s after the one before.
    let requests = world.requests.lock().unwrap().clone();
    let in_window: Vec<_> = requests
        .iter()
        .filter(|t| **t >= secs(10) && **t < secs(70))
        .collect();
    for w in in_window.windows(2) {
        assert!(*w[1] - *w[0] >= secs(7), "{in_window:?}");
    }
    assert!(in_window.len() >= 6, "{in_window:?}");
}

#[tokio::test(start_paused = true)]
async fn a_fleet_told_the_same_retry_after_does_not_return_in_the_same_millisecond() {
    let world = World::new(
        vec![secs(1)],
        Path {
            maintenance: Some((Duration::ZERO, secs(1), secs(7))),
            ..Path::default()
        },
    );
    let fleet: Vec<_> = (0..100)
        .map(|_| {
            let w = world.clone();
            tokio::spawn(
                ShortPoll::new(move || w.clone().get())
                    .retry_after(ApiError::retry_after)
                    .until(|n| *n == 1),
            )
        })
        .collect();
    for poller in fleet {
        poller.await.unwrap().unwrap();
    }
    let requests = world.requests.lock().unwrap().clone();
    let returns: std::collections::HashSet<u128> = requests
        .iter()
        .filter(|t| !t.is_zero())
        .map(|t| t.as_millis())
        .collect();
    assert!(
        requests
            .iter()
            .filter(|t| !t.is_zero())
            .all(|t| *t >= secs(7))
    );
    assert!(requests.iter().all(|t| *t <= ms(8_400)));
    assert!(
        returns.len() > 80,
        "{} distinct milliseconds of 100",
        returns.len()
    );
}

#[tokio::test(start_paused = true)]
async fn the_wait_fits_inside_the_attempt_timeout() {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = waits.clone();
    let world = World::new(vec![secs(75)], Path::default());
    let r = LongPoll::new(move |req: Request<u64>| {
        w.lock().unwrap().push(req.wait());
        world.clone().watch(req)
    })
    .attempt_timeout(secs(10))
    .until(|n| *n == 1)
    .await;
    assert_eq!(r.unwrap(), 1, "a quiet resource never times out");
    assert!(waits.lock().unwrap().iter().all(|w| *w == ms(7_500)));
}

#[tokio::test(start_paused = true)]
async fn errors_keep_their_cause_and_every_failure_is_counted() {
    let stats = Stats::new();
    let r = ShortPoll::new(|| async { Err::<(), _>(ApiError::NotFound) })
        .timeout(secs(5))
        .stats(stats.clone())
        .until(|_| true)
        .await;
    match r {
        Err(e @ Error::Timeout { .. }) => {
            assert_eq!(e.last_error(), Some(&ApiError::NotFound));
            assert!(e.to_string().ends_with("the last request failed"), "{e}");
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            assert_eq!(cause.as_deref(), Some("404 not found"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stats.errors(), stats.requests());

    let stats = Stats::new();
    let r = ShortPoll::new(|| async { Err::<(), _>(ApiError::NotFound) })
        .retry_if(ApiError::is_transient)
        .stats(stats.clone())
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::NotFound))));
    assert_eq!(stats.errors(), 1, "the error that ends polling counts");
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_past_its_limits_ends_without_a_request() {
    let world = World::new(vec![], Path::default());
    let w = world.clone();
    let mut first = ShortPoll::new(move || w.clone().get()).max_attempts(2);
    first.next().await;
    first.next().await;
    let saved = first.checkpoint();
    let before = world.requests.lock().unwrap().len();
    let w = world.clone();
    let r = ShortPoll::new(move || w.clone().get())
        .max_attempts(2)
        .resume(saved)
        .until(|_| true)
        .await;
    assert!(
        matches!(r, Err(Error::Exhausted { attempts: 2, .. })),
        "{r:?}"
    );
    assert_eq!(world.requests.lock().unwrap().len(), before);
}

#[tokio::test(start_paused = true)]
async fn retry_better_after_zero_does_not_spin() {
    let builds = Arc::new(Mutex::new(0u32));
    let b = builds.clone();
    let watch = Fallback::new()
        .then("refused", move |_: Option<&u32>| {
            *b.lock().unwrap() += 1;
            ShortPoll::new(|| async { Err::<u32, _>("406") })
                .retry_if(|_| false)
                .boxed_poller()
        })
        .then("short", |last: Option<&u32>| {
            let mut n = last.copied().unwrap_or(0);
            ShortPoll::new(move || {
                n += 1;
                async move { Ok(n) }
            })
            .interval(secs(1))
            .boxed_poller()
        })
        .retry_better_after(Duration::ZERO);
    let start = Instant::now();
    let _ = watch.until(|n| *n == 10).await;
    let elapsed = start.elapsed();
    // At most one rebuild of the refused transport per second.
    assert!(
        *builds.lock().unwrap() as u64 <= elapsed.as_secs() + 1,
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_spreads_a_fleets_first_retry() {
    let firsts: Vec<Duration> = futures::future::join_all((0..50).map(|seed| async move {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let _ = ShortPoll::new(move || {
            l.lock().unwrap().push(Instant::now());
            async { Err::<(), _>(ApiError::Unavailable { retry_after: None }) }
        })
        .backoff(Backoff::new().jitter(Jitter::Decorrelated).max_retries(1))
        .seed(seed)
        .until(|_| true)
        .await;
        let t = log.lock().unwrap().clone();
        t[1] - t[0]
    }))
    .await;
    let distinct: std::collections::HashSet<_> = firsts.iter().collect();
    assert!(distinct.len() > 40);
    assert!(firsts.iter().all(|d| *d >= secs(1) && *d <= secs(3)));
}

#[tokio::test(start_paused = true)]
async fn on_retry_sees_only_retries_that_happen() {
    let seen = Arc::new(Mutex::new(0u32));
    let s = seen.clone();
    let r = ShortPoll::new(|| async { Err::<(), _>(ApiError::Unavailable { retry_after: None }) })
        .max_attempts(2)
        .on_retry(move |_| *s.lock().unwrap() += 1)
        .until(|_| true)
        .await;
    assert!(
        matches!(r, Err(Error::Exhausted { attempts: 2, .. })),
        "{r:?}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        1,
        "one retry between the two requests"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hinted_error_is_not_a_path_cut_and_classifiers_run_once() {
    // Two 503s with Retry-After: 60 that each take 2 s: the hint is honoured,
    // the wait is not lowered, and `retry_if` runs once per error.
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let stats = Stats::new();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let st = starts.clone();
    let start = Instant::now();
    let mut n = 0;
    let got = LongPoll::new(move |_req: Request<u64>| {
        n += 1;
        st.lock().unwrap().push(start.elapsed());
        let n = n;
        async move {
            tokio::time::sleep(secs(2)).await;
            if n <= 2 {
                Err(ApiError::Unavailable {
                    retry_after: Some(secs(60)),
                })
            } else {
                Ok(Reply::changed(1u64, 1u64))
            }
        }
    })
    .retry_if(move |e: &ApiError| {
        *c.lock().unwrap() += 1;
        e.is_transient()
    })
    .retry_after(ApiError::retry_after)
    .stats(stats.clone())
    .until(|_| true)
    .await;
    assert_eq!(got.unwrap(), 1);
    assert_eq!(stats.waits_lowered(), 0);
    assert_eq!(*calls.lock().unwrap(), 2, "once per error");
    let starts = starts.lock().unwrap().clone();
    assert!(
        starts[1] >= secs(62) && starts[2] - starts[1] >= secs(62),
        "{starts:?}"
    );
}

/// A cut that teaches the path's limit is forgiven, but it is still the last
/// error seen: a deadline that ends the wait before the next reply reports it.
#[tokio::test(start_paused = true)]
async fn the_cut_that_teaches_the_limit_is_the_last_error_at_the_deadline() {
    #[derive(Debug, PartialEq)]
    struct Cut(u32);
    impl std::fmt::Display for Cut {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "504 after 5 s (cut {})", self.0)
        }
    }
    impl std::error::Error for Cut {}

    let mut cuts = 0;
    let stats = Stats::new();
    let end = LongPoll::new(move |_: Request<u64>| {
        cuts += 1;
        let n = cuts;
        async move {
            // A proxy cuts the first two held requests at 5 s; the third,
            // with the lowered wait, hangs until the deadline's grace ends it.
            if n > 2 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(secs(5)).await;
            Err::<Reply<u64, u64>, _>(Cut(n))
        }
    })
    .stats(stats.clone())
    .timeout(secs(12))
    .until(|_| true)
    .await;
    assert_eq!(stats.waits_lowered(), 1, "the second cut taught the limit");
    match end {
        Err(Error::Timeout { last_error, .. }) => assert_eq!(last_error, Some(Cut(2))),
        other => panic!("expected the deadline, got {other:?}"),
    }
}
