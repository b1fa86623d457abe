//! Fallback's own limits (a deadline and a number of switches that span
//! every transport), and termination as `FusedStream`.

use crate::common;

use common::{ApiError, secs};
use futures::StreamExt;
use futures::stream::FusedStream;
use pollkit::{Error, Fallback, Poller, ShortPoll};
use tokio::time::Instant;

fn refused(_: Option<&u32>) -> pollkit::BoxPoller<u32, ApiError> {
    ShortPoll::new(|| async { Err::<u32, _>(ApiError::NotFound) })
        .retry_if(ApiError::is_transient)
        .boxed_poller()
}

fn counting(last: Option<&u32>) -> pollkit::BoxPoller<u32, ApiError> {
    let mut n = last.copied().unwrap_or(0);
    ShortPoll::new(move || {
        n += 1;
        async move { Ok(n) }
    })
    .interval(secs(1))
    .timeout(secs(30)) // rebuilt at every switch: cannot bound the watch
    .boxed_poller()
}

#[tokio::test(start_paused = true)]
async fn a_deadline_spans_every_switch() {
    let start = Instant::now();
    let r = Fallback::new()
        .then("refused", refused)
        .then("short", counting)
        .retry_better_after(secs(5))
        .timeout(secs(60))
        .until(|n| *n == 1_000)
        .await;
    match r {
        Err(Error::Timeout {
            elapsed, attempts, ..
        }) => {
            assert_eq!(elapsed, secs(60));
            // About one request a second on "short", one per switch on "refused".
            assert!((60..=80).contains(&attempts), "{attempts}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(start.elapsed(), secs(60));
}

#[tokio::test(start_paused = true)]
async fn max_switches_keeps_the_last_transport() {
    let mut watch = Fallback::new()
        .then("refused", refused)
        .then("short", counting)
        .retry_better_after(secs(5))
        .max_switches(1);
    for _ in 0..30 {
        watch.next().await.unwrap().unwrap();
    }
    assert_eq!(watch.switches(), 1);
    assert_eq!(watch.active(), Some("short"));
    // With no switch left, the best transport's error ends the stream.
    let mut watch = Fallback::new()
        .then("refused", refused)
        .then("short", counting)
        .max_switches(0);
    assert!(matches!(
        watch.next().await,
        Some(Err(Error::Fetch(ApiError::NotFound)))
    ));
    assert!(watch.is_terminated());
    assert!(watch.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn strategies_know_when_they_are_terminated() {
    let mut poller = ShortPoll::new(|| async { Err::<u8, _>(ApiError::NotFound) })
        .retry_if(ApiError::is_transient);
    assert!(!poller.is_terminated());
    assert!(poller.next().await.unwrap().is_err());
    assert!(poller.is_terminated());
    // `select!` needs no `.fuse()`.
    let mut a = ShortPoll::new(|| async { Ok::<_, ApiError>(1) }).max_attempts(1);
    let mut seen = 0;
    loop {
        futures::select! {
            item = a.next() => match item {
                Some(_) => seen += 1,
                None => break,
            },
            complete => break,
        }
    }
    assert_eq!(seen, 2, "a status, then the attempt limit");
}
