//! Regression tests for bugs found in review, one per bug.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ApiError, Log, ms, secs};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Budget, Error, Jitter, LongPoll, Poller, ShortPoll, SseStream};
use tokio::time::Instant;

/// A checkpoint taken while parsed events still wait in the queue must
/// resume after the last event handed out, not the last one parsed.
#[tokio::test(start_paused = true)]
async fn sse_checkpoint_with_queued_events_loses_nothing() {
    let mut stream = SseStream::new(|_id: Option<String>| {
        let body = &b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n"[..];
        std::future::ready(Ok::<_, ApiError>(futures::stream::iter([
            Ok::<_, ApiError>(body),
        ])))
    });
    assert_eq!(stream.next().await.unwrap().unwrap().last_event_id(), "1");
    assert_eq!(stream.checkpoint().cursor.as_deref(), Some("1"));
    stream.next().await.unwrap().unwrap();
    stream.next().await.unwrap().unwrap();
    assert_eq!(stream.checkpoint().cursor.as_deref(), Some("3"));
}

/// LongPoll's wait + margin must not carry a request far past the deadline.
#[tokio::test(start_paused = true)]
async fn long_poll_requests_end_within_the_grace_after_the_deadline() {
    let start = Instant::now();
    let r = LongPoll::new(|_req: Request<u64>| {
        std::future::pending::<Result<Reply<(), u64>, ApiError>>()
    })
    .wait(secs(60))
    .timeout(secs(60))
    .until(|_| true)
    .await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert_eq!(start.elapsed(), secs(65));
}

/// A long per-request timeout must not outlive the deadline either, and a
/// request cut by the deadline reports `Timeout`, not `AttemptTimeout`.
#[tokio::test(start_paused = true)]
async fn a_request_cut_by_the_deadline_reports_the_deadline() {
    let start = Instant::now();
    let r = ShortPoll::new(std::future::pending::<Result<(), ApiError>>)
        .attempt_timeout(secs(300))
        .timeout(secs(10))
        .backoff(Backoff::new().max_retries(0))
        .until(|_| true)
        .await;
    match r {
        Err(Error::Timeout {
            elapsed, attempts, ..
        }) => assert_eq!((elapsed, attempts), (secs(15), 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(start.elapsed(), secs(15));
}

/// An adaptive floor of zero must not collapse the interval to zero forever.
#[tokio::test(start_paused = true)]
async fn adaptive_pacing_with_a_zero_floor_does_not_spin() {
    let log = Log::new();
    let l = log.clone();
    let mut n = 0_u32;
    let _ = ShortPoll::new(move || {
        l.hit();
        n += 1;
        // Changes ten times (driving the interval to the floor), then settles.
        std::future::ready(Ok::<_, ApiError>(n.min(10)))
    })
    .interval(ms(100))
    .adaptive(Duration::ZERO, secs(10))
    .take(40)
    .collect::<Vec<_>>()
    .await;
    let last = *log.times().last().unwrap();
    assert!(last > secs(10), "40 requests took only {last:?}");
}

/// Decorrelated jitter must spread the very first interval across pollers.
#[tokio::test(start_paused = true)]
async fn decorrelated_jitter_spreads_the_first_interval() {
    let mut firsts = Vec::new();
    for seed in 0..5 {
        let log = Log::new();
        let l = log.clone();
        let _ = ShortPoll::new(move || {
            l.hit();
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .interval(secs(60))
        .jitter(Jitter::Decorrelated)
        .seed(seed)
        .take(2)
        .collect::<Vec<_>>()
        .await;
        firsts.push(log.times()[1]);
    }
    firsts.dedup();
    assert!(firsts.len() > 1, "{firsts:?}");
    assert!(
        firsts.iter().all(|d| *d >= secs(30) && *d <= secs(90)),
        "{firsts:?}"
    );
}

/// A budget slot past a poller's deadline is not taken from other pollers.
#[tokio::test(start_paused = true)]
async fn a_budget_slot_past_the_deadline_is_left_for_others() {
    let budget = Budget::every(secs(100));
    let starts: Arc<Mutex<Vec<(char, Duration)>>> = Arc::default();
    let start = Instant::now();
    let poller = |name: char, deadline: Option<Duration>| {
        let starts = starts.clone();
        let p = ShortPoll::new(move || {
            starts.lock().unwrap().push((name, start.elapsed()));
            std::future::ready(Ok::<_, ApiError>(()))
        })
        .budget(budget.clone());
        let p = match deadline {
            Some(d) => p.timeout(d),
            None => p,
        };
        p.until(|_| true)
    };
    let (a, b, c) = tokio::join!(
        poller('a', Some(secs(10))),
        poller('b', Some(secs(10))),
        poller('c', None)
    );
    assert!(a.is_ok() && c.is_ok());
    // a takes the slot at 0; b's slot (100 s) is past its deadline, so it
    // ends at its deadline without a request over budget and without taking
    // the slot; c gets the slot at 100 s, not 200 s.
    assert!(
        matches!(b, Err(pollkit::Error::Timeout { attempts: 0, .. })),
        "{b:?}"
    );
    let mut starts = starts.lock().unwrap().clone();
    starts.sort_by_key(|s| s.1);
    assert_eq!(starts, [('a', secs(0)), ('c', secs(100))]);
}
