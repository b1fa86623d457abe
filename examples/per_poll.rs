//! Per-poll work, for counting instructions rather than timing them: runs
//! one of the loops of `benches/overhead.rs` for `n` polls on tokio's paused
//! clock and exits.
//!
//! Criterion's medians move with the machine; an instruction count does not.
//! Count a loop under cachegrind at `n` and `2n` polls and divide the
//! difference by `n`, so that start-up cancels out:
//!
//! ```sh
//! cargo build --release --example per_poll
//! for n in 100000 200000; do
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/release/examples/per_poll short_pollkit $n
//! done   # (I refs at 2n − I refs at n) / n
//! ```
//!
//! Loops: `short_pollkit` and `short_hand` (zero interval), `long_pollkit`,
//! `long_hand` and `long_hand_timeout` (every reply a change).

use std::future::{Ready, ready};
use std::io;
use std::time::Duration;

use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Jitter, LongPoll, ShortPoll};

/// LongPoll's per-request limit for a 30 s wait: wait + wait / 16 + 5 s.
const LONG_LIMIT: Duration = Duration::from_millis(30_000 + 30_000 / 16 + 5_000);

fn counter() -> impl FnMut() -> Ready<Result<u64, io::Error>> {
    let mut n = 0u64;
    move || {
        n += 1;
        ready(Ok(n))
    }
}

fn long_fetch(cursor: Option<u64>) -> Ready<Result<Reply<u64, u64>, io::Error>> {
    let next = cursor.unwrap_or(0) + 1;
    ready(Ok(Reply::changed(next, next)))
}

async fn short_pollkit(n: u64) -> u64 {
    let mut polls = ShortPoll::new(counter())
        .interval(Duration::ZERO)
        .take(n as usize);
    let mut sum = 0;
    while let Some(item) = polls.next().await {
        sum += item.unwrap_or(0);
    }
    sum
}

async fn short_hand(n: u64) -> u64 {
    let mut fetch = counter();
    let mut sum = 0;
    for i in 0..n {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        sum += fetch().await.unwrap_or(0);
    }
    sum
}

async fn long_pollkit(n: u64) -> u64 {
    let mut polls = LongPoll::new(|req: Request<u64>| long_fetch(req.cursor().copied()))
        .wait(Duration::from_secs(30))
        .rate_limit(u32::MAX, Duration::ZERO)
        .jitter(Jitter::None)
        .take(n as usize);
    let mut sum = 0;
    while let Some(item) = polls.next().await {
        sum += item.unwrap_or(0);
    }
    sum
}

async fn long_hand(n: u64, timeout: bool) -> u64 {
    let mut cursor = None;
    let mut sum = 0;
    for i in 0..n {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        let reply = if timeout {
            tokio::time::timeout(LONG_LIMIT, long_fetch(cursor))
                .await
                .unwrap_or(Ok(Reply::Unchanged))
        } else {
            long_fetch(cursor).await
        };
        if let Ok(Reply::Changed { status, cursor: c }) = reply {
            sum += status;
            cursor = Some(c);
        }
    }
    sum
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "short_pollkit".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        eprintln!("no runtime");
        std::process::exit(1);
    };
    let sum = rt.block_on(async move {
        match which.as_str() {
            "short_pollkit" => short_pollkit(n).await,
            "short_hand" => short_hand(n).await,
            "long_pollkit" => long_pollkit(n).await,
            "long_hand" => long_hand(n, false).await,
            "long_hand_timeout" => long_hand(n, true).await,
            other => {
                eprintln!("unknown loop {other}");
                std::process::exit(2);
            }
        }
    });
    std::hint::black_box(sum);
}
