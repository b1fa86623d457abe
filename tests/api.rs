//! The public API as a user meets it: auto traits, type erasure, the `Fetch`
//! trait, names that coexist with the stream extension traits.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{ApiError, secs};
use futures::{StreamExt, TryStreamExt};
use pollkit::long::{Reply, Request};
use pollkit::{BoxPoller, Error, Fetch, LongPoll, Poller, ShortPoll};

type ShortFn = fn() -> std::future::Ready<Result<u8, ApiError>>;
type LongFn = fn(Request<u64>) -> std::future::Ready<Result<Reply<u8, u64>, ApiError>>;

fn assert_send_sync_unpin<T: Send + Sync + Unpin>() {}
fn assert_send_unpin<T: Send + Unpin>() {}

#[test]
fn public_types_are_send_sync_and_unpin() {
    assert_send_sync_unpin::<ShortPoll<ShortFn, std::future::Ready<Result<u8, ApiError>>>>();
    assert_send_sync_unpin::<
        LongPoll<LongFn, std::future::Ready<Result<Reply<u8, u64>, ApiError>>, u8, u64>,
    >();
    assert_send_sync_unpin::<Error<ApiError>>();
    assert_send_sync_unpin::<pollkit::Jitter>();
    assert_send_sync_unpin::<pollkit::Backoff>();
    assert_send_sync_unpin::<Request<String>>();
    assert_send_sync_unpin::<Reply<String, String>>();
    assert_send_unpin::<BoxPoller<u8, ApiError>>();
}

#[test]
fn pollers_are_unpin_even_when_the_users_future_is_not() {
    // An async block is !Unpin; `.next()` still works without pinning.
    fn poller() -> impl Poller<Status = u8, Error = ApiError> + Unpin + Send {
        ShortPoll::new(|| async { Ok(1) })
    }
    fn assert_unpin<T: Unpin>(_: &T) {}
    assert_unpin(&poller());
    assert_unpin(&poller().changes());
}

#[tokio::test(start_paused = true)]
async fn the_issue_snippet_compiles_and_runs() {
    #[derive(Clone, PartialEq, Debug)]
    struct Status {
        percent: u64,
    }
    impl Status {
        fn is_completed(&self) -> bool {
            self.percent == 100
        }
    }
    let mut p = 0;
    let mut updates = ShortPoll::new(move || {
        p += 50;
        let s = Status { percent: p };
        async move { Ok::<_, ApiError>(s) }
    })
    .interval(secs(2))
    .changes();
    let mut seen = vec![];
    while let Some(status) = updates.next().await {
        let status = status.unwrap();
        seen.push(status.percent);
        if status.is_completed() {
            break;
        }
    }
    assert_eq!(seen, [50, 100]);
}

#[tokio::test(start_paused = true)]
async fn names_coexist_with_stream_extension_traits() {
    // futures' StreamExt and TryStreamExt are in scope; so is tokio-stream's
    // method set in spirit (`timeout` on the builder is inherent and wins).
    let mut poller = ShortPoll::new(|| async { Ok::<u8, ApiError>(3) })
        .timeout(secs(10))
        .map_status(u32::from);
    let first = poller.try_next().await;
    assert_eq!(first.unwrap(), Some(3));
}

#[tokio::test(start_paused = true)]
async fn strategies_chosen_at_run_time_share_one_type() {
    for long in [false, true] {
        let poller: BoxPoller<u64, ApiError> = if long {
            LongPoll::new(|req: Request<u64>| {
                let next = req.cursor().copied().unwrap_or(0) + 1;
                async move { Ok(Reply::changed(next, next)) }
            })
            .boxed_poller()
        } else {
            let mut n = 0;
            ShortPoll::new(move || {
                n += 1;
                async move { Ok(n) }
            })
            .boxed_poller()
        };
        let r = poller.until(|n| *n == 3).await;
        assert_eq!(r.unwrap(), 3);
    }
}

struct Jobs {
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl Fetch for Jobs {
    type Status = u32;
    type Error = ApiError;
    async fn fetch(&self, _: ()) -> Result<u32, ApiError> {
        Ok(self.calls.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

struct Watch;

#[async_trait::async_trait]
impl Fetch<Request<u64>> for Watch {
    type Status = Reply<&'static str, u64>;
    type Error = ApiError;
    async fn fetch(&self, req: Request<u64>) -> Result<Self::Status, ApiError> {
        Ok(match req.cursor() {
            None => Reply::changed("running", 1),
            Some(_) => Reply::changed("done", 2),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_transport_written_as_a_type_and_held_as_a_trait_object() {
    let jobs = Arc::new(Jobs {
        calls: AtomicU32::new(0),
    });
    let transport: Box<dyn Fetch<Status = u32, Error = ApiError>> = Box::new(Arc::clone(&jobs));
    let start = tokio::time::Instant::now();
    let r = ShortPoll::from_fetch(transport)
        .interval(secs(5))
        .until(|n| *n == 3)
        .await;
    assert_eq!(r.unwrap(), 3);
    assert_eq!(start.elapsed(), secs(10));
    assert_eq!(jobs.calls.load(Ordering::SeqCst), 3);

    let transport: Arc<
        dyn Fetch<Request<u64>, Status = Reply<&'static str, u64>, Error = ApiError>,
    > = Arc::new(Watch);
    let r = LongPoll::from_fetch(transport)
        .until(|s| *s == "done")
        .await;
    assert_eq!(r.unwrap(), "done");
}

#[cfg(feature = "backoff")]
#[tokio::test(start_paused = true)]
async fn any_backoff_crate_policy_can_space_retries() {
    use backoff::backoff::Constant;
    use std::time::Duration;
    let log = common::Log::new();
    let l = log.clone();
    let r = ShortPoll::new(move || {
        let n = l.hit();
        async move {
            if n < 4 {
                Err(ApiError::Unavailable { retry_after: None })
            } else {
                Ok(n)
            }
        }
    })
    .backoff_policy(Constant::new(Duration::from_secs(3)))
    .until(|_| true)
    .await;
    assert_eq!(r.unwrap(), 4);
    assert_eq!(log.secs(), [0, 3, 6, 9]);

    // A policy that gives up ends polling with the last error.
    struct GiveUp;
    impl backoff::backoff::Backoff for GiveUp {
        fn next_backoff(&mut self) -> Option<Duration> {
            None
        }
    }
    let r = ShortPoll::new(|| async { Err::<u8, _>(ApiError::NotFound) })
        .backoff_policy(GiveUp)
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::NotFound))));
}

#[tokio::test(start_paused = true)]
async fn every_provided_method_resolves_with_all_stream_extension_traits_in_scope() {
    #[allow(unused_imports)]
    use futures::{StreamExt as _, TryStreamExt as _};
    #[allow(unused_imports)]
    use tokio_stream::StreamExt as _;

    let poller = || ShortPoll::new(|| async { Ok::<u8, ApiError>(3) });
    assert_eq!(poller().until(|n| *n == 3).await.unwrap(), 3);
    assert_eq!(poller().until_stable(2, |n| *n == 3).await.unwrap(), 3);
    assert_eq!(poller().until_held(secs(1), |n| *n == 3).await.unwrap(), 3);
    assert_eq!(poller().changes().until(|n| *n == 3).await.unwrap(), 3);
    assert_eq!(
        poller()
            .map_status(u32::from)
            .until(|n| *n == 3)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        poller()
            .try_map_status(Ok)
            .until(|n| *n == 3)
            .await
            .unwrap(),
        3
    );
    assert!(matches!(
        poller()
            .fail_with(|_| Some(ApiError::NotFound))
            .until(|_| true)
            .await,
        Err(Error::Failed(ApiError::NotFound))
    ));
    assert_eq!(poller().boxed_poller().until(|n| *n == 3).await.unwrap(), 3);
}
