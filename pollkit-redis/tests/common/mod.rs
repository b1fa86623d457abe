//! A throwaway `redis-server` for the tests: started from PATH on a free
//! loopback port, without persistence (a snapshot only when a test asks for
//! one, in a directory of its own), killed on drop.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server child process on 127.0.0.1.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    ///
    /// # Panics
    /// When `redis-server` is not on PATH (with how to install it) or does
    /// not answer within 10 s.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("no free loopback port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("pollkit-redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the server");
        let mut server = RedisServer {
            port,
            child: None,
            dir,
        };
        server.restart();
        server
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A client for it.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid url")
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Writes a snapshot of the data (`SAVE`): the next
    /// [`restart`](Self::restart) loads it.
    pub fn save(&self) {
        let client = self.client();
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("a connection to save");
        redis::cmd("SAVE")
            .query::<()>(&mut conn)
            .expect("SAVE succeeds");
    }

    /// Deletes the snapshot, if any: the next restart starts empty.
    pub fn forget(&self) {
        let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop)),
    /// empty unless [`save`](Self::save) left a snapshot.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => panic!(
                "cannot start redis-server ({e}): the pollkit-redis tests need it on PATH; \
                 install it with `apt-get install redis-server` (Debian/Ubuntu) or \
                 `brew install redis` (macOS)"
            ),
        };
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.ping() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut conn).is_ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The largest number of instants in any window of `width` (sorted input).
pub fn busiest(sorted: &[tokio::time::Instant], width: Duration) -> usize {
    busiest_at(sorted, width).0
}

/// The largest number of instants in any window of `width` (sorted input),
/// and the index of the window's first instant.
pub fn busiest_at(sorted: &[tokio::time::Instant], width: Duration) -> (usize, usize) {
    let mut best = (0, 0);
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi].duration_since(sorted[lo]) >= width {
            lo += 1;
        }
        if hi - lo + 1 > best.0 {
            best = (hi - lo + 1, lo);
        }
    }
    best
}

/// A change log's watch: a long poll whose status is the number of the next
/// change after its cursor (one change per reply, so a poller that falls
/// behind catches up change by change, and none is skipped). `head` says how
/// many changes there are; the request holds up to its wait (200 ms).
pub fn change_log<H>(
    head: H,
    resume: pollkit_redis::Resume<u64, u64>,
) -> impl pollkit::Poller<Status = u64, Error = std::io::Error>
+ pollkit_redis::Checkpointed<Cursor = u64>
+ Send
+ 'static
where
    H: Fn() -> u64 + Clone + Send + Sync + 'static,
{
    use pollkit::long::{Reply, Request};
    let poller = pollkit::LongPoll::new(move |req: Request<u64>| {
        let head = head.clone();
        let after = req.cursor().copied().unwrap_or(0);
        let wait = req.wait();
        async move {
            let until = tokio::time::Instant::now() + wait;
            loop {
                if head() > after {
                    return Ok(Reply::changed(after + 1, after + 1));
                }
                if tokio::time::Instant::now() >= until {
                    return Ok(Reply::unchanged());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .wait(Duration::from_millis(200));
    match resume.checkpoint {
        Some(checkpoint) => poller.resume(checkpoint),
        None => poller,
    }
}
