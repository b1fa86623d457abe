//! Setters called after the first poll take effect from the next request,
//! by one rule for every strategy (see the `builder` docs): `timeout` still
//! counts from the first poll, `seed` restarts the sequence, `resume`
//! replaces what was spent.

use crate::common;

use common::{ApiError, Log, secs};
use futures::StreamExt;
use pollkit::{Checkpoint, Error, Jitter, Poller, ShortPoll};
use tokio::time::Instant;

fn counter(log: &Log) -> impl FnMut() -> std::future::Ready<Result<usize, ApiError>> + use<> {
    let log = log.clone();
    move || std::future::ready(Ok(log.hit()))
}

#[tokio::test(start_paused = true)]
async fn a_timeout_set_after_the_first_poll_counts_from_the_first_poll() {
    let log = Log::new();
    let start = Instant::now();
    let mut poller = ShortPoll::new(counter(&log)).interval(secs(10));
    poller.next().await.unwrap().unwrap();
    poller.next().await.unwrap().unwrap(); // at 10 s
    let r = poller.timeout(secs(25)).until(|_| false).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert_eq!(start.elapsed(), secs(25));
    assert_eq!(log.secs(), [0, 10, 20, 25]);
}

#[tokio::test(start_paused = true)]
async fn a_seed_set_after_the_first_poll_restarts_the_sequence() {
    let gaps = |log: &Log| -> Vec<_> { log.times().windows(2).map(|w| w[1] - w[0]).collect() };
    let (a, b) = (Log::new(), Log::new());
    let mut early = ShortPoll::new(counter(&a))
        .interval(secs(10))
        .jitter(Jitter::Full)
        .seed(7);
    early.next().await;
    let _: Vec<_> = early.take(4).collect().await;
    let mut late = ShortPoll::new(counter(&b))
        .interval(secs(10))
        .jitter(Jitter::Full);
    late.next().await;
    let _: Vec<_> = late.seed(7).take(4).collect().await;
    // The wait already planned when the seed was set keeps its draw; from
    // the next one on, the sequence is the seeded one from its start.
    let (a, b) = (gaps(&a), gaps(&b));
    assert_eq!(b[1..], a[..b.len() - 1]);
}

#[tokio::test(start_paused = true)]
async fn resume_after_the_first_poll_replaces_what_was_spent() {
    let log = Log::new();
    let mut poller = ShortPoll::new(counter(&log))
        .interval(secs(1))
        .max_attempts(5);
    poller.next().await;
    let r = poller
        .resume(Checkpoint::new(4, secs(0), None))
        .until(|_| false)
        .await;
    // 4 spent by the checkpoint: one more request, then the limit.
    assert!(
        matches!(r, Err(Error::Exhausted { attempts: 5, .. })),
        "{r:?}"
    );
    assert_eq!(log.count(), 2);
}
