//! A nemesis, as Jepsen runs against databases: several instance processes
//! (this test binary run again as children) share one redis-server, a
//! `FleetHub` of 6 keys and a `FleetBudget` (which one more poller per
//! instance keeps spent); an upstream in the parent counts changes per key
//! and logs every request; each key is watched from now (a poller without
//! a checkpoint starts at the current change, logged as a fresh start), so
//! a status is not its place in the hub's sequence. A seeded nemesis
//! SIGKILLs and restarts instances, SIGSTOPs them past their lease and
//! resumes them, kills Redis and restarts it (empty, or from a snapshot that
//! misses the last 0.3–2 s of writes) and `DEL`s keys (a lease, a stream,
//! the budget). Then a checker reads every waiter's history and the request
//! log:
//!
//! - per key and waiter, statuses are in order, none twice, none older than
//!   one it got; none is missing unless a watch started afresh at the next,
//!   or Redis lost that key's data (a restart, a `DEL` of its stream) near
//!   the time every missing change was made;
//! - a watch starts afresh only at the start, in a new process, or after a
//!   loss of its key's data;
//! - no watch ends (an error or the end is a problem, not a finish);
//! - in every 1 s window the upstream's requests stay within the budget's
//!   documented bound (`rate × (1 s + late) + burst`, plus, around Redis
//!   returning, one local burst per instance and the other instances' local
//!   shares for up to `retry_every`; plus a measured allowance for a loaded
//!   machine), across every fault;
//! - every waiter alive at the end completes (gets the last change) within
//!   a bound: no hang.
//!
//! CI runs 60 s with seed 1. Long mode: `POLLKIT_NEMESIS_SECS=600`
//! (and `POLLKIT_NEMESIS_SEED=n`).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use pollkit::LongPoll;
use pollkit::long::{Reply, Request};
use pollkit_redis::{FleetBudget, FleetHub, HubConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep};

use common::{RedisServer, busiest_at};

const CHILD: &str = "POLLKIT_NEMESIS_CHILD";
const INSTANCES: usize = 3;
const KEYS: usize = 6;
const LEASE: Duration = Duration::from_secs(1);
/// The fleet's budget for the upstream.
const RATE: u32 = 15;
const BURST: u32 = 3;
const LATE: Duration = Duration::from_millis(50);
/// While degraded, how often an instance asks Redis again.
const RETRY_EVERY: Duration = Duration::from_millis(300);
/// Every key changes this often.
const CHANGE_EVERY: Duration = Duration::from_millis(1_000);

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One request to the upstream: the head of `key` (its number of changes);
/// `from_now` marks the first request of a watch that starts afresh (no
/// checkpoint to resume from), which the upstream logs.
async fn ask(upstream: &str, key: &str, from_now: bool) -> std::io::Result<u64> {
    let mut conn = TcpStream::connect(upstream).await?;
    let mark = if from_now { " now" } else { "" };
    conn.write_all(format!("{key}{mark}\n").as_bytes()).await?;
    let mut line = String::new();
    AsyncBufReader::new(conn).read_line(&mut line).await?;
    line.trim()
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// An instance: watches every key through the fleet hub, its pollers
/// admitted by the fleet budget, and prints what each waiter gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis_instance() {
    let Ok(spec) = std::env::var(CHILD) else {
        return; // run by the parent only
    };
    let mut parts = spec.split(' ');
    let (url, upstream, last) = match (parts.next(), parts.next(), parts.next()) {
        (Some(url), Some(upstream), Some(last)) => (
            url.to_string(),
            upstream.to_string(),
            last.parse::<u64>().unwrap(),
        ),
        _ => panic!("bad {CHILD}: {spec}"),
    };
    let client = redis::Client::open(url).unwrap();
    let config = HubConfig::new()
        .lease(LEASE)
        .timeout(Duration::from_millis(300));
    let hub: FleetHub<u64> = FleetHub::with_config(&client, "nemesis", config)
        .await
        .unwrap();
    let budget = FleetBudget::per_second(
        pollkit_redis::connect(&client).await.unwrap(),
        "nemesis:budget",
        RATE,
    )
    .burst(BURST)
    .instances(INSTANCES as u32)
    .late(LATE)
    .retry_every(RETRY_EVERY);
    // Load: one poller that asks as fast as the budget lets it, so that
    // the budget is spent all the time and the hub's pollers queue for it.
    let load = {
        let (upstream, budget) = (upstream.clone(), budget.clone());
        let mut poller = pollkit::ShortPoll::new(move || {
            let upstream = upstream.clone();
            async move { ask(&upstream, "load", false).await }
        })
        .interval(Duration::ZERO)
        .admission(budget);
        tokio::spawn(async move { while poller.next().await.is_some() {} })
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for key in 0..KEYS {
        let key = format!("k{key}");
        let (upstream, budget) = (upstream.clone(), budget.clone());
        let k = key.clone();
        let mut watch = hub.watch(key.clone(), move |resume| {
            let (upstream, k) = (upstream.clone(), k.clone());
            // A change feed watched from now: without a checkpoint the
            // first status is the current head (not the first change), then
            // change by change. So a status is not its place in the hub's
            // sequence, and a holder that starts afresh (Redis lost the
            // key's stream) starts that sequence over at another status.
            let poller = LongPoll::new(move |req: Request<u64>| {
                let (upstream, k) = (upstream.clone(), k.clone());
                let after = req.cursor().copied();
                async move {
                    let head = ask(&upstream, &k, after.is_none()).await?;
                    Ok::<_, std::io::Error>(match after {
                        None => Reply::changed(head, head),
                        Some(after) if head > after => Reply::changed(after + 1, after + 1),
                        Some(_) => Reply::unchanged(),
                    })
                }
            })
            .admission(budget.clone());
            match resume.checkpoint {
                Some(checkpoint) => poller.resume(checkpoint),
                None => poller,
            }
        });
        let out = Arc::clone(&out);
        tasks.push(tokio::spawn(async move {
            loop {
                let line = match watch.next().await {
                    Some(Ok(n)) => format!("got {key} {n} {}", wall_ms()),
                    Some(Err(e)) => format!("err {key} {e}"),
                    None => format!("end {key}"),
                };
                let done =
                    !line.starts_with("got") || line.split(' ').nth(2) == Some(&last.to_string());
                let mut out = out.lock().unwrap();
                let _ = writeln!(out, "pollkit-nemesis {line}");
                let _ = out.flush();
                if done {
                    if line.starts_with("got") {
                        let _ = writeln!(out, "pollkit-nemesis done {key}");
                        let _ = out.flush();
                    }
                    return;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    load.abort();
    // Keep the process (and its share of the fleet) up until killed.
    sleep(Duration::from_secs(3600)).await;
}

/// A small deterministic generator (xorshift64*), for the nemesis's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

/// One run of an instance process, and what its waiters printed.
struct Incarnation {
    slot: usize,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    killed: bool,
}

impl Incarnation {
    fn spawn(slot: usize, spec: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "nemesis_instance",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(at) = line.find("pollkit-nemesis ") {
                    l.lock()
                        .unwrap()
                        .push(line[at + "pollkit-nemesis ".len()..].to_string());
                }
            }
        });
        Incarnation {
            slot,
            child,
            lines,
            killed: false,
        }
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }

    fn kill(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.killed = true;
    }

    /// Per key: (status, wall ms) in the order the waiter got them.
    fn histories(&self) -> HashMap<String, Vec<(u64, u64)>> {
        let mut out: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for line in self.lines.lock().unwrap().iter() {
            let f: Vec<&str> = line.split(' ').collect();
            if let ["got", key, n, ms] = f[..] {
                out.entry(key.to_string())
                    .or_default()
                    .push((n.parse().unwrap(), ms.parse().unwrap()));
            }
        }
        out
    }

    /// Watches that got the last change.
    fn finished(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.starts_with("done ")).count()
    }

    /// Watches that ended (an error or the end): none should.
    fn ended(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.starts_with("err ") || l.starts_with("end "))
            .cloned()
            .collect()
    }
}

impl Drop for Incarnation {
    fn drop(&mut self) {
        if !self.killed {
            self.kill();
        }
    }
}

/// What the nemesis did, and when (wall ms: from `at_ms` to `back_ms`,
/// when Redis or the instance was back), for the checker.
struct Fault {
    at_ms: u64,
    back_ms: u64,
    what: String,
    /// Redis lost data: history may have a hole here.
    lossy: bool,
    /// The key it hit; `None` for all of them (Redis, an instance).
    key: Option<String>,
    /// An instance started (a new process has no checkpoint to resume
    /// from while it cannot read Redis).
    spawned: bool,
}

impl Fault {
    fn hits(&self, key: &str) -> bool {
        self.key.as_deref().is_none_or(|k| k == key)
    }

    /// Whether Redis may have lost `key`'s status of a change made at
    /// `change_ms`: one published up to a lagging reader's delay (a paused
    /// process, the budget's queue) before the loss, or not yet read again
    /// by then, up to a takeover after Redis is back.
    fn lost(&self, key: &str, change_ms: u64) -> bool {
        self.lossy
            && self.hits(key)
            && change_ms + LAG_MS >= self.at_ms
            && change_ms <= self.back_ms + TAKEOVER_MS
    }
}

/// How long before a loss a change may have been made and not yet read by
/// a waiter (a SIGSTOP of up to 3.5 s, the budget's queue).
const LAG_MS: u64 = 6_000;
/// How long after Redis is back a change may be made and still be missed
/// (the lease, a tick, the new holder's first poll).
const TAKEOVER_MS: u64 = 4_000;

/// The upstream: every key's head grows by one every `CHANGE_EVERY` up to
/// `last`; each request is logged, and each watch that starts afresh (its
/// key, the head it got, wall ms).
struct Upstream {
    addr: String,
    log: Arc<Mutex<Vec<Instant>>>,
    fresh: Arc<Mutex<Vec<(String, u64, u64)>>>,
}

async fn upstream(start: Instant, last: u64) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let fresh: Arc<Mutex<Vec<(String, u64, u64)>>> = Arc::default();
    let (l, f) = (Arc::clone(&log), Arc::clone(&fresh));
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (l, f) = (Arc::clone(&l), Arc::clone(&f));
            tokio::spawn(async move {
                let (read, mut write) = conn.into_split();
                let mut line = String::new();
                if AsyncBufReader::new(read)
                    .read_line(&mut line)
                    .await
                    .is_err()
                {
                    return;
                }
                l.lock().unwrap().push(Instant::now());
                let head = (start.elapsed().as_millis() / CHANGE_EVERY.as_millis()) as u64;
                let head = head.min(last);
                if let Some(key) = line.trim().strip_suffix(" now") {
                    f.lock().unwrap().push((key.to_string(), head, wall_ms()));
                }
                let _ = write.write_all(format!("{head}\n").as_bytes()).await;
            });
        }
    });
    Upstream { addr, log, fresh }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nemesis() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let secs: u64 = std::env::var("POLLKIT_NEMESIS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("POLLKIT_NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let run = Duration::from_secs(secs);
    let last = (run.as_millis() / CHANGE_EVERY.as_millis()) as u64;

    let server = Arc::new(Mutex::new(RedisServer::start()));
    let url = server.lock().unwrap().url();
    let start = Instant::now();
    let start_ms = wall_ms();
    let up = upstream(start, last).await;
    let spec = format!("{url} {} {last}", up.addr);
    let mut live: Vec<Incarnation> = (0..INSTANCES)
        .map(|i| Incarnation::spawn(i, &spec))
        .collect();
    let mut gone: Vec<Incarnation> = Vec::new();
    let mut faults: Vec<Fault> = Vec::new();
    // Let the fleet settle before the first fault.
    sleep(Duration::from_secs(3)).await;

    let redis = |f: fn(&mut RedisServer)| {
        let server = Arc::clone(&server);
        tokio::task::spawn_blocking(move || f(&mut server.lock().unwrap()))
    };
    while start.elapsed() + Duration::from_secs(5) < run {
        let mut fault = |what: String, lossy: bool, key: Option<String>| {
            eprintln!("{:>6.1}s nemesis: {what}", start.elapsed().as_secs_f64());
            faults.push(Fault {
                at_ms: wall_ms(),
                back_ms: wall_ms(),
                spawned: what.starts_with("SIGKILL"),
                what,
                lossy,
                key,
            });
        };
        match rng.below(6) {
            0 => {
                let i = rng.below(live.len() as u64) as usize;
                fault(format!("SIGKILL instance {}", live[i].slot), false, None);
                let mut dead = live.remove(i);
                dead.kill();
                sleep(rng.millis(300, 2_000)).await;
                live.push(Incarnation::spawn(dead.slot, &spec));
                gone.push(dead);
            }
            1 => {
                let i = rng.below(live.len() as u64) as usize;
                let pause = rng.millis(1_500, 3_500);
                fault(
                    format!("SIGSTOP instance {} for {pause:?}", live[i].slot),
                    false,
                    None,
                );
                live[i].signal("-STOP");
                sleep(pause).await;
                live[i].signal("-CONT");
            }
            2 => {
                let down = rng.millis(300, 2_000);
                fault(
                    format!("Redis killed, restarted empty after {down:?}"),
                    true,
                    None,
                );
                redis(|s| {
                    s.forget();
                    s.stop();
                })
                .await
                .unwrap();
                sleep(down).await;
                redis(RedisServer::restart).await.unwrap();
            }
            3 => {
                let down = rng.millis(300, 2_000);
                fault(
                    format!("Redis snapshot, killed, restarted from it after {down:?}"),
                    true,
                    None,
                );
                // The writes the snapshot misses: several statuses of each
                // key, which every waiter may have got.
                let missed = rng.millis(300, 2_000);
                tokio::task::spawn_blocking({
                    let server = Arc::clone(&server);
                    move || {
                        let mut s = server.lock().unwrap();
                        s.save();
                        std::thread::sleep(missed);
                        s.stop();
                    }
                })
                .await
                .unwrap();
                sleep(down).await;
                redis(|s| {
                    s.restart();
                    s.forget();
                })
                .await
                .unwrap();
            }
            _ => {
                let key = format!("k{}", rng.below(KEYS as u64));
                let (target, lossy) = match rng.below(3) {
                    0 => (format!("pollkit:hub:nemesis:lease:{key}"), false),
                    1 => (format!("pollkit:hub:nemesis:stream:{key}"), true),
                    _ => ("nemesis:budget".to_string(), false),
                };
                fault(format!("DEL {target}"), lossy, Some(key));
                let url = url.clone();
                tokio::task::spawn_blocking(move || {
                    let client = redis::Client::open(url).unwrap();
                    if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1))
                    {
                        let _ = redis::cmd("DEL").arg(&target).query::<i64>(&mut conn);
                    }
                })
                .await
                .unwrap();
            }
        }
        if let Some(f) = faults.last_mut() {
            f.back_ms = wall_ms();
        }
        sleep(rng.millis(1_000, 3_000)).await;
    }
    // The changes end at `last`: every waiter alive must get there.
    let faults_ended = Instant::now();
    let bound = run.saturating_sub(start.elapsed()) + Duration::from_secs(30);
    while live.iter().any(|i| i.finished() + i.ended().len() < KEYS)
        && faults_ended.elapsed() < bound
    {
        sleep(Duration::from_millis(200)).await;
    }
    let took = faults_ended.elapsed();
    for i in &mut live {
        i.kill();
    }

    // The checker.
    let mut problems = Vec::new();
    let fresh = up.fresh.lock().unwrap().clone();
    // When a change was made upstream (wall ms).
    let change_ms = |c: u64| start_ms + c * CHANGE_EVERY.as_millis() as u64;
    let mut delivered = 0;
    let mut holes = 0;
    for (n, inc) in live.iter().chain(&gone).enumerate() {
        for (key, history) in inc.histories() {
            delivered += history.len();
            for (i, pair) in history.windows(2).enumerate() {
                let ((a, _), (b, bt)) = (pair[0], pair[1]);
                if b <= a {
                    // With the statuses around it and when they came (ms
                    // from the start), to line them up with the faults.
                    let around: Vec<String> = history
                        [i.saturating_sub(4)..(i + 6).min(history.len())]
                        .iter()
                        .map(|(s, ms)| format!("{s}@{}", ms.saturating_sub(start_ms)))
                        .collect();
                    problems.push(format!(
                        "incarnation {n} (instance {}) {key}: {b} after {a} ({})",
                        inc.slot,
                        around.join(" ")
                    ));
                } else if b > a + 1 {
                    // A hole: only where a watch started afresh at `b` (it
                    // had no checkpoint), or where Redis lost this key's
                    // statuses of every change missing.
                    let started_at_b = fresh
                        .iter()
                        .any(|(k, head, ms)| *k == key && *head == b && *ms <= bt);
                    let lost = (a + 1..b).all(|c| {
                        faults
                            .iter()
                            .any(|f| f.lost(&key, change_ms(c)) && f.at_ms <= bt)
                    });
                    holes += 1;
                    if !started_at_b && !lost {
                        problems.push(format!(
                            "incarnation {n} (instance {}) {key}: {a} then {b} with no data lost",
                            inc.slot
                        ));
                    }
                }
            }
        }
    }
    // A watch starts afresh (from the head, skipping what came before) only
    // without a checkpoint: at the start, in a new process, or after Redis
    // lost the key's stream.
    for (key, head, ms) in &fresh {
        let settled = *ms > start_ms + 3_000;
        let excused = faults.iter().any(|f| {
            (f.spawned || (f.lossy && f.hits(key))) && f.at_ms <= *ms && *ms <= f.back_ms + 10_000
        });
        if settled && !excused {
            problems.push(format!(
                "{key} started afresh at {head} ({:.1} s) with its checkpoint kept",
                (ms - start_ms) as f64 / 1_000.0
            ));
        }
    }
    for inc in &live {
        if inc.finished() < KEYS {
            problems.push(format!(
                "instance {}: {} of {KEYS} watches finished {took:?} after the faults",
                inc.slot,
                inc.finished()
            ));
        }
    }
    for inc in live.iter().chain(&gone) {
        for line in inc.ended() {
            problems.push(format!("instance {}: a watch ended: {line}", inc.slot));
        }
    }
    let mut starts = up.log.lock().unwrap().clone();
    starts.sort();
    let (busiest, at) = busiest_at(&starts, Duration::from_secs(1));
    // The documented bound, plus an allowance for a loaded 2-core machine
    // (requests are timed where they arrive, after the client's lateness).
    // FleetBudget's docs: rate × (1 s + late) + burst, and around Redis
    // returning, one local burst per instance and the other instances' local
    // shares for up to `retry_every`.
    let n = INSTANCES as f64;
    let documented = f64::from(RATE) * (1.0 + LATE.as_secs_f64())
        + f64::from(BURST)
        + n
        + (n - 1.0) / n * f64::from(RATE) * RETRY_EVERY.as_secs_f64();
    let allowance = f64::from(RATE) * 0.2;
    eprintln!(
        "seed {seed}, {secs} s: {} faults, {} incarnations, {delivered} statuses delivered, \
         {holes} holes (all where Redis lost data unless listed), {} fresh starts, {} requests, \
         busiest 1 s window \
         {busiest} at {:.1} s (documented bound {documented:.0}, allowed {:.0}), all watches \
         finished {took:?} after the faults",
        faults.len(),
        live.len() + gone.len(),
        fresh.len(),
        starts.len(),
        starts
            .get(at)
            .map_or(0.0, |t| t.duration_since(start).as_secs_f64()),
        documented + allowance,
    );
    for f in &faults {
        eprintln!(
            "fault at {} ms (+{} ms from the start, back at +{}): {}",
            f.at_ms,
            f.at_ms.saturating_sub(start_ms),
            f.back_ms.saturating_sub(start_ms),
            f.what
        );
    }
    if busiest as f64 > documented + allowance {
        problems.push(format!("busiest 1 s window: {busiest} requests"));
    }
    assert!(
        problems.is_empty(),
        "{} problems (faults above):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
