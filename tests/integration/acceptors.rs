//! Acceptors (`until_result`), errors that mean "not yet" (`pending_if`)
//! and the last status on a failed wait (`with_last_status`), on the paused
//! clock.

use crate::common;

use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{ApiError, Log, secs};
use pollkit::long::Reply;
use pollkit::{Backoff, Error, Fallback, Jitter, LongPoll, Poller, ShortPoll, SseStream, Verdict};
use tokio::time::Instant;

const NF: Result<u8, ApiError> = Err(ApiError::NotFound);
const DOWN: Result<u8, ApiError> = Err(ApiError::Unavailable { retry_after: None });

/// A fetch that answers `answers` in order (the last one from then on),
/// logging the instant of each request.
fn script(
    log: &Log,
    answers: Vec<Result<u8, ApiError>>,
) -> impl FnMut() -> Ready<Result<u8, ApiError>> + Send + use<> {
    let log = log.clone();
    move || {
        let n = log.hit();
        let answer = answers.get(n - 1).or(answers.last()).cloned();
        std::future::ready(answer.unwrap_or(NF))
    }
}

fn no_jitter() -> Backoff {
    Backoff::new().jitter(Jitter::None)
}

// ---- pending_if: an error that means "not yet" is not a failure ----

#[tokio::test(start_paused = true)]
async fn pending_errors_do_not_count_toward_max_retries() {
    let log = Log::new();
    let mut answers = vec![NF; 6];
    answers.push(Ok(1));
    let r = ShortPoll::new(script(&log, answers))
        .interval(secs(10))
        .backoff(no_jitter().max_retries(2))
        .pending_if(|e| *e == ApiError::NotFound)
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), 1);
    // At the interval, as after a success: no backoff.
    assert_eq!(log.secs(), [0, 10, 20, 30, 40, 50, 60]);
}

#[tokio::test(start_paused = true)]
async fn without_pending_if_the_same_404s_exhaust_the_retries() {
    // The control for the test above: the same answers, counted as failures.
    let log = Log::new();
    let mut answers = vec![NF; 6];
    answers.push(Ok(1));
    let r = ShortPoll::new(script(&log, answers))
        .interval(secs(10))
        .backoff(no_jitter().max_retries(2))
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::NotFound))));
    assert_eq!(log.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn pending_errors_do_not_count_toward_the_failure_time_bound() {
    let start = Instant::now();
    let r = ShortPoll::new(move || {
        let exists = start.elapsed() >= secs(600);
        std::future::ready(if exists { Ok(1_u8) } else { NF })
    })
    .interval(secs(30))
    .backoff(no_jitter().give_up_after(secs(60)))
    .pending_if(|e| *e == ApiError::NotFound)
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 1);
    assert_eq!(start.elapsed(), secs(600));
}

#[tokio::test(start_paused = true)]
async fn a_pending_error_ends_a_failing_streak() {
    let log = Log::new();
    // Two failures, "not yet", two failures: never three failures in a row.
    let answers = vec![DOWN, DOWN, NF, DOWN, DOWN, Ok(1)];
    let r = ShortPoll::new(script(&log, answers))
        .interval(secs(10))
        .backoff(no_jitter().base(secs(1)).max_retries(2))
        .pending_if(|e| *e == ApiError::NotFound)
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), 1);
    // Backoff 1 s, 2 s; the 404 at 3 s; the interval; backoff 1 s, 2 s.
    assert_eq!(log.secs(), [0, 1, 3, 13, 14, 16]);
}

#[tokio::test(start_paused = true)]
async fn a_pending_error_is_not_the_last_error_of_a_timeout() {
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![DOWN, NF]))
        .interval(secs(10))
        .timeout(secs(60))
        .pending_if(|e| *e == ApiError::NotFound)
        .until(|_| true)
        .await;
    assert!(
        matches!(
            r,
            Err(Error::Timeout {
                last_error: None,
                ..
            })
        ),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_takes_a_quick_pending_error_as_an_empty_reply() {
    let start = Instant::now();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let r = LongPoll::new(move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        let answer = if start.elapsed() >= secs(300) {
            Ok(Reply::changed(1_u8, 1_u64))
        } else {
            Err(ApiError::NotFound)
        };
        std::future::ready(answer)
    })
    .backoff(no_jitter().max_retries(1))
    .pending_if(|e| *e == ApiError::NotFound)
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 1);
    assert!(start.elapsed() >= secs(300));
    // Backed off as quick empty replies are, not a request per instant.
    let calls = calls.load(Ordering::SeqCst);
    assert!(calls < 100, "{calls} requests");
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_reconnects_through_pending_connect_errors() {
    let log = Log::new();
    let hits = log.clone();
    let r = SseStream::new(move |_last| {
        let n = hits.hit();
        std::future::ready(if n <= 5 {
            Err(ApiError::NotFound)
        } else {
            Ok(futures::stream::iter([Ok::<_, ApiError>(
                &b"data: up\n\n"[..],
            )]))
        })
    })
    .backoff(no_jitter().max_retries(1))
    .pending_if(|e| *e == ApiError::NotFound)
    .until(|event| event.data() == "up")
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(log.count(), 6);
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_pending_error_ends_a_failing_streak() {
    // Review find: on SseStream a "not yet" answer left the failing streak
    // running, so 503, 503, 404, 503 exhausted `max_retries(2)`.
    let log = Log::new();
    let hits = log.clone();
    let r = SseStream::new(move |_last| {
        let n = hits.hit();
        std::future::ready(match n {
            1 | 2 | 4 | 5 => Err(ApiError::Unavailable { retry_after: None }),
            3 => Err(ApiError::NotFound),
            _ => Ok(futures::stream::iter([Ok::<_, ApiError>(
                &b"data: up\n\n"[..],
            )])),
        })
    })
    .backoff(no_jitter().base(secs(1)).max_retries(2))
    .pending_if(|e| *e == ApiError::NotFound)
    .until(|event| event.data() == "up")
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(log.count(), 6);
}

#[tokio::test(start_paused = true)]
async fn an_event_stream_pending_error_restarts_the_failure_time_bound() {
    // Review find: one 503, then "not yet" answers for longer than the
    // bound, then one 503 ended the watch at once: the bound still ran from
    // the first 503.
    let log = Log::new();
    let hits = log.clone();
    let r = SseStream::new(move |_last| {
        let n = hits.hit();
        std::future::ready(match n {
            1 => Err(ApiError::Unavailable { retry_after: None }),
            2..=40 => Err(ApiError::NotFound),
            41 => Err(ApiError::Unavailable { retry_after: None }),
            _ => Ok(futures::stream::iter([Ok::<_, ApiError>(
                &b"data: up\n\n"[..],
            )])),
        })
    })
    .backoff(no_jitter().base(secs(1)).give_up_after(secs(60)))
    .pending_if(|e| *e == ApiError::NotFound)
    .until(|event| event.data() == "up")
    .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(log.count(), 42);
}

// ---- until_result: statuses and errors judged by one acceptor ----

#[tokio::test(start_paused = true)]
async fn an_error_accepted_as_success_resolves_to_the_callers_value() {
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Ok(1), Ok(2), NF]))
        .interval(secs(5))
        .retry_if(ApiError::is_transient)
        .until_result(|r| match r {
            Err(ApiError::NotFound) => Verdict::Success("deleted"),
            _ => Verdict::Pending,
        })
        .await;
    assert_eq!(r.unwrap(), "deleted");
    assert_eq!(log.secs(), [0, 5, 10]);
}

#[tokio::test(start_paused = true)]
async fn a_status_judged_a_failure_is_failed_with_that_status() {
    let log = Log::new();
    let failed = ShortPoll::new(script(&log, vec![Ok(10), Ok(99), Ok(100)]))
        .until_result(|r| match r {
            Ok(&99) => Verdict::Failure(ApiError::NotFound),
            Ok(&100) => Verdict::Success(()),
            _ => Verdict::Pending,
        })
        .with_last_status()
        .await
        .unwrap_err();
    assert!(matches!(failed.error, Error::Failed(ApiError::NotFound)));
    assert_eq!(failed.last, Some(99));
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_ending_error_without_a_verdict_is_the_waits_error() {
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Ok(1), NF]))
        .retry_if(ApiError::is_transient)
        .until_result(|r: Result<&u8, &ApiError>| Verdict::<(), _>::from(r == Ok(&5)))
        .with_last_status()
        .await;
    let failed = r.unwrap_err();
    assert!(matches!(failed.error, Error::Fetch(ApiError::NotFound)));
    assert_eq!(failed.last, Some(1));
}

#[tokio::test(start_paused = true)]
async fn limits_are_not_judged() {
    let log = Log::new();
    let judged_errors = Arc::new(AtomicU32::new(0));
    let judged = Arc::clone(&judged_errors);
    let r = ShortPoll::new(script(&log, vec![DOWN]))
        .max_attempts(3)
        .until_result(move |r: Result<&u8, &ApiError>| {
            if r.is_err() {
                judged.fetch_add(1, Ordering::SeqCst);
            }
            Verdict::<(), ApiError>::Success(())
        })
        .await;
    // The failing requests were retried (transient), and the attempt
    // limit that ended them is not an answer to accept.
    assert!(
        matches!(r, Err(Error::Exhausted { attempts: 3, .. })),
        "{r:?}"
    );
    assert_eq!(judged_errors.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_acceptor_works_through_map_status_boxed_pollers_and_fallback() {
    let deleted = |r: Result<&u16, &ApiError>| match r {
        Err(ApiError::NotFound) => Verdict::Success(true),
        _ => Verdict::Pending,
    };
    let log = Log::new();
    let mapped = ShortPoll::new(script(&log, vec![Ok(1), NF]))
        .retry_if(ApiError::is_transient)
        .map_status(u16::from)
        .boxed_poller()
        .until_result(deleted)
        .await;
    assert!(mapped.unwrap());

    // Through a Fallback: a "deleted" answer ends the watch rather than
    // calling for another transport when `unusable_if` says so.
    let sse_log = Log::new();
    let short_log = Log::new();
    let (a, b) = (sse_log.clone(), short_log.clone());
    let watch = Fallback::new()
        .then("sse", move |_: Option<&u16>| {
            ShortPoll::new(script(&a, vec![Ok(1), NF]))
                .retry_if(ApiError::is_transient)
                .map_status(u16::from)
                .boxed_poller()
        })
        .then("short", move |_: Option<&u16>| {
            ShortPoll::new(script(&b, vec![Ok(1)]))
                .map_status(u16::from)
                .boxed_poller()
        })
        .unusable_if(|e| {
            e.is_transport_failure() && !matches!(e, Error::Fetch(ApiError::NotFound))
        });
    assert!(watch.until_result(deleted).await.unwrap());
    assert_eq!((sse_log.count(), short_log.count()), (2, 0));
}

// ---- with_last_status: what the wait last saw ----

#[tokio::test(start_paused = true)]
async fn a_timeout_gives_back_the_last_status() {
    let log = Log::new();
    let failed = ShortPoll::new(script(&log, vec![Ok(40), Ok(95)]))
        .interval(secs(10))
        .timeout(secs(30))
        .until(|p| *p == 100)
        .with_last_status()
        .await
        .unwrap_err();
    assert!(matches!(failed.error, Error::Timeout { attempts: 4, .. }));
    assert_eq!(failed.last, Some(95));
    // It converts back into the plain error.
    let plain: Error<ApiError> = failed.into();
    assert!(plain.ran_out());
}

#[tokio::test(start_paused = true)]
async fn a_failed_request_gives_back_the_status_before_it() {
    let log = Log::new();
    let failed = ShortPoll::new(script(&log, vec![Ok(7), Ok(8), DOWN]))
        .retry_if(|_| false)
        .until_stable(5, |_| true)
        .with_last_status()
        .await
        .unwrap_err();
    assert!(matches!(failed.error, Error::Fetch(_)));
    assert_eq!(failed.last, Some(8));
}

#[tokio::test(start_paused = true)]
async fn a_fail_with_failure_gives_back_the_status_before_the_failing_one() {
    // `fail_with` keeps the failing status to itself; the acceptor's
    // `Failure` gives it back (see the test above).
    let log = Log::new();
    let failed = ShortPoll::new(script(&log, vec![Ok(1), Ok(2), Ok(99)]))
        .fail_with(|s| (*s == 99).then_some(ApiError::NotFound))
        .until_held(secs(600), |_| true)
        .with_last_status()
        .await
        .unwrap_err();
    assert!(matches!(failed.error, Error::Failed(ApiError::NotFound)));
    assert_eq!(failed.last, Some(2));
}

#[tokio::test(start_paused = true)]
async fn an_ended_stream_gives_back_its_last_status_and_none_without_one() {
    let replay = futures::stream::iter([Ok::<u8, Error<ApiError>>(1), Ok(2)]);
    let failed = replay
        .until(|s| *s == 3)
        .with_last_status()
        .await
        .unwrap_err();
    assert!(matches!(failed.error, Error::Ended));
    assert_eq!(failed.last, Some(2));

    let empty = futures::stream::iter(Vec::<Result<u8, Error<ApiError>>>::new());
    let failed = empty.until(|_| true).with_last_status().await.unwrap_err();
    assert_eq!(failed.last, None);
}

#[tokio::test(start_paused = true)]
async fn acceptors_combine_and_the_first_decisive_one_wins() {
    // kube's `is_deleted(uid)`: gone, or replaced by another uid.
    fn gone(r: Result<&u8, &ApiError>) -> Verdict<Option<u8>, ApiError> {
        match r {
            Err(ApiError::NotFound) => Verdict::Success(None),
            _ => Verdict::Pending,
        }
    }
    let replaced = |old: u8| {
        move |r: Result<&u8, &ApiError>| match r {
            Ok(uid) if *uid != old => Verdict::Success(Some(*uid)),
            _ => Verdict::Pending,
        }
    };
    let deleted = |old: u8| {
        let replaced = replaced(old);
        move |r: Result<&u8, &ApiError>| gone(r).or_else(|| replaced(r))
    };

    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Ok(1), Ok(1), Ok(2)]))
        .until_result(deleted(1))
        .await;
    assert_eq!(r.unwrap(), Some(2));

    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Ok(1), NF]))
        .retry_if(ApiError::is_transient)
        .until_result(deleted(1))
        .await;
    assert_eq!(r.unwrap(), None);

    // Plain conditions combine inside one closure: `&&`, `||`, `!`.
    let log = Log::new();
    let r = ShortPoll::new(script(&log, vec![Ok(3), Ok(4), Ok(6), Ok(8)]))
        .until(|n| n % 2 == 0 && !(*n == 4 || *n == 6))
        .await;
    assert_eq!(r.unwrap(), 8);
}

#[test]
fn a_failed_waits_debug_never_prints_the_last_status() {
    // Review find: `Failed` derived `Debug`, so `unwrap_err()`/`{:?}` dumped
    // the status (a signed URL, body text) into the log.
    let failed = pollkit::Failed::new(
        Some("https://x/?sig=SECRET"),
        Error::Fetch(ApiError::NotFound),
    );
    let debug = format!("{failed:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(debug.contains("last: Some(..)"), "{debug}");
    let none = pollkit::Failed::<&str, _>::new(None, Error::Fetch(ApiError::NotFound));
    assert!(format!("{none:?}").contains("last: None"));
}

#[test]
fn a_failed_wait_prints_its_error_and_chains_below_it() {
    use std::error::Error as _;
    let failed = pollkit::Failed::new(Some(95_u8), Error::Fetch(ApiError::NotFound));
    // Transparent: the error's own message, then the error's own chain (the
    // user's error below it).
    assert_eq!(failed.to_string(), "request failed");
    assert_eq!(
        failed.source().map(|s| s.to_string()),
        Some("404 not found".to_string())
    );
    let plain: Error<ApiError> = failed.into_error();
    assert!(matches!(plain, Error::Fetch(ApiError::NotFound)));
}
