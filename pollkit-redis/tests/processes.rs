//! Separate processes against one redis-server: this test binary runs
//! itself three times as fleet instances (`POLLKIT_REDIS_CHILD`), each with
//! a waiter on one key; the parent kills the lease holder with SIGKILL and
//! checks that another instance takes over within the lease time and that
//! every surviving waiter sees every change exactly once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pollkit_redis::{FleetHub, HubConfig};

use common::{RedisServer, change_log};

const LEASE: Duration = Duration::from_secs(1);
const CHILD: &str = "POLLKIT_REDIS_CHILD";

/// The instance: watches `job`, whose changes are counted in the Redis key
/// `job:head` (the "job server"), and prints each status it gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance() {
    let Ok(url) = std::env::var(CHILD) else {
        return; // run by the parent only
    };
    let client = redis::Client::open(url).unwrap();
    let hub: FleetHub<u64> = FleetHub::with_config(&client, "procs", HubConfig::new().lease(LEASE))
        .await
        .unwrap();
    // The job server's head, read every 10 ms.
    let head = Arc::new(AtomicU64::new(0));
    let mut conn = pollkit_redis::connect(&client).await.unwrap();
    let h = Arc::clone(&head);
    tokio::spawn(async move {
        loop {
            if let Ok(Some(n)) = redis::cmd("GET")
                .arg("job:head")
                .query_async::<Option<u64>>(&mut conn)
                .await
            {
                h.store(n, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let source = move || head.load(Ordering::SeqCst);
    let mut watch = hub.watch("job", move |resume| change_log(source.clone(), resume));
    println!("pollkit-child token {}", hub.token());
    while let Some(Ok(n)) = watch.next().await {
        println!("pollkit-child got {n}");
        let _ = std::io::stdout().flush();
    }
}

struct Instance {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn spawn(url: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "instance", "--nocapture", "--test-threads", "1"])
            .env(CHILD, url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // The harness may print "test instance ... " on the same line.
                if let Some(at) = line.find("pollkit-child ") {
                    l.lock()
                        .unwrap()
                        .push(line[at + "pollkit-child ".len()..].to_string());
                }
            }
        });
        Instance { child, lines }
    }

    fn token(&self) -> Option<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .find_map(|l| l.strip_prefix("token ").map(str::to_string))
    }

    fn got(&self) -> Vec<u64> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("got ").and_then(|n| n.parse().ok()))
            .collect()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

#[test]
fn killing_the_holder_hands_over_within_the_lease_time() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let server = RedisServer::start();
    let mut redis = server.client().get_connection().unwrap();
    let set_head = |redis: &mut redis::Connection, n: u64| {
        redis::cmd("SET")
            .arg("job:head")
            .arg(n)
            .query::<()>(redis)
            .unwrap();
    };
    set_head(&mut redis, 0);
    let mut instances: Vec<Instance> = (0..3).map(|_| Instance::spawn(&server.url())).collect();
    assert!(
        wait_for(Duration::from_secs(60), || instances
            .iter()
            .all(|i| i.token().is_some())),
        "the instances did not start"
    );
    let lease_key = "pollkit:hub:procs:lease:job";
    let holder = || {
        let mut redis = server.client().get_connection().unwrap();
        redis::cmd("GET")
            .arg(lease_key)
            .query::<Option<String>>(&mut redis)
            .unwrap()
    };
    assert!(wait_for(Duration::from_secs(10), || holder().is_some()));
    for n in 1..=10 {
        set_head(&mut redis, n);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(wait_for(Duration::from_secs(10), || instances
        .iter()
        .all(|i| i.got().last() == Some(&10))));

    // Kill the holder (SIGKILL: no goodbye, its lease must expire).
    let token = holder().unwrap();
    let at = instances
        .iter()
        .position(|i| i.token().as_deref() == Some(&token))
        .unwrap();
    let mut dead = instances.remove(at);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let killed = Instant::now();
    for n in 11..=20 {
        set_head(&mut redis, n);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        wait_for(Duration::from_secs(15), || instances
            .iter()
            .all(|i| i.got().last() == Some(&20))),
        "{:?}",
        instances.iter().map(Instance::got).collect::<Vec<_>>()
    );
    let new_holder = holder().unwrap();
    assert_ne!(new_holder, token);
    // The first status after the kill came within the lease time plus a
    // tick (lease / 5) plus a generous margin for a loaded machine.
    let took_over = killed.elapsed();
    eprintln!("every change seen by the survivors {took_over:?} after the kill");
    assert!(took_over < LEASE * 3, "{took_over:?}");
    for i in &instances {
        assert_eq!(
            i.got(),
            (1..=20).collect::<Vec<_>>(),
            "an instance's waiter"
        );
    }
}
