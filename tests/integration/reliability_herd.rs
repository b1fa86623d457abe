//! Thundering herd, on tokio's paused clock: 10,000 `ShortPoll`s started at
//! the same instant with a 1 s interval, observed for 10 s. How much of the
//! load lands in the busiest 100 ms window, with and without jitter?
//!
//! Run with `--nocapture` to print the figures.
//!
//! What full jitter should give: each poller's gaps are uniform in
//! `[0, 1 s]`. Its requests after the first form a renewal process whose
//! density over the first second is `e^t` per second (the renewal density
//! of uniform(0, 1) gaps), settling to 2 per second. So the busiest 100 ms
//! window after the start is `[0.9 s, 1.0 s]`, holding
//! `e − e^0.9 ≈ 0.259` requests per poller out of about 19.67 in 10 s:
//! **1.3 %**, where a uniform spread gives 1 %. Without jitter every
//! tick's 10,000 requests land in the same millisecond: each tick's window
//! holds 100 % of that tick, 10 % of all requests.
//!
//! The first request of each poller goes out at once unless `stagger` says
//! otherwise, so by default 10,000 requests start at `t = 0` whatever the
//! jitter. With the same `timeout`, every poller also makes its final request
//! exactly at the deadline.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use pollkit::{Jitter, ShortPoll};
use tokio::time::Instant;

const POLLERS: usize = 10_000;
const HORIZON_MS: usize = 10_000;
const WINDOW_MS: usize = 100;

/// Requests per millisecond over the horizon, plus one bin for the instant
/// at the horizon itself (the deadline, when there is one).
struct Histogram {
    /// Every request.
    all: Vec<u32>,
    /// Every request but each poller's first.
    later: Vec<u32>,
}

impl Histogram {
    fn total(bins: &[u32]) -> u64 {
        bins[..HORIZON_MS].iter().map(|&n| u64::from(n)).sum()
    }

    /// The busiest `WINDOW_MS` window inside `[0, HORIZON_MS)`: its start in
    /// ms and its count.
    fn busiest(bins: &[u32]) -> (usize, u64) {
        let mut sum: u64 = bins[..WINDOW_MS].iter().map(|&n| u64::from(n)).sum();
        let mut best = (0, sum);
        for start in 1..=HORIZON_MS - WINDOW_MS {
            sum += u64::from(bins[start + WINDOW_MS - 1]);
            sum -= u64::from(bins[start - 1]);
            if sum > best.1 {
                best = (start, sum);
            }
        }
        best
    }
}

/// Starts `POLLERS` pollers at the same instant and records every request
/// for `HORIZON_MS` (and at the horizon itself).
async fn herd(jitter: Jitter, timeout: Option<Duration>, stagger: Option<Duration>) -> Histogram {
    let all: Arc<Vec<AtomicU32>> = Arc::new((0..=HORIZON_MS).map(|_| AtomicU32::new(0)).collect());
    let later: Arc<Vec<AtomicU32>> =
        Arc::new((0..=HORIZON_MS).map(|_| AtomicU32::new(0)).collect());
    let start = Instant::now();
    let mut pollers = FuturesUnordered::new();
    for i in 0..POLLERS {
        let (all, later) = (all.clone(), later.clone());
        let mut first = true;
        let mut poller = ShortPoll::new(move || {
            let ms = start.elapsed().as_millis() as usize;
            if ms <= HORIZON_MS {
                all[ms].fetch_add(1, Ordering::Relaxed);
                if !first {
                    later[ms].fetch_add(1, Ordering::Relaxed);
                }
            }
            first = false;
            std::future::ready(Ok::<_, Infallible>(()))
        })
        .interval(Duration::from_secs(1))
        .jitter(jitter)
        .seed(i as u64 + 1);
        if let Some(t) = timeout {
            poller = poller.timeout(t);
        }
        if let Some(s) = stagger {
            poller = poller.stagger(s);
        }
        pollers.push(poller.for_each(|_| async {}));
    }
    // Past the horizon by one tick, so that requests at the horizon count.
    let end = start + Duration::from_millis(HORIZON_MS as u64 + 1);
    let _ = tokio::time::timeout_at(end, async { while pollers.next().await.is_some() {} }).await;
    let load = |bins: &[AtomicU32]| bins.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    Histogram {
        all: load(&all),
        later: load(&later),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole as f64
}

#[tokio::test(start_paused = true)]
async fn full_jitter_spreads_a_herd_of_ten_thousand() {
    let h = herd(Jitter::Full, None, None).await;
    let total = Histogram::total(&h.all);
    let later_total = Histogram::total(&h.later);
    let (at, busiest) = Histogram::busiest(&h.later);
    let (at_all, busiest_all) = Histogram::busiest(&h.all);
    let share = percent(busiest, later_total);
    println!(
        "full jitter: {total} requests in 10 s; the busiest 100 ms window after the first \
         requests ({at}..{} ms) holds {busiest} = {share:.2} % of them (uniform: 1 %, \
         theory 1.3 %); counting the first requests, the busiest window ({at_all}..{} ms) \
         holds {busiest_all} = {:.2} % of all, {} of them at t = 0",
        at + WINDOW_MS,
        at_all + WINDOW_MS,
        percent(busiest_all, total),
        h.all[0],
    );
    // About 20.67 requests per poller in [0, 10 s): 1 at t = 0, then 2/s.
    assert!((200_000..=213_000).contains(&total), "{total}");
    assert!(share <= 2.0, "busiest window holds {share:.2} %");
    assert!(share >= 1.0, "no window can hold less than the average");
    // The synchronized first requests: every poller at t = 0.
    assert_eq!(h.all[0] as usize - h.later[0] as usize, POLLERS);
    assert_eq!(at_all, 0);
}

#[tokio::test(start_paused = true)]
async fn without_jitter_every_tick_is_one_burst() {
    let h = herd(Jitter::None, None, None).await;
    let total = Histogram::total(&h.all);
    let (at, busiest) = Histogram::busiest(&h.all);
    println!(
        "no jitter: {total} requests in 10 s; the busiest 100 ms window ({at}..{} ms) holds \
         {busiest} = {:.1} % of all; each tick's {POLLERS} requests all fall in the same \
         millisecond",
        at + WINDOW_MS,
        percent(busiest, total),
    );
    assert_eq!(total, 10 * POLLERS as u64);
    for tick in 0..10 {
        // 100 % of each tick's requests in one millisecond, let alone one window.
        assert_eq!(h.all[tick * 1000] as usize, POLLERS, "tick {tick}");
    }
    assert_eq!(busiest, POLLERS as u64);
    assert_eq!(percent(busiest, total), 10.0);
}

#[tokio::test(start_paused = true)]
async fn other_jitter_kinds_and_a_shared_deadline() {
    for (name, jitter) in [
        ("proportional 10 %", Jitter::Proportional(0.1)),
        ("equal", Jitter::Equal),
        ("decorrelated", Jitter::Decorrelated),
    ] {
        let h = herd(jitter, None, None).await;
        let total = Histogram::total(&h.later);
        let (at, busiest) = Histogram::busiest(&h.later);
        let share = percent(busiest, total);
        println!(
            "{name}: the busiest 100 ms window after the first requests ({at}..{} ms) holds \
             {busiest} = {share:.2} % of {total}",
            at + WINDOW_MS,
        );
        // Every kind spreads the herd; the narrower the spread, the slower.
        assert!(share < 10.0, "{name}: {share:.2} %");
    }
    // A shared deadline gathers the herd again: with the same timeout every
    // poller makes its final request exactly at it.
    let h = herd(Jitter::Full, Some(Duration::from_secs(10)), None).await;
    let total = Histogram::total(&h.all) + u64::from(h.all[HORIZON_MS]);
    println!(
        "full jitter, timeout 10 s: {} of {total} requests ({:.1} %) at exactly t = 10 s",
        h.all[HORIZON_MS],
        percent(u64::from(h.all[HORIZON_MS]), total),
    );
    assert_eq!(h.all[HORIZON_MS] as usize, POLLERS);
}

/// `stagger` spreads the first requests too: with a start jitter of one
/// interval the first request is uniform in `[0, 1 s]` like every later gap,
/// so the whole process is the renewal process above without its spike at
/// `t = 0`: the busiest window holds about 1.3 % of *all* requests.
#[tokio::test(start_paused = true)]
async fn stagger_spreads_the_first_requests_too() {
    let h = herd(Jitter::Full, None, Some(Duration::from_secs(1))).await;
    let total = Histogram::total(&h.all);
    let (at, busiest) = Histogram::busiest(&h.all);
    let share = percent(busiest, total);
    println!(
        "full jitter and stagger(1 s): {total} requests in 10 s; the busiest 100 ms window \
         ({at}..{} ms) holds {busiest} = {share:.2} % of all of them, {} at t = 0",
        at + WINDOW_MS,
        h.all[0],
    );
    assert!(share <= 2.0, "busiest window holds {share:.2} %");
    assert!(h.all[0] < 100, "{} first requests at t = 0", h.all[0]);
}

/// Regression, bug 4 (fixed in 1181526): decorrelated jitter capped the
/// *drawn delay* at `high = 3d/2` (`rng.between(low, 3 × previous).min(high)`),
/// so every draw above it became exactly `3d/2`: 60 % of the first draws and
/// about 75 % in steady state. Most pollers then waited exactly
/// `1.5 × interval`: pollers started together stayed in lock-step (9.4 % of
/// the herd's load in one 100 ms window, as bad as no jitter at all) and the
/// mean interval was about 1.4× the configured one. Measured before the fix:
/// 683 of 1,000 delays exactly 15 s for a 10 s interval, mean 13.5 s.
#[tokio::test(start_paused = true)]
async fn regression_decorrelated_jitter_does_not_pile_delays_onto_the_cap() {
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = times.clone();
    let _ = ShortPoll::new(move || {
        t.lock().unwrap().push(Instant::now());
        std::future::ready(Ok::<_, Infallible>(()))
    })
    .interval(Duration::from_secs(10))
    .jitter(Jitter::Decorrelated)
    .seed(3)
    .take(1001)
    .collect::<Vec<_>>()
    .await;
    let times = times.lock().unwrap();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let at_cap = gaps
        .iter()
        .filter(|g| **g == Duration::from_secs(15))
        .count();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        at_cap * 20 <= gaps.len(),
        "{at_cap} of {} delays are exactly 3d/2 (mean delay {mean:?} for a 10 s interval)",
        gaps.len()
    );
}
