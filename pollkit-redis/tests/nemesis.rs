//! A nemesis, as Jepsen runs against databases: several instance processes
//! (this test binary run again as children) share one redis-server, a
//! `FleetHub` of 6 keys and a `FleetBudget` (which one more poller per
//! instance keeps spent); an upstream in the parent counts changes per key
//! and logs every request. A seeded nemesis
//! SIGKILLs and restarts instances, SIGSTOPs them past their lease and
//! resumes them, kills Redis and restarts it (empty, or from a snapshot that
//! misses the last writes) and `DEL`s keys (a lease, a stream, the budget).
//! Then a checker reads every waiter's history and the request log:
//!
//! - per key and waiter, statuses are in order, none twice, none older than
//!   one it got; none is missing unless Redis lost data (a restart, a
//!   `DEL`ed stream) between the two it got;
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

/// One request to the upstream: the head of `key` (its number of changes).
async fn ask(upstream: &str, key: &str) -> std::io::Result<u64> {
    let mut conn = TcpStream::connect(upstream).await?;
    conn.write_all(format!("{key}\n").as_bytes()).await?;
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
            async move { ask(&upstream, "load").await }
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
            let poller = LongPoll::new(move |req: Request<u64>| {
                let (upstream, k) = (upstream.clone(), k.clone());
                let after = req.cursor().copied().unwrap_or(0);
                async move {
                    let head = ask(&upstream, &k).await?;
                    Ok::<_, std::io::Error>(if head > after {
                        Reply::changed(after + 1, after + 1)
                    } else {
                        Reply::unchanged()
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

    fn finished(&self) -> usize {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.starts_with("done ") || l.starts_with("err ") || l.starts_with("end "))
            .count()
    }
}

impl Drop for Incarnation {
    fn drop(&mut self) {
        if !self.killed {
            self.kill();
        }
    }
}

/// What the nemesis did, and when (wall ms), for the checker.
struct Fault {
    at_ms: u64,
    what: String,
    /// Redis lost data: history may have a hole here.
    lossy: bool,
}

/// The upstream: every key's head grows by one every `CHANGE_EVERY` up to
/// `last`; each request is logged.
struct Upstream {
    addr: String,
    log: Arc<Mutex<Vec<Instant>>>,
}

async fn upstream(start: Instant, last: u64) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let l = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let l = Arc::clone(&l);
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
                let _ = write
                    .write_all(format!("{}\n", head.min(last)).as_bytes())
                    .await;
            });
        }
    });
    Upstream { addr, log }
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
        let mut fault = |what: String, lossy: bool| {
            eprintln!("{:>6.1}s nemesis: {what}", start.elapsed().as_secs_f64());
            faults.push(Fault {
                at_ms: wall_ms(),
                what,
                lossy,
            });
        };
        match rng.below(6) {
            0 => {
                let i = rng.below(live.len() as u64) as usize;
                fault(format!("SIGKILL instance {}", live[i].slot), false);
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
                );
                redis(|s| {
                    s.save();
                    std::thread::sleep(Duration::from_millis(300)); // writes the snapshot misses
                    s.stop();
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
                fault(format!("DEL {target}"), lossy);
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
        sleep(rng.millis(1_000, 3_000)).await;
    }
    // The changes end at `last`: every waiter alive must get there.
    let faults_ended = Instant::now();
    let bound = run.saturating_sub(start.elapsed()) + Duration::from_secs(30);
    while live.iter().any(|i| i.finished() < KEYS) && faults_ended.elapsed() < bound {
        sleep(Duration::from_millis(200)).await;
    }
    let took = faults_ended.elapsed();
    for i in &mut live {
        i.kill();
    }

    // The checker.
    let mut problems = Vec::new();
    let lossy: Vec<u64> = faults.iter().filter(|f| f.lossy).map(|f| f.at_ms).collect();
    let mut delivered = 0;
    let mut holes = 0;
    for (n, inc) in live.iter().chain(&gone).enumerate() {
        for (key, history) in inc.histories() {
            delivered += history.len();
            for pair in history.windows(2) {
                let ((a, at), (b, bt)) = (pair[0], pair[1]);
                if b <= a {
                    problems.push(format!(
                        "incarnation {n} (instance {}) {key}: {b} after {a}",
                        inc.slot
                    ));
                } else if b > a + 1 {
                    // A hole: only where Redis lost data between the two.
                    let explained = lossy.iter().any(|&f| f + 5_000 >= at && f <= bt);
                    holes += 1;
                    if !explained {
                        problems.push(format!(
                            "incarnation {n} (instance {}) {key}: {a} then {b} with no data lost",
                            inc.slot
                        ));
                    }
                }
            }
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
        for line in inc.lines.lock().unwrap().iter() {
            if line.starts_with("err ") || line.starts_with("end ") {
                eprintln!("instance {}: {line}", inc.slot);
            }
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
         {holes} holes (all where Redis lost data unless listed), {} requests, busiest 1 s window \
         {busiest} at {:.1} s (documented bound {documented:.0}, allowed {:.0}), all watches \
         finished {took:?} after the faults",
        faults.len(),
        live.len() + gone.len(),
        starts.len(),
        starts
            .get(at)
            .map_or(0.0, |t| t.duration_since(start).as_secs_f64()),
        documented + allowance,
    );
    for f in &faults {
        eprintln!("fault at {} ms: {}", f.at_ms, f.what);
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
