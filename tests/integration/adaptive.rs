//! Adaptive and progress-aware pacing on the paused clock: fewer requests
//! than a fixed interval, at the same or better detection latency.

use crate::common;

use std::time::Duration;

use common::{ApiError, Log, ms, secs};
use futures::StreamExt;
use pollkit::{Poller, ShortPoll};
use tokio::time::Instant;

/// A job that sits in a queue for 60 s, then runs 23 s (reporting its
/// percent and time left), then is done at 83 s.
#[derive(Clone, Debug, PartialEq)]
enum Job {
    Queued,
    Running { percent: u32, left: Duration },
    Done,
}

fn job_at(t: Duration) -> Job {
    let (queue, run) = (secs(60), secs(23));
    if t < queue {
        Job::Queued
    } else if t < queue + run {
        let done = t - queue;
        Job::Running {
            percent: (done.as_millis() * 100 / run.as_millis()) as u32,
            left: run - done,
        }
    } else {
        Job::Done
    }
}

/// Watches the job with `configure`d pacing; returns (requests, latency).
async fn watch(
    configure: impl FnOnce(
        ShortPoll<
            Box<dyn FnMut() -> std::future::Ready<Result<Job, ApiError>> + Send>,
            std::future::Ready<Result<Job, ApiError>>,
        >,
    ) -> ShortPoll<
        Box<dyn FnMut() -> std::future::Ready<Result<Job, ApiError>> + Send>,
        std::future::Ready<Result<Job, ApiError>>,
    >,
) -> (usize, Duration) {
    let log = Log::new();
    let l = log.clone();
    let start = Instant::now();
    let fetch: Box<dyn FnMut() -> std::future::Ready<Result<Job, ApiError>> + Send> =
        Box::new(move || {
            l.hit();
            std::future::ready(Ok(job_at(start.elapsed())))
        });
    let done = configure(ShortPoll::new(fetch))
        .until(|j| *j == Job::Done)
        .await;
    assert_eq!(done.unwrap(), Job::Done);
    (log.count(), start.elapsed() - secs(83))
}

#[tokio::test(start_paused = true)]
async fn adaptive_pacing_beats_a_fixed_interval() {
    let (fixed_requests, fixed_latency) = watch(|p| p.interval(secs(5))).await;
    assert_eq!((fixed_requests, fixed_latency), (18, secs(2)));

    let (requests, latency) = watch(|p| p.interval(secs(5)).adaptive(secs(1), secs(30))).await;
    assert!(requests < fixed_requests / 2, "{requests} requests");
    assert!(latency <= fixed_latency, "{latency:?}");
}

#[tokio::test(start_paused = true)]
async fn the_interval_grows_while_nothing_changes_and_shrinks_on_change() {
    let log = Log::new();
    let l = log.clone();
    let start = Instant::now();
    let _ = ShortPoll::new(move || {
        l.hit();
        std::future::ready(Ok::<_, ApiError>(job_at(start.elapsed())))
    })
    .interval(secs(4))
    .adaptive(secs(1), secs(20))
    .until(|j| *j == Job::Done)
    .await;
    let times = log.millis();
    // Queued: 4 s growing by half each time up to the 20 s cap.
    assert_eq!(&times[..6], [0, 6_000, 15_000, 28_500, 48_500, 68_500]);
    // Running from 68.5 s: every change halves the interval (10 s, 5 s, ...).
    assert_eq!(times[6], 78_500);
    assert_eq!(times[7], 83_500);
}

#[tokio::test(start_paused = true)]
async fn progress_aware_pacing_plans_the_next_poll_near_the_expected_end() {
    let (fixed_requests, fixed_latency) = watch(|p| p.interval(secs(5))).await;
    let (requests, latency) = watch(|p| {
        p.interval(secs(5))
            .adaptive(ms(500), secs(30))
            .eta(|j| match j {
                Job::Running { left, .. } => Some(*left),
                _ => None,
            })
    })
    .await;
    assert!(requests < fixed_requests / 2, "{requests} requests");
    assert!(latency <= fixed_latency, "{latency:?}");
    // It never plans past the cap: a huge estimate waits 30 s at most.
    let log = Log::new();
    let l = log.clone();
    let _ = ShortPoll::new(move || {
        let n = l.hit();
        std::future::ready(Ok::<_, ApiError>(n))
    })
    .adaptive(secs(1), secs(30))
    .eta(|_| Some(Duration::MAX))
    .until(|n| *n == 3)
    .await;
    assert_eq!(log.secs(), [0, 30, 60]);
}

#[tokio::test(start_paused = true)]
async fn a_cap_under_the_least_interval_never_lets_it_reach_zero() {
    // `adaptive(1 s, 0)`: the bounds are taken in either order, and neither
    // may be under 1 ms, so the interval cannot halve to zero and spin.
    let mut n = 0u32;
    let mut poller = ShortPoll::new(move || {
        n += 1;
        // A new status every time: the interval shrinks to its floor.
        let status = n;
        async move { Ok::<_, ApiError>(status) }
    })
    .interval(secs(1))
    .adaptive(secs(1), Duration::ZERO);
    for _ in 0..60 {
        poller.next().await.unwrap().unwrap();
    }
    let start = Instant::now();
    for _ in 0..1_000 {
        poller.next().await.unwrap().unwrap();
    }
    assert!(
        start.elapsed() >= ms(1_000),
        "1,000 polls in {:?}",
        start.elapsed()
    );
}
