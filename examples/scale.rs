//! Scale: 100,000 concurrent ShortPolls on one runtime, beside 100,000 raw
//! tokio tasks doing the same `fetch; sleep(1 s ± jitter)` loop.
//!
//! ```sh
//! cargo run --release --example scale                  # 100,000 × 10 s, 5 rounds
//! cargo run --release --example scale -- 20000 5 5     # pollers, seconds, rounds
//! ```
//!
//! Criterion cannot measure memory, so this prints a table: bytes per poller
//! (live heap bytes counted by a wrapping global allocator, and resident set
//! size from /proc), and CPU time per tick (this thread's CPU time from
//! /proc/thread-self/schedstat over the run, divided by the requests made).
//! It runs on a current-thread runtime on the real clock: every figure is the
//! cost of the work itself, since the runtime sleeps in between. The two
//! kinds take turns for a few rounds, each in a fresh process; the table
//! shows each kind's median round and the median of the rounds' CPU ratios
//! (each pollkit process against the raw one right after it).
//!
//! CPU time on a shared machine moves by ±15 % between runs. For a figure
//! that does not, count instructions and cache misses per tick under
//! cachegrind, with a last-level cache smaller than the pollers' memory so
//! that every poller's lines are cold when its timer fires, and take the
//! difference of a short and a long run so that start-up cancels out:
//!
//! ```sh
//! cargo build --release --example scale
//! for s in 5 15; do
//!   valgrind --tool=cachegrind --cache-sim=yes --LL=8388608,16,64 \
//!     --cachegrind-out-file=/dev/null target/release/examples/scale 100000 $s pollkit
//! done   # (ΔD1 misses, ΔI refs) / Δticks; the same with `raw`
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use pollkit::{Jitter, ShortPoll};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident set size in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// This thread's CPU time.
fn cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

struct Figures {
    heap_per_poller: f64,
    rss_per_poller: f64,
    cpu_per_tick: Duration,
    ticks: u64,
}

/// Spawns `n` loops made by `spawn`, lets them run `secs`, and measures.
fn run(n: usize, secs: u64, spawn: impl Fn(usize, Arc<AtomicU64>, Arc<AtomicBool>)) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss());
        for i in 0..n {
            spawn(i, ticks.clone(), stop.clone());
        }
        // Let every loop make its first request and allocate what it needs.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (heap1, rss1) = (LIVE.load(Ordering::Relaxed), rss());
        let (cpu0, ticks0) = (cpu(), ticks.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu1, ticks1) = (cpu(), ticks.load(Ordering::Relaxed));
        stop.store(true, Ordering::Relaxed);
        let ticks = ticks1 - ticks0;
        Figures {
            heap_per_poller: heap1.saturating_sub(heap0) as f64 / n as f64,
            rss_per_poller: rss1.saturating_sub(rss0) as f64 / n as f64,
            cpu_per_tick: (cpu1 - cpu0) / u32::try_from(ticks.max(1)).unwrap_or(u32::MAX),
            ticks,
        }
    })
}

/// SplitMix64, for the raw loops' jitter.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pollkit_loops(n: usize, secs: u64, interval: Duration) -> Figures {
    run(n, secs, |i, ticks, stop| {
        let poller = ShortPoll::new(move || {
            ticks.fetch_add(1, Ordering::Relaxed);
            ready(Ok::<_, std::io::Error>(()))
        })
        .interval(interval)
        .jitter(Jitter::Full)
        .seed(i as u64);
        tokio::spawn(
            poller
                .take_while(move |_| ready(!stop.load(Ordering::Relaxed)))
                .for_each(|_| ready(())),
        );
    })
}

fn raw_loops(n: usize, secs: u64, interval: Duration) -> Figures {
    run(n, secs, |i, ticks, stop| {
        tokio::spawn(async move {
            let mut rng = i as u64;
            while !stop.load(Ordering::Relaxed) {
                ticks.fetch_add(1, Ordering::Relaxed);
                let _ = ready(Ok::<_, std::io::Error>(())).await;
                // Full jitter: uniform in [0, interval].
                let nanos = (((interval.as_nanos() + 1) * u128::from(next(&mut rng))) >> 64) as u64;
                tokio::time::sleep(Duration::from_nanos(nanos)).await;
            }
        });
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let interval = Duration::from_secs(1);
    // Each kind runs in a process of its own, so that neither inherits the
    // other's freed heap pages in its resident set.
    let third = args.next();
    match third.as_deref() {
        Some("pollkit") => return pollkit_loops(n, secs, interval).print(),
        Some("raw") => return raw_loops(n, secs, interval).print(),
        _ => {}
    }
    let rounds: usize = third.and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let measure = |kind: &str| -> Option<Figures> {
        let exe = std::env::current_exe().ok()?;
        let out = std::process::Command::new(exe)
            .args([n.to_string(), secs.to_string(), kind.to_string()])
            .output()
            .ok()?;
        Figures::parse(&String::from_utf8_lossy(&out.stdout))
    };
    // The two kinds take turns, `rounds` times; each round compares a
    // pollkit process with the raw process right after it, and the run
    // reports the median of those ratios. A neighbour's burst on a shared
    // machine then moves one round, not the figure.
    let mut pollkit = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..rounds {
        let (Some(p), Some(r)) = (measure("pollkit"), measure("raw")) else {
            eprintln!("a measuring process failed");
            std::process::exit(1);
        };
        pollkit.push(p);
        raw.push(r);
    }
    let micros = |f: &Figures| f.cpu_per_tick.as_nanos() as f64 / 1000.0;
    let mut ratios: Vec<f64> = pollkit
        .iter()
        .zip(&raw)
        .map(|(p, r)| micros(p) / micros(r).max(0.001))
        .collect();
    let each = ratios
        .iter()
        .map(|r| format!("{r:.2}×"))
        .collect::<Vec<_>>()
        .join(", ");
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let (pollkit, raw) = (Figures::median(pollkit), Figures::median(raw));
    println!(
        "{n} loops, 1 s interval, full jitter, {secs} s, one current-thread runtime each; \
         {rounds} alternating rounds, medians"
    );
    println!("| | heap bytes / poller | RSS bytes / poller | CPU / tick | ticks |");
    println!("|---|---|---|---|---|");
    for (name, f) in [("pollkit ShortPoll", &pollkit), ("raw tokio task", &raw)] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} µs | {} |",
            f.heap_per_poller,
            f.rss_per_poller,
            micros(f),
            f.ticks
        );
    }
    println!(
        "| ratio | {:.2}× | {:.2}× | {ratio:.2}× (median of the rounds' ratios) | |",
        pollkit.heap_per_poller / raw.heap_per_poller.max(1.0),
        pollkit.rss_per_poller / raw.rss_per_poller.max(1.0),
    );
    println!("rounds' CPU ratios: {each}");
}

impl Figures {
    fn print(self) {
        println!(
            "{} {} {} {}",
            self.heap_per_poller,
            self.rss_per_poller,
            self.cpu_per_tick.as_nanos(),
            self.ticks
        );
    }

    /// The round with the median CPU per tick (the upper one of two).
    fn median(mut rounds: Vec<Figures>) -> Figures {
        rounds.sort_by_key(|f| f.cpu_per_tick);
        let mid = rounds.len() / 2;
        rounds.swap_remove(mid)
    }

    fn parse(line: &str) -> Option<Figures> {
        let mut it = line.split_whitespace();
        Some(Figures {
            heap_per_poller: it.next()?.parse().ok()?,
            rss_per_poller: it.next()?.parse().ok()?,
            cpu_per_tick: Duration::from_nanos(it.next()?.parse().ok()?),
            ticks: it.next()?.parse().ok()?,
        })
    }
}
