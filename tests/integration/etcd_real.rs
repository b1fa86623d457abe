//! `long_index` with `IndexQuery::etcd_v2()` against a real etcd (3.4, v2
//! API enabled), which each test starts on free loopback ports and stops.
//!
//! Ignored by default (it needs the `etcd` binary: Debian's `etcd-server`);
//! `.ci/run` installs it and runs them:
//! `cargo test --all-features --test etcd_real -- --ignored`.
#![cfg(feature = "reqwest")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use pollkit::Stats;
use pollkit::reqwest::{IndexQuery, long_index};
use serde::Deserialize;

/// An etcd child process with a data directory of its own, killed and
/// removed on drop.
struct Etcd {
    base: String,
    child: Child,
    dir: PathBuf,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("an address").port()
}

impl Etcd {
    async fn start() -> Self {
        let (client, peer) = (free_port(), free_port());
        let dir =
            std::env::temp_dir().join(format!("pollkit-etcd-{}-{client}", std::process::id()));
        let (client_url, peer_url) = (
            format!("http://127.0.0.1:{client}"),
            format!("http://127.0.0.1:{peer}"),
        );
        let child = Command::new("etcd")
            .args(["--name", "pollkit", "--enable-v2=true"])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("pollkit={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start etcd ({e}): install it with `apt-get install etcd-server`")
            });
        let etcd = Etcd {
            base: client_url,
            child,
            dir,
        };
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            let health = http.get(format!("{}/v2/keys/", etcd.base)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return etcd;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "etcd did not answer within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}/v2/keys/{name}", self.base)
    }

    async fn put(&self, name: &str, value: &str) {
        let response = reqwest::Client::new()
            .put(self.key(name))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("value={value}"))
            .send()
            .await
            .expect("etcd answers a PUT");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, Deserialize)]
struct Node {
    #[serde(rename = "modifiedIndex")]
    modified_index: u64,
    value: String,
}

#[derive(Debug, Deserialize)]
struct Event {
    node: Node,
}

fn next_index(_: &reqwest::header::HeaderMap, e: &Event) -> Option<u64> {
    Some(e.node.modified_index + 1)
}

#[tokio::test]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it and runs it"]
async fn a_quiet_etcd_key_is_read_at_once_and_watched_without_errors() {
    let etcd = Etcd::start().await;
    etcd.put("job", "queued").await;
    let stats = Stats::new();
    let mut watch = long_index(
        reqwest::Client::new().get(etcd.key("job")),
        IndexQuery::etcd_v2(),
        next_index,
    )
    .wait(Duration::from_secs(1))
    .stats(stats.clone());
    // The first read answers at once with the current value (a `wait=true`
    // without `waitIndex` would be held until the next change).
    let first = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert_eq!(
        first.expect("at once").unwrap().unwrap().node.value,
        "queued"
    );
    // Quiet: each held request reaches the wait and is "unchanged".
    let quiet = tokio::time::timeout(Duration::from_millis(3500), watch.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
    assert_eq!(stats.errors(), 0);
    assert!(stats.requests() >= 4, "{}", stats.requests());
    // A change is seen within a round trip.
    etcd.put("job", "done").await;
    let next = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert_eq!(
        next.expect("the change").unwrap().unwrap().node.value,
        "done"
    );
}

#[tokio::test]
#[ignore = "needs etcd (Debian's etcd-server); .ci/run installs it and runs it"]
async fn an_index_etcd_has_cleared_relists_and_goes_on() {
    let etcd = Etcd::start().await;
    etcd.put("job", "v0").await;
    // etcd keeps the last 1,000 events: push index 2 out of its history.
    for n in 0..1010 {
        etcd.put("noise", &n.to_string()).await;
    }
    etcd.put("job", "latest").await;
    let stats = Stats::new();
    let mut watch = long_index(
        reqwest::Client::new().get(etcd.key("job")),
        IndexQuery::etcd_v2(),
        next_index,
    )
    .cursor(2)
    .wait(Duration::from_secs(1))
    .stats(stats.clone());
    // `waitIndex=2` answers 400 with errorCode 401; the poller reads the
    // current state instead of ending.
    let first = tokio::time::timeout(Duration::from_secs(3), watch.next()).await;
    assert_eq!(
        first.expect("a relist").unwrap().unwrap().node.value,
        "latest"
    );
    assert_eq!(stats.errors(), 0);
    let quiet = tokio::time::timeout(Duration::from_millis(1500), watch.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}
