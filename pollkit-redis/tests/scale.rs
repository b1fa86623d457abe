//! Reading costs Redis what an instance's changes cost, not what its number
//! of keys costs: one busy key among 2,000 quiet ones, against a real
//! redis-server, measured with Redis's own command statistics.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use pollkit::ShortPoll;
use pollkit_redis::{FleetHub, HubConfig, Stateless};
use tokio::time::{Instant, sleep, timeout};

use common::{RedisServer, change_log};

const QUIET: usize = 2_000;
const CHANGES: u64 = 50;

/// Microseconds Redis spent per command name since the last reset
/// (`INFO commandstats`).
async fn usec_by_command(conn: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let mut out = HashMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let usec = rest
            .split(',')
            .find_map(|f| f.strip_prefix("usec="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.insert(name.to_string(), usec);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_change_costs_redis_the_same_with_thousands_of_quiet_keys() {
    let server = RedisServer::start();
    let config = HubConfig::new().lease(Duration::from_secs(5));
    let hub: FleetHub<u64> = FleetHub::with_config(&server.client(), "scale", config)
        .await
        .unwrap();
    // Quiet keys: one status each, then nothing for an hour.
    let mut quiet = Vec::new();
    for key in 0..QUIET {
        quiet.push(hub.watch(format!("quiet-{key}"), |_| {
            Stateless::new(
                ShortPoll::new(|| async { Ok::<_, std::io::Error>(0) })
                    .interval(Duration::from_secs(3600)),
            )
        }));
    }
    let head = Arc::new(AtomicU64::new(0));
    let source = {
        let head = Arc::clone(&head);
        move || head.load(Ordering::SeqCst)
    };
    let mut busy = hub.watch("busy", move |resume| change_log(source.clone(), resume));
    let settle = Instant::now() + Duration::from_secs(30);
    while hub.stats().holding < QUIET + 1 || hub.stats().published < QUIET as u64 {
        assert!(Instant::now() < settle, "{:?}", hub.stats());
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_millis(500)).await;
    let mut conn = server
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    for n in 1..=CHANGES {
        head.store(n, Ordering::SeqCst);
        loop {
            let got = timeout(Duration::from_secs(10), busy.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if got == n {
                break;
            }
        }
        sleep(Duration::from_millis(10)).await;
    }
    let usec = usec_by_command(&mut conn).await;
    let reading: u64 = ["xread", "xrange", "xrevrange"]
        .iter()
        .filter_map(|c| usec.get(*c))
        .sum();
    let per_change = reading / CHANGES;
    eprintln!(
        "reading with {QUIET} quiet keys: {per_change} µs of Redis time per change ({usec:?})"
    );
    // One XREAD over every key costs Redis O(keys): several ms at 2,000.
    assert!(per_change < 200, "{per_change} µs per change");
    drop(quiet);
}
