//! LongPoll on tokio's paused clock: cursors, waits, pacing, errors.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ApiError, DropFlag, Log, ms, secs};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Error, Jitter, LongPoll, Poller};

type Seen = Arc<Mutex<Vec<(Option<u64>, Duration)>>>;
type Answer = Result<Reply<&'static str, u64>, ApiError>;
type Pending = std::pin::Pin<Box<dyn Future<Output = Answer> + Send>>;

/// Records each request's cursor and wait, then answers the scripted reply
/// after the scripted delay.
fn scripted(
    log: &Log,
    seen: &Seen,
    script: Vec<(Duration, Answer)>,
) -> impl FnMut(Request<u64>) -> Pending + use<> {
    let (log, seen) = (log.clone(), seen.clone());
    let mut script = script.into_iter();
    move |req| {
        log.hit();
        seen.lock()
            .unwrap()
            .push((req.cursor().copied(), req.wait()));
        let (delay, reply) = script
            .next()
            .unwrap_or((Duration::MAX, Ok(Reply::unchanged())));
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            reply
        })
    }
}

#[tokio::test(start_paused = true)]
async fn threads_the_cursor_and_skips_unchanged_replies() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![
        (secs(1), Ok(Reply::changed("a", 10))),
        (secs(30), Ok(Reply::unchanged())),
        (secs(2), Ok(Reply::advanced(12))),
        (secs(3), Ok(Reply::changed("b", 15))),
        (secs(1), Ok(Reply::reset())),
        (secs(1), Ok(Reply::changed("c", 3))),
    ];
    let got: Vec<_> = LongPoll::new(scripted(&log, &seen, script))
        .rate_limit(100, ms(1))
        .take(3)
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(got, ["a", "b", "c"]);
    let cursors: Vec<_> = seen.lock().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(
        cursors,
        [None, Some(10), Some(10), Some(12), Some(15), None]
    );
    // Asked again at once after every reply.
    assert_eq!(log.secs(), [0, 1, 31, 33, 36, 37]);
}

#[tokio::test(start_paused = true)]
async fn the_wait_is_capped_by_the_deadline() {
    let (log, seen) = (Log::new(), Seen::default());
    // The server holds every request for the whole wait it is given.
    let s = seen.clone();
    let l = log.clone();
    let r = LongPoll::new(move |req: Request<u64>| {
        l.hit();
        s.lock().unwrap().push((req.cursor().copied(), req.wait()));
        let wait = req.wait();
        async move {
            tokio::time::sleep(wait).await;
            Ok::<Reply<(), u64>, ApiError>(Reply::unchanged())
        }
    })
    .wait(secs(30))
    .timeout(secs(45))
    .until(|_| true)
    .await;
    assert!(
        matches!(r, Err(Error::Timeout { attempts: 2, .. })),
        "{r:?}"
    );
    let waits: Vec<_> = seen.lock().unwrap().iter().map(|s| s.1).collect();
    assert_eq!(waits, [secs(30), secs(15)]);
    assert_eq!(log.secs(), [0, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_caught_by_the_default_request_timeout() {
    let (log, seen) = (Log::new(), Seen::default());
    let dropped = Arc::new(AtomicUsize::new(0));
    let (l, d) = (log.clone(), dropped.clone());
    let _ = seen;
    let r = LongPoll::new(move |_req: Request<u64>| {
        l.hit();
        let flag = DropFlag(d.clone());
        async move {
            let _flag = flag;
            std::future::pending::<Result<Reply<(), u64>, ApiError>>().await
        }
    })
    .wait(secs(16))
    .backoff(Backoff::new().jitter(Jitter::None).max_retries(1))
    .until(|_| true)
    .await;
    // 16 s wait + 1 s (wait/16) + 5 s margin = 22 s; backoff 1 s; 22 s
    // again: two silences in a row halve the wait (a load balancer that
    // drops idle connections), at once; 8 s + 0.5 s + 5 s of silence again
    // is the failure past `max_retries(1)`.
    match r {
        Err(Error::AttemptTimeout {
            timeout, attempts, ..
        }) => {
            assert_eq!((timeout, attempts), (ms(13_500), 3));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(log.secs(), [0, 23, 45]);
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_attempt_timeout_replaces_the_default() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![
        (secs(100), Ok(Reply::changed("late", 1))),
        (secs(1), Ok(Reply::changed("ok", 2))),
    ];
    let r = LongPoll::new(scripted(&log, &seen, script))
        .attempt_timeout(secs(3))
        .backoff(Backoff::new().jitter(Jitter::None))
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), "ok");
    assert_eq!(log.secs(), [0, 4]);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_ignores_the_wait_cannot_cause_a_busy_loop() {
    // Every reply comes at once with the same cursor: no progress, so the
    // requests back off (and a quick empty never ends polling).
    let log = Log::new();
    let l = log.clone();
    let _ = LongPoll::new(move |_req: Request<u64>| {
        l.hit();
        std::future::ready(Ok::<_, ApiError>(Reply::changed("same", 1)))
    })
    .backoff(Backoff::new().jitter(Jitter::None))
    .take(6)
    .collect::<Vec<_>>()
    .await;
    // The first reply moved the cursor (none to 1): progress, at once.
    assert_eq!(log.secs(), [0, 0, 1, 3, 7, 15]);
}

#[tokio::test(start_paused = true)]
async fn progress_is_followed_at_once_so_a_backlog_is_caught_up() {
    // 200 changes already written, one per reply: nothing waits on pollkit.
    let log = Log::new();
    let l = log.clone();
    let got: Vec<_> = LongPoll::new(move |req: Request<u64>| {
        l.hit();
        let next = req.cursor().copied().unwrap_or(0) + 1;
        std::future::ready(Ok::<_, ApiError>(Reply::changed(next, next)))
    })
    .take(200)
    .collect()
    .await;
    let got: Vec<u64> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
    assert!(log.times().iter().all(|t| t.is_zero()), "no wait at all");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_is_a_ceiling_on_every_start_jitter_or_not() {
    for jitter in [
        Jitter::None,
        Jitter::Equal,
        Jitter::Full,
        Jitter::Proportional(0.5),
    ] {
        let log = Log::new();
        let l = log.clone();
        let _ = LongPoll::new(move |req: Request<u64>| {
            l.hit();
            let next = req.cursor().copied().unwrap_or(0) + 1;
            std::future::ready(Ok::<_, ApiError>(Reply::changed(next, next)))
        })
        .rate_limit(1, secs(1))
        .jitter(jitter)
        .seed(5)
        .take(100)
        .collect::<Vec<_>>()
        .await;
        let t = log.times();
        // Over any window W: starts <= burst + W / period.
        for i in 0..t.len() {
            for j in i + 1..t.len() {
                let window = (t[j] - t[i]).as_secs_f64();
                assert!(
                    (j - i + 1) as f64 <= 1.0 + window + 1e-9,
                    "{jitter:?} {i}..{j}"
                );
            }
        }
        if jitter != Jitter::None {
            let gaps: std::collections::HashSet<_> = t.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.len() > 20, "{jitter:?}: the waits are spread");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn quick_empty_replies_back_off_but_never_end_polling() {
    let log = Log::new();
    let l = log.clone();
    let r = LongPoll::new(move |_req: Request<u64>| {
        let n = l.hit();
        std::future::ready(Ok::<Reply<usize, u64>, ApiError>(if n == 8 {
            Reply::changed(n, 1)
        } else {
            Reply::unchanged()
        }))
    })
    .backoff(Backoff::new().jitter(Jitter::None).max_retries(1))
    .until(|_| true)
    .await;
    // Backoff 1, 2, 4, 8, 16, 30, 30 although max_retries is 1: not errors.
    assert_eq!(r.unwrap(), 8);
    assert_eq!(log.secs(), [0, 1, 3, 7, 15, 31, 61, 91]);
}

#[tokio::test(start_paused = true)]
async fn a_quick_empty_reply_ends_the_error_streak() {
    // error, quick empty, error, quick empty, error, change: with
    // max_retries(2) the streak never reaches three errors in a row.
    let (log, seen) = (Log::new(), Seen::default());
    let e = || Err(ApiError::Unavailable { retry_after: None });
    let script = vec![
        (ms(0), e()),
        (ms(0), Ok(Reply::unchanged())),
        (ms(0), e()),
        (ms(0), Ok(Reply::unchanged())),
        (ms(0), e()),
        (ms(0), Ok(Reply::changed("ok", 1))),
    ];
    let r = LongPoll::new(scripted(&log, &seen, script))
        .backoff(Backoff::new().jitter(Jitter::None).max_retries(2))
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), "ok");
}

#[tokio::test(start_paused = true)]
async fn an_empty_reply_after_a_real_wait_is_asked_again_at_once() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![
        (secs(5), Ok(Reply::unchanged())),
        (secs(5), Ok(Reply::unchanged())),
        (secs(5), Ok(Reply::unchanged())),
        (ms(1500), Ok(Reply::changed("x", 1))),
    ];
    let r = LongPoll::new(scripted(&log, &seen, script))
        .wait(secs(5))
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), "x");
    assert_eq!(log.secs(), [0, 5, 10, 15]);
}

#[tokio::test(start_paused = true)]
async fn a_change_is_seen_within_one_round_trip() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![(ms(7_300), Ok(Reply::changed("done", 1)))];
    let start = tokio::time::Instant::now();
    let r = LongPoll::new(scripted(&log, &seen, script))
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap(), "done");
    assert_eq!(start.elapsed(), ms(7_300));
}

#[tokio::test(start_paused = true)]
async fn errors_are_classified_and_backed_off_like_short_polling() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![
        (
            ms(0),
            Err(ApiError::Unavailable {
                retry_after: Some(secs(7)),
            }),
        ),
        (ms(0), Err(ApiError::Unavailable { retry_after: None })),
        (ms(0), Ok(Reply::changed("a", 4))),
        (ms(0), Err(ApiError::NotFound)),
    ];
    let items: Vec<_> = LongPoll::new(scripted(&log, &seen, script))
        .retry_if(ApiError::is_transient)
        .retry_after(ApiError::retry_after)
        .backoff(Backoff::new().jitter(Jitter::None))
        .collect()
        .await;
    // The hint is waited in full and spread up to a fifth above it; the
    // unhinted error after it is the first of the backoff (1 s).
    let t = log.times();
    assert!(t[1] >= secs(7) && t[1] <= ms(8_400), "{t:?}");
    assert_eq!(t[2] - t[1], secs(1));
    assert_eq!(t[3], t[2]);
    assert!(matches!(items[0], Ok("a")));
    assert!(matches!(items[1], Err(Error::Fetch(ApiError::NotFound))));
    assert_eq!(items.len(), 2);
    // The cursor survives the errors.
    let cursors: Vec<_> = seen.lock().unwrap().iter().map(|s| s.0).collect();
    assert_eq!(cursors, [None, None, None, Some(4)]);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_changes_fail_with_and_a_starting_cursor() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![
        (secs(1), Ok(Reply::changed("queued", 1))),
        (secs(1), Ok(Reply::changed("queued", 2))),
        (secs(1), Ok(Reply::changed("failed", 3))),
    ];
    let mut poller = LongPoll::new(scripted(&log, &seen, script))
        .cursor(41)
        .max_attempts(10)
        .changes()
        .fail_with(|s| (*s == "failed").then_some(ApiError::NotFound));
    assert!(matches!(poller.next().await, Some(Ok("queued"))));
    assert!(matches!(
        poller.next().await,
        Some(Err(Error::Failed(ApiError::NotFound)))
    ));
    assert!(poller.next().await.is_none());
    assert_eq!(seen.lock().unwrap()[0].0, Some(41));

    let (log, seen) = (Log::new(), Seen::default());
    let r = LongPoll::new(scripted(
        &log,
        &seen,
        vec![(secs(1), Ok(Reply::changed("x", 1))); 5],
    ))
    .max_attempts(3)
    .until(|_| false)
    .await;
    assert!(matches!(r, Err(Error::Exhausted { attempts: 3, .. })));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_poller_cancels_the_held_request() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let until = LongPoll::new(move |_req: Request<u64>| {
        let flag = DropFlag(d.clone());
        async move {
            let _flag = flag;
            std::future::pending::<Result<Reply<(), u64>, ApiError>>().await
        }
    })
    .until(|_| true);
    assert!(tokio::time::timeout(secs(10), until).await.is_err());
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn server_hints_on_a_change_replace_the_pacing() {
    let (log, seen) = (Log::new(), Seen::default());
    let script = vec![
        (ms(0), Ok(Reply::changed("a", 1))),
        (ms(0), Ok(Reply::changed("b", 2))),
    ];
    let _ = LongPoll::new(scripted(&log, &seen, script))
        .poll_after(|_| Some(secs(4)))
        .take(2)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(log.secs(), [0, 4]);
}

#[tokio::test(start_paused = true)]
async fn a_zero_wait_cannot_spin() {
    // wait(0): every instant empty reply is quick, so the requests back off.
    let log = Log::new();
    let l = log.clone();
    let _ = LongPoll::new(move |_req: Request<u64>| {
        l.hit();
        std::future::ready(Ok::<Reply<u8, u64>, ApiError>(Reply::unchanged()))
    })
    .wait(Duration::ZERO)
    .backoff(Backoff::new().jitter(Jitter::None))
    .timeout(secs(60))
    .until(|_| true)
    .await;
    assert!(log.count() < 10, "{} requests in a minute", log.count());
}
