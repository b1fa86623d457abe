//! ShortPoll on tokio's paused clock: every option, at exact instants.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ApiError, DropFlag, Log, ms, secs};
use futures::StreamExt;
use pollkit::{Backoff, Cadence, Error, Jitter, Poller, ShortPoll};

/// A fetch that answers `n` (the request number) after `delay`.
fn counter(
    log: &Log,
    delay: Duration,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Result<usize, ApiError>> + Send>> + use<>
{
    let log = log.clone();
    move || {
        let n = log.hit();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(n)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn first_request_at_once_then_every_interval() {
    let log = Log::new();
    let poller = ShortPoll::new(counter(&log, Duration::ZERO)).interval(secs(5));
    let got: Vec<_> = poller.take(3).map(Result::unwrap).collect().await;
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(log.secs(), [0, 5, 10]);
}

#[tokio::test(start_paused = true)]
async fn default_interval_is_one_second() {
    let log = Log::new();
    let poller = ShortPoll::new(counter(&log, Duration::ZERO));
    let _ = poller.take(3).collect::<Vec<_>>().await;
    assert_eq!(log.secs(), [0, 1, 2]);
}

#[tokio::test(start_paused = true)]
async fn fixed_delay_counts_from_the_end_of_the_response() {
    let log = Log::new();
    let poller = ShortPoll::new(counter(&log, secs(2))).interval(secs(5));
    let _ = poller.take(3).collect::<Vec<_>>().await;
    assert_eq!(log.secs(), [0, 7, 14]);
}

#[tokio::test(start_paused = true)]
async fn fixed_rate_counts_from_the_start_of_the_request() {
    let log = Log::new();
    let poller = ShortPoll::new(counter(&log, secs(2)))
        .interval(secs(5))
        .cadence(Cadence::FixedRate);
    let _ = poller.take(4).collect::<Vec<_>>().await;
    assert_eq!(log.secs(), [0, 5, 10, 15]);
}

#[tokio::test(start_paused = true)]
async fn fixed_rate_skips_missed_ticks_without_a_burst() {
    let log = Log::new();
    let slow = log.clone();
    // The second request takes 12 s: ticks at 10 and 15 are missed; the next
    // request waits for the tick at 20, and the grid goes on from there.
    let poller = ShortPoll::new(move || {
        let n = slow.hit();
        async move {
            tokio::time::sleep(if n == 2 { secs(12) } else { ms(100) }).await;
            Ok::<_, ApiError>(n)
        }
    })
    .interval(secs(5))
    .cadence(Cadence::FixedRate);
    let _ = poller.take(5).collect::<Vec<_>>().await;
    assert_eq!(log.secs(), [0, 5, 20, 25, 30]);
}

#[tokio::test(start_paused = true)]
async fn fixed_rate_does_not_drift_over_thousands_of_ticks() {
    let log = Log::new();
    let poller = ShortPoll::new(counter(&log, ms(3)))
        .interval(ms(10))
        .cadence(Cadence::FixedRate);
    let _ = poller.take(5000).collect::<Vec<_>>().await;
    let times = log.times();
    assert_eq!(times[4999], ms(49_990));
    assert!(
        times
            .iter()
            .enumerate()
            .all(|(i, t)| *t == ms(10 * i as u64))
    );
}

fn gaps(log: &Log) -> Vec<Duration> {
    log.times().windows(2).map(|w| w[1] - w[0]).collect()
}

async fn jittered_gaps(jitter: Jitter, seed: u64) -> Vec<Duration> {
    let log = Log::new();
    let poller = ShortPoll::new(counter(&log, Duration::ZERO))
        .interval(secs(10))
        .jitter(jitter)
        .seed(seed);
    let _ = poller.take(401).collect::<Vec<_>>().await;
    gaps(&log)
}

fn spread(gaps: &[Duration]) -> (Duration, Duration) {
    (*gaps.iter().min().unwrap(), *gaps.iter().max().unwrap())
}

#[tokio::test(start_paused = true)]
async fn jitter_kinds_stay_in_bounds_and_spread() {
    let (lo, hi) = spread(&jittered_gaps(Jitter::None, 1).await);
    assert_eq!((lo, hi), (secs(10), secs(10)));

    let (lo, hi) = spread(&jittered_gaps(Jitter::Proportional(0.25), 1).await);
    assert!(lo >= ms(7_500) && lo < ms(8_000), "{lo:?}");
    assert!(hi <= ms(12_500) && hi > ms(12_000), "{hi:?}");

    let (lo, hi) = spread(&jittered_gaps(Jitter::Full, 1).await);
    assert!(
        lo < secs(1) && hi <= secs(10) && hi > secs(9),
        "{lo:?} {hi:?}"
    );

    let (lo, hi) = spread(&jittered_gaps(Jitter::Equal, 1).await);
    assert!(lo >= secs(5) && lo < secs(6) && hi <= secs(10) && hi > secs(9));

    let (lo, hi) = spread(&jittered_gaps(Jitter::Decorrelated, 1).await);
    assert!(
        lo >= secs(5) && hi <= secs(15) && hi > secs(14),
        "{lo:?} {hi:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_is_reproducible_with_a_seed() {
    let a = jittered_gaps(Jitter::Full, 7).await;
    let b = jittered_gaps(Jitter::Full, 7).await;
    let c = jittered_gaps(Jitter::Full, 8).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Unseeded pollers differ from each other.
    let d = {
        let log = Log::new();
        let p = ShortPoll::new(counter(&log, Duration::ZERO))
            .interval(secs(10))
            .jitter(Jitter::Full);
        let _ = p.take(20).collect::<Vec<_>>().await;
        gaps(&log)
    };
    assert_ne!(&a[..19], &d[..]);
}

#[tokio::test(start_paused = true)]
async fn deadline_shortens_the_last_wait_and_makes_a_final_request() {
    let log = Log::new();
    let items: Vec<_> = ShortPoll::new(counter(&log, Duration::ZERO))
        .interval(secs(5))
        .timeout(secs(12))
        .collect()
        .await;
    assert_eq!(log.secs(), [0, 5, 10, 12]);
    assert_eq!(items.len(), 5);
    match &items[4] {
        Err(Error::Timeout {
            elapsed, attempts, ..
        }) => {
            assert_eq!((*elapsed, *attempts), (secs(12), 4));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn until_sees_the_final_request_before_timing_out() {
    let log = Log::new();
    let r = ShortPoll::new(counter(&log, Duration::ZERO))
        .interval(secs(5))
        .timeout(secs(12))
        .until(|n| *n == 4)
        .await;
    assert_eq!(r.unwrap(), 4);
    let log = Log::new();
    let r = ShortPoll::new(counter(&log, Duration::ZERO))
        .interval(secs(5))
        .timeout(secs(12))
        .until(|n| *n == 5)
        .await;
    assert!(
        matches!(r, Err(Error::Timeout { attempts: 4, .. })),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn huge_and_zero_deadlines_do_not_panic() {
    let log = Log::new();
    let r = ShortPoll::new(counter(&log, Duration::ZERO))
        .timeout(Duration::ZERO)
        .until(|_| false)
        .await;
    assert!(matches!(r, Err(Error::Timeout { attempts: 1, .. })));
    let log = Log::new();
    let r = ShortPoll::new(counter(&log, Duration::ZERO))
        .timeout(Duration::MAX)
        .interval(Duration::MAX)
        .take(1)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(r.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_drops_the_request_and_retries() {
    let log = Log::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (l, d) = (log.clone(), dropped.clone());
    let r = ShortPoll::new(move || {
        let n = l.hit();
        let flag = DropFlag(d.clone());
        async move {
            let _flag = flag;
            // The first two requests hang; the third answers at once.
            if n < 3 {
                std::future::pending::<()>().await;
            }
            Ok::<_, ApiError>(n)
        }
    })
    .attempt_timeout(secs(2))
    .backoff(Backoff::new().jitter(Jitter::None))
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 3);
    // 0: times out at 2, backoff 1 s -> 3: times out at 5, backoff 2 s -> 7.
    assert_eq!(log.secs(), [0, 3, 7]);
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_end_with_their_own_error_when_retries_run_out() {
    let r = ShortPoll::new(std::future::pending::<Result<(), ApiError>>)
        .attempt_timeout(secs(1))
        .backoff(Backoff::new().jitter(Jitter::None).max_retries(2))
        .until(|_| true)
        .await;
    match r {
        Err(e @ Error::AttemptTimeout { .. }) => {
            assert!(
                matches!(e, Error::AttemptTimeout { timeout, attempts: 3, .. } if timeout == secs(1))
            );
            assert_eq!(e.to_string(), "request 3 took longer than 1s");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn max_attempts_ends_with_exhausted() {
    let log = Log::new();
    let items: Vec<_> = ShortPoll::new(counter(&log, Duration::ZERO))
        .interval(secs(1))
        .max_attempts(3)
        .collect()
        .await;
    assert_eq!(log.count(), 3);
    assert!(matches!(
        items[3],
        Err(Error::Exhausted { attempts: 3, .. })
    ));
    assert_eq!(items.len(), 4, "an Err is the last item");
    // A limit of 0 is taken as 1.
    let log = Log::new();
    let r = ShortPoll::new(counter(&log, Duration::ZERO))
        .max_attempts(0)
        .until(|_| false)
        .await;
    assert!(matches!(r, Err(Error::Exhausted { attempts: 1, .. })));
}

/// Answers the scripted results in order, recording each request.
fn script(
    log: &Log,
    results: Vec<Result<u32, ApiError>>,
) -> impl FnMut() -> std::future::Ready<Result<u32, ApiError>> + use<> {
    let log = log.clone();
    let mut results = results.into_iter();
    move || {
        log.hit();
        std::future::ready(results.next().unwrap_or(Ok(0)))
    }
}

fn unavailable() -> Result<u32, ApiError> {
    Err(ApiError::Unavailable { retry_after: None })
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_end_at_once() {
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Err(ApiError::NotFound)]))
        .retry_if(ApiError::is_transient)
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::NotFound))));
    assert_eq!(log.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_back_off_grow_cap_and_reset() {
    let log = Log::new();
    let mut results = vec![unavailable(); 5];
    results.push(Ok(1)); // resets the backoff
    results.push(unavailable());
    results.push(Ok(2));
    let got: Vec<_> = ShortPoll::new(script(&log, results))
        .interval(secs(10))
        .retry_if(ApiError::is_transient)
        .backoff(
            Backoff::new()
                .base(secs(1))
                .factor(2.0)
                .max_delay(secs(5))
                .jitter(Jitter::None),
        )
        .take(2)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(got, [1, 2]);
    // Backoff 1, 2, 4, 5 (capped), 5; success; interval 10; error; backoff 1 again.
    assert_eq!(log.secs(), [0, 1, 3, 7, 12, 17, 27, 28]);
}

#[tokio::test(start_paused = true)]
async fn default_policy_retries_a_blip_but_not_forever() {
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![unavailable(), Ok(7)]))
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), 7);
    // An error that never stops ends the wait after 5 minutes of failing,
    // with waits capped at 30 s (so a recovery is noticed within 30 s).
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Err(ApiError::NotFound); 100]))
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::NotFound))));
    let t = log.times();
    let last = *t.last().unwrap();
    assert!(last >= secs(300) && last < secs(330), "{last:?}");
    assert!(t.windows(2).all(|w| w[1] - w[0] <= secs(30)));
}

#[tokio::test(start_paused = true)]
async fn server_hints_replace_the_delay_and_are_clamped() {
    // The status says "ask again in N ms"; bounds 2 s ..= 30 s.
    let log = Log::new();
    let hints = [ms(5_000), ms(0), ms(3_600_000), ms(2_500)];
    let l = log.clone();
    let mut next = 0;
    let _ = ShortPoll::new(move || {
        l.hit();
        let hint = hints[next % hints.len()];
        next += 1;
        async move { Ok::<_, ApiError>(hint) }
    })
    .interval(secs(10))
    .poll_after(|hint: &Duration| Some(*hint))
    .hint_bounds(secs(30), secs(2))
    .take(5)
    .collect::<Vec<_>>()
    .await;
    // 0 -(5 s)-> 5 -(0 → 2 s)-> 7 -(1 h → 30 s)-> 37 -(2.5 s)-> 39.5, each
    // hint waited in full and spread up to a fifth above it.
    let t = log.times();
    let g: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, hint) in g.iter().zip([ms(5_000), ms(2_000), ms(30_000), ms(2_500)]) {
        assert!(*gap >= hint && *gap <= hint + hint / 5, "{g:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_errors_is_clamped_and_still_counts() {
    let log = Log::new();
    let results = vec![
        Err(ApiError::Unavailable {
            retry_after: Some(secs(600)),
        }),
        Err(ApiError::Unavailable {
            retry_after: Some(Duration::ZERO),
        }),
        Ok(1),
    ];
    let r = ShortPoll::new(script(&log, results))
        .retry_if(ApiError::is_transient)
        .retry_after(ApiError::retry_after)
        .backoff(Backoff::new().give_up_after(secs(3600)))
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), 1);
    // Default bounds: 1 s ..= 600 s (a longer hint ends the wait at once,
    // tests/hints_honest.rs), spread up to a fifth above.
    let t = log.times();
    assert!(t[1] >= secs(600) && t[1] <= secs(720), "{t:?}");
    assert!(t[2] - t[1] >= secs(1) && t[2] - t[1] <= ms(1_200), "{t:?}");

    let log = Log::new();
    let results = vec![
        Err(ApiError::Unavailable {
            retry_after: Some(secs(3))
        });
        10
    ];
    let r = ShortPoll::new(script(&log, results))
        .retry_after(ApiError::retry_after)
        .backoff(Backoff::new().max_retries(2).give_up_after(secs(20)))
        .until(|_| true)
        .await;
    // Hinted errors count toward the time bound (20 s), not max_retries;
    // the first hint past the time the bound has left (after 17 s) ends it.
    assert!(matches!(r, Err(Error::Fetch(_))));
    let t = log.times();
    let last = *t.last().unwrap();
    assert!(last > secs(17) && last <= ms(20_600), "{t:?}");
    assert!(t.len() > 3, "{t:?}");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_until_future_cancels_the_pending_request() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (d, s) = (dropped.clone(), started.clone());
    let until = ShortPoll::new(move || {
        s.fetch_add(1, Ordering::SeqCst);
        let flag = DropFlag(d.clone());
        async move {
            let _flag = flag;
            std::future::pending::<Result<(), ApiError>>().await
        }
    })
    .until(|_| true);
    let r = tokio::time::timeout(secs(30), until).await;
    assert!(r.is_err(), "the request never answers");
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the request future was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_poller_leaves_nothing_running() {
    let log = Log::new();
    let mut poller = ShortPoll::new(counter(&log, Duration::ZERO)).interval(secs(5));
    assert_eq!(poller.next().await.unwrap().unwrap(), 1);
    drop(poller); // while it waits for the next tick
    tokio::time::sleep(secs(60)).await;
    assert_eq!(log.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn changes_yields_only_differences() {
    let log = Log::new();
    let l = log.clone();
    let answers = [1, 1, 2, 2, 2, 1, 3];
    let got: Vec<u32> = ShortPoll::new(move || {
        let n = l.hit();
        async move { Ok::<_, ApiError>(answers[(n - 1).min(6)]) }
    })
    .changes()
    .take(4)
    .map(Result::unwrap)
    .collect()
    .await;
    assert_eq!(got, [1, 2, 1, 3]);
    assert_eq!(log.count(), 7);
}

#[tokio::test(start_paused = true)]
async fn until_on_a_stream_that_ends_says_so() {
    let stream = futures::stream::iter(vec![Ok::<u32, Error<ApiError>>(1), Ok(2)]);
    let r = stream.until(|n| *n == 3).await;
    assert!(matches!(r, Err(Error::Ended)));
    assert_eq!(
        r.unwrap_err().to_string(),
        "the status stream ended before the awaited condition held"
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_is_the_last_item() {
    let log = Log::new();
    let mut poller = ShortPoll::new(script(&log, vec![Ok(1), Err(ApiError::NotFound)]))
        .retry_if(ApiError::is_transient);
    assert!(matches!(poller.next().await, Some(Ok(1))));
    assert!(matches!(
        poller.next().await,
        Some(Err(Error::Fetch(ApiError::NotFound)))
    ));
    assert!(poller.next().await.is_none());
    assert!(poller.next().await.is_none());
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn fail_with_ends_polling_at_a_failed_status() {
    let log = Log::new();
    let mut poller = ShortPoll::new(script(&log, vec![Ok(1), Ok(99), Ok(3)]))
        .fail_with(|s| (*s == 99).then_some(ApiError::NotFound));
    assert!(matches!(poller.next().await, Some(Ok(1))));
    let err = poller.next().await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Failed(ApiError::NotFound)));
    assert_eq!(err.to_string(), "the watched resource failed");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("404 not found"));
    assert!(poller.next().await.is_none());
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn map_status_keeps_a_poller() {
    let log = Log::new();
    let r = ShortPoll::new(counter(&log, Duration::ZERO))
        .map_status(|n| n * 10)
        .changes()
        .until(|n| *n >= 30)
        .await;
    assert_eq!(r.unwrap(), 30);
}

#[tokio::test(start_paused = true)]
async fn zero_interval_sets_no_timer_but_yields_to_other_tasks() {
    let log = Log::new();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    // A task that counts how often it gets to run.
    let other = tokio::spawn(async move {
        loop {
            t.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    });
    let start = tokio::time::Instant::now();
    let polls = ShortPoll::new(script(&log, vec![]))
        .interval(Duration::ZERO)
        .take(1000)
        .count()
        .await;
    assert_eq!(polls, 1000);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no time passed: no timer was used"
    );
    assert!(
        ticks.load(Ordering::SeqCst) >= 900,
        "the other task kept running"
    );
    other.abort();
}

#[tokio::test(start_paused = true)]
async fn errors_display_for_a_person_reading_a_log() {
    let e: Error<ApiError> = Error::Fetch(ApiError::NotFound);
    assert_eq!(e.to_string(), "request failed");
    // The user's error is the next link of the chain, printed there once.
    let source = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("404 not found"));
    assert_eq!(e.last_error(), Some(&ApiError::NotFound));
    let e: Error<ApiError> = Error::exhausted(3, None);
    assert_eq!(
        e.to_string(),
        "gave up after 3 requests: the attempt limit was reached"
    );
    let e: Error<ApiError> = Error::exhausted(3, Some(ApiError::NotFound));
    assert_eq!(
        e.to_string(),
        "gave up after 3 requests: the attempt limit was reached; \
         the last request failed"
    );
    let source = std::error::Error::source(&e).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("404 not found"));
    assert!(e.ran_out());
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_a_request_that_never_answers() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let r = ShortPoll::new(move || {
        let flag = DropFlag(d.clone());
        async move {
            let _flag = flag;
            std::future::pending::<Result<(), ApiError>>().await
        }
    })
    .timeout(secs(10))
    .until(|_| true)
    .await;
    // Cut 5 s past the deadline: Timeout, not a hang.
    match r {
        Err(Error::Timeout {
            elapsed, attempts, ..
        }) => assert_eq!((elapsed, attempts), (secs(15), 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn try_map_status_ends_with_the_mapping_error() {
    let log = Log::new();
    let mut poller = ShortPoll::new(counter(&log, Duration::ZERO)).try_map_status(|n| {
        if n < 3 {
            Ok(n * 10)
        } else {
            Err(ApiError::NotFound)
        }
    });
    assert!(matches!(poller.next().await, Some(Ok(10))));
    assert!(matches!(poller.next().await, Some(Ok(20))));
    assert!(matches!(
        poller.next().await,
        Some(Err(Error::Fetch(ApiError::NotFound)))
    ));
    assert!(poller.next().await.is_none());
    assert_eq!(log.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn stagger_spreads_the_first_requests_of_pollers_started_together() {
    let log = Log::new();
    let pollers = (0..100).map(|seed| {
        let l = log.clone();
        ShortPoll::new(move || {
            l.hit();
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .stagger(secs(10))
        .seed(seed)
        .until(|_| true)
    });
    futures::future::join_all(pollers).await;
    let firsts = log.times();
    assert_eq!(firsts.len(), 100);
    assert!(firsts.iter().all(|t| *t <= secs(10)));
    // Spread over the whole window: no second holds more than a fifth of them.
    let mut per_second = [0; 11];
    for t in &firsts {
        per_second[t.as_secs() as usize] += 1;
    }
    assert!(per_second.iter().all(|n| *n <= 20), "{per_second:?}");
    assert!(firsts.iter().any(|t| *t >= secs(9)));
}

/// A status endpoint behind a load balancer that swallows requests (no
/// answer, no reset): without a per-request timeout of the user's, each
/// request fails after the default 30 s and is retried, and the watch ends
/// with that error once failures have gone on for the backoff's time bound,
/// instead of hanging forever on the first request.
#[tokio::test(start_paused = true)]
async fn a_swallowed_request_fails_after_thirty_seconds_and_the_watch_ends_in_its_bound() {
    let log = Log::new();
    let l = log.clone();
    let poller = ShortPoll::new(move || {
        l.hit();
        std::future::pending::<Result<&'static str, ApiError>>()
    })
    .backoff(Backoff::new().give_up_after(secs(120)));
    let start = tokio::time::Instant::now();
    // Bounded here so that a watch that hangs fails the test, not CI.
    let end = tokio::time::timeout(secs(3600), poller.until(|s| *s == "done")).await;
    let Ok(Err(error)) = end else {
        panic!("a watch behind a silent path ends with an error");
    };
    // Retries ran out: the watch ends with the requests' own error.
    assert!(
        matches!(error, Error::AttemptTimeout { timeout, .. } if timeout == secs(30)),
        "{error:?}"
    );
    // Requests at 0, 31 s, ...: each cut at 30 s, then retried after backoff.
    let times = log.times();
    assert_eq!(times[0], secs(0));
    assert!(times[1] >= secs(30) && times[1] <= secs(32), "{times:?}");
    // The bound counts from the first failure (30 s); after it, at most one
    // more backoff (30 s at most) and one more request (30 s).
    assert!(
        start.elapsed() <= secs(30 + 120 + 30 + 30),
        "{:?}",
        start.elapsed()
    );
}

/// The default per-request timeout counts from the request's start even
/// when no policy read the clock for it (a long interval, no deadline): the
/// second request, 10 minutes in, is cut at 10 min 30 s, not at once.
#[tokio::test(start_paused = true)]
async fn the_default_request_timeout_counts_from_the_start_of_each_request() {
    let log = Log::new();
    let l = log.clone();
    let mut poller = ShortPoll::new(move || {
        let n = l.hit();
        async move {
            if n == 1 {
                Ok::<_, ApiError>(n)
            } else {
                std::future::pending().await
            }
        }
    })
    .interval(secs(600))
    .backoff(Backoff::new().max_retries(0));
    let start = tokio::time::Instant::now();
    assert_eq!(poller.next().await.unwrap().unwrap(), 1);
    let second = poller.next().await.unwrap();
    assert!(
        matches!(second, Err(Error::AttemptTimeout { .. })),
        "{second:?}"
    );
    assert_eq!(start.elapsed(), secs(630));
}

/// `attempt_timeout(Duration::MAX)` turns the default off: a request that
/// takes two hours is waited for.
#[tokio::test(start_paused = true)]
async fn attempt_timeout_max_waits_for_a_slow_request() {
    let log = Log::new();
    let mut poller = ShortPoll::new(counter(&log, secs(7200))).attempt_timeout(Duration::MAX);
    assert_eq!(poller.next().await.unwrap().unwrap(), 1);
    assert_eq!(log.times(), [secs(0)]);
}
