//! Per-poll work, for counting instructions rather than timing them: runs
//! one of the loops of `benches/overhead.rs` (the same code,
//! `benches/common/loops.rs`) for `n` polls on tokio's paused clock and exits.
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

// The very loops the overhead benchmark times.
#[path = "../benches/common/loops.rs"]
#[allow(dead_code)]
mod loops;

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
            "short_pollkit" => loops::short_pollkit(std::time::Duration::ZERO, n).await,
            "short_hand" => loops::short_hand_yield(n).await,
            "long_pollkit" => loops::long_pollkit(n).await,
            "long_hand" => loops::long_hand(n).await,
            "long_hand_timeout" => loops::long_hand_timeout(n).await,
            other => {
                eprintln!("unknown loop {other}");
                std::process::exit(2);
            }
        }
    });
    std::hint::black_box(sum);
}
