//! A poller reads the clock only when a policy needs the time. What must not
//! change with that: a request is timed from its start, including work its
//! future does synchronously in its first poll (a blocking client inside
//! `block_in_place`, a slow parser). On the paused clock, `synchronous_work`
//! stands in for that work: it moves the clock forward inside a poll.

use crate::common;

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Log, ms, secs};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Error, Jitter, LongPoll, Poller, ShortPoll, Stats};

/// A request that spends `work` in its first poll (the clock moves on while
/// it runs, as a blocking call's would) and then ends with `then`, or never
/// if `then` is `None`.
struct SynchronousWork<T> {
    work: Option<Duration>,
    then: Option<T>,
}

fn synchronous_work<T: Unpin>(work: Duration, then: Option<T>) -> SynchronousWork<T> {
    SynchronousWork {
        work: Some(work),
        then,
    }
}

impl<T: Unpin> Future for SynchronousWork<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(work) = self.work.take() {
            // `advance` moves the paused clock at its first poll.
            let _ = pin!(tokio::time::advance(work)).poll(cx);
        }
        match self.then.take() {
            Some(value) => Poll::Ready(value),
            None => Poll::Pending,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_reply_that_took_synchronous_work_is_not_quick() {
    // Wait 1 s: a reply under 100 ms without progress would be "quick" and
    // back off. These take 150 ms, all of it inside their first poll.
    let log = Log::new();
    let l = log.clone();
    let mut poller = LongPoll::new(move |_: Request<u64>| {
        l.hit();
        synchronous_work(
            ms(150),
            Some(Ok::<_, std::io::Error>(Reply::<u64, u64>::unchanged())),
        )
    })
    .wait(secs(1));
    let ended = tokio::time::timeout(ms(1_400), poller.next()).await;
    assert!(ended.is_err(), "unchanged replies yield nothing");
    // Back to back, every 150 ms: none of them was taken for quick.
    assert_eq!(
        log.millis()[..10],
        [0, 150, 300, 450, 600, 750, 900, 1050, 1200, 1350]
    );
}

#[tokio::test(start_paused = true)]
async fn a_path_cut_after_synchronous_work_is_still_learned() {
    let stats = Stats::new();
    let mut calls = 0;
    let mut poller = LongPoll::new(move |req: Request<u64>| {
        calls += 1;
        // Two requests cut at 1.1 s by a proxy, then the lowered wait works.
        let reply = if calls <= 2 {
            Err(std::io::Error::other("502 from the proxy"))
        } else {
            Ok(Reply::changed(calls, calls))
        };
        let work = if calls <= 2 {
            ms(1_100)
        } else {
            req.wait() / 2
        };
        synchronous_work(work, Some(reply))
    })
    .stats(stats.clone());
    assert_eq!(poller.next().await.unwrap().unwrap(), 3);
    assert_eq!(
        stats.waits_lowered(),
        1,
        "two cuts at 1.1 s teach the limit"
    );
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_counts_the_first_polls_work() {
    // 300 ms of work in the first poll, then the request hangs: the 500 ms
    // limit ends it 500 ms after it started, not 500 ms after it first waited.
    let log = Log::new();
    let l = log.clone();
    let end = ShortPoll::new(move || {
        l.hit();
        synchronous_work::<Result<(), std::io::Error>>(ms(300), None)
    })
    .attempt_timeout(ms(500))
    .backoff(Backoff::new().jitter(Jitter::None))
    .max_attempts(2)
    .until(|_| true)
    .await;
    assert!(
        matches!(end, Err(Error::Exhausted { attempts: 2, .. })),
        "{end:?}"
    );
    // Cut at 500 ms, retried 1 s later.
    assert_eq!(log.millis(), [0, 1_500]);
}

#[tokio::test(start_paused = true)]
async fn the_final_grace_counts_the_first_polls_work() {
    // The deadline is at 200 ms; the request started at 0 s may run 5 s
    // past it, its first poll's second of work included.
    let start = tokio::time::Instant::now();
    let end = ShortPoll::new(|| synchronous_work::<Result<(), std::io::Error>>(secs(1), None))
        .timeout(ms(200))
        .until(|_| true)
        .await;
    assert!(matches!(end, Err(Error::Timeout { .. })), "{end:?}");
    assert_eq!(start.elapsed(), ms(5_200));
}

#[tokio::test(start_paused = true)]
async fn poll_after_is_asked_only_when_its_hint_is_used() {
    // The same status and cursor at once, every time: after the first reply
    // (progress) each is a quick reply without progress, which backs off
    // whatever the hint says, so the hint is not asked for.
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a = asked.clone();
    let statuses: Vec<u64> = LongPoll::new(|_: Request<u64>| async {
        Ok::<_, std::io::Error>(Reply::changed(7u64, 1u64))
    })
    .poll_after(move |_| {
        a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        None
    })
    .take(4)
    .map(|s| s.unwrap())
    .collect()
    .await;
    assert_eq!(statuses, [7, 7, 7, 7]);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
}
