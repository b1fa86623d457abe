//! The public API as a user meets it: auto traits, type erasure, the `Fetch`
//! trait, names that coexist with the stream extension traits, termination
//! (`FusedFuture`, `FusedStream`).

use crate::common;

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

/// Termination: the combinators are `FusedFuture`s and `FusedStream`s, and
/// drop their poller (and any connection it holds) at their last item.
mod fused {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::FusedFuture;
    use futures::stream::FusedStream;
    use futures::{Stream, StreamExt};
    use pollkit::{Error, Poller, ShortPoll};

    use super::common::{ApiError, DropFlag, secs};

    /// A poller that answers 1, 2, 3... and sets `dropped` when it is dropped.
    fn counting(
        dropped: &Arc<AtomicUsize>,
    ) -> impl Poller<Status = u8, Error = ApiError> + Unpin + Send + use<> {
        let flag = DropFlag(Arc::clone(dropped));
        let mut n = 0;
        ShortPoll::new(move || {
            let _held = &flag;
            n += 1;
            std::future::ready(Ok::<u8, ApiError>(n))
        })
        .interval(secs(1))
    }

    async fn resolves_then_stays_pending<F>(mut fut: F, dropped: &AtomicUsize)
    where
        F: FusedFuture<Output = Result<u8, Error<ApiError>>> + Unpin,
    {
        assert!(!fut.is_terminated());
        assert_eq!((&mut fut).await.unwrap(), 3);
        assert!(fut.is_terminated());
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the poller is dropped at once"
        );
        // Polled again: pending, never a panic (as futures-util's `Fuse`).
        assert!(futures::poll!(&mut fut).is_pending());
        assert!(fut.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn futures_drop_the_poller_when_they_resolve_and_stay_pending_after() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let until = counting(&dropped).until(|n| *n == 3);
        assert!(until.get_ref().is_some());
        let mut until = until;
        resolves_then_stays_pending(&mut until, &dropped).await;
        assert!(until.get_ref().is_none());

        let dropped = Arc::new(AtomicUsize::new(0));
        let stable = counting(&dropped).until_stable(2, |n| *n >= 2);
        resolves_then_stays_pending(stable, &dropped).await;

        let dropped = Arc::new(AtomicUsize::new(0));
        let held = counting(&dropped).until_held(secs(1), |n| *n >= 2);
        resolves_then_stays_pending(held, &dropped).await;

        // An error ends them the same way.
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut failed = counting(&dropped)
            .fail_with(|n| (*n == 2).then_some(ApiError::NotFound))
            .until(|_| false);
        assert!(matches!((&mut failed).await, Err(Error::Failed(_))));
        assert!(failed.is_terminated());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn fail_with_drops_the_poller_at_its_error_and_ends() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut s = counting(&dropped).fail_with(|n| (*n == 2).then_some(ApiError::NotFound));
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        assert!(!s.is_terminated());
        assert!(matches!(s.next().await, Some(Err(Error::Failed(_)))));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "dropped before the stream is"
        );
        assert!(s.is_terminated());
        assert_eq!(s.size_hint(), (0, Some(0)));
        assert!(s.next().await.is_none());
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn try_map_status_drops_the_poller_at_its_error_and_ends() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut s = counting(&dropped).try_map_status(|n| {
            if n < 2 {
                Ok(u32::from(n))
            } else {
                Err(ApiError::NotFound)
            }
        });
        assert_eq!(s.next().await.unwrap().unwrap(), 1);
        assert!(!s.is_terminated());
        assert!(matches!(
            s.next().await,
            Some(Err(Error::Fetch(ApiError::NotFound)))
        ));
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "dropped before the stream is"
        );
        assert!(s.is_terminated());
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_poller_error_passes_through_and_ends_them_too() {
        let failing = || {
            ShortPoll::new(|| std::future::ready(Err::<u8, _>(ApiError::NotFound)))
                .retry_if(|_| false)
        };
        let mut s = failing().fail_with(|_| None);
        assert!(matches!(s.next().await, Some(Err(Error::Fetch(_)))));
        assert!(s.is_terminated());
        assert!(s.next().await.is_none());

        let mut s = failing().try_map_status(Ok);
        assert!(matches!(s.next().await, Some(Err(Error::Fetch(_)))));
        assert!(s.is_terminated());
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_box_poller_ends_at_an_error_or_the_end() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut boxed = counting(&dropped)
            .fail_with(|n| (*n == 2).then_some(ApiError::NotFound))
            .map_status(u32::from)
            .boxed_poller();
        assert_eq!(boxed.next().await.unwrap().unwrap(), 1);
        assert!(!boxed.is_terminated());
        assert!(boxed.next().await.unwrap().is_err());
        assert!(boxed.is_terminated());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(boxed.next().await.is_none());

        // A stream that ends without an error.
        let mut boxed = futures::stream::iter([Ok::<u8, Error<ApiError>>(1)]).boxed_poller();
        assert_eq!(boxed.next().await.unwrap().unwrap(), 1);
        assert!(!boxed.is_terminated());
        assert!(boxed.next().await.is_none());
        assert!(boxed.is_terminated());
        assert_eq!(boxed.size_hint(), (0, Some(0)));
    }

    #[tokio::test(start_paused = true)]
    async fn map_status_and_changes_are_fused_as_their_poller() {
        let limited = || {
            let mut n = 0;
            ShortPoll::new(move || {
                n += 1;
                std::future::ready(Ok::<u8, ApiError>(n))
            })
            .max_attempts(1)
        };
        let mut mapped = limited().map_status(u32::from);
        assert_eq!(mapped.next().await.unwrap().unwrap(), 1);
        assert!(!mapped.is_terminated());
        assert!(mapped.next().await.unwrap().is_err());
        assert!(mapped.is_terminated());

        let mut changes = limited().changes();
        assert_eq!(changes.next().await.unwrap().unwrap(), 1);
        assert!(changes.next().await.unwrap().is_err());
        assert!(changes.is_terminated());
    }

    #[tokio::test(start_paused = true)]
    async fn they_sit_in_a_select_loop() {
        // `complete` fires once both are terminated: neither is polled after
        // its end.
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut job = counting(&dropped).until(|n| *n == 3);
        let mut feed = counting(&dropped)
            .fail_with(|n| (*n == 4).then_some(ApiError::NotFound))
            .map_status(u32::from);
        let (mut answer, mut items) = (None, Vec::new());
        let looped = tokio::time::timeout(secs(60), async {
            loop {
                futures::select! {
                    r = job => answer = Some(r.unwrap()),
                    item = feed.next() => items.extend(item.map(|i| i.is_ok())),
                    complete => break,
                }
            }
        });
        looped.await.expect("the loop completes");
        assert_eq!(answer, Some(3));
        assert_eq!(items, [true, true, true, false]);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn combinators_reach_their_poller_for_a_checkpoint() {
    use futures::StreamExt;
    use pollkit::long::{Reply, Request};
    let fetch = |req: Request<u64>| {
        let next = req.cursor().copied().unwrap_or(0) + 1;
        async move { Ok::<_, std::io::Error>(Reply::changed(next, next)) }
    };
    let mut mapped = pollkit::LongPoll::new(fetch).map_status(|n| n * 10);
    assert_eq!(mapped.next().await.unwrap().unwrap(), 10);
    assert_eq!(mapped.get_ref().checkpoint().cursor(), Some(&1));
    let mut checked = pollkit::LongPoll::new(fetch).try_map_status(|n| Ok(n + 1));
    assert_eq!(checked.next().await.unwrap().unwrap(), 2);
    assert_eq!(
        checked.get_ref().map(|p| p.checkpoint().attempts()),
        Some(1)
    );
    let inner = mapped.into_inner();
    assert_eq!(inner.checkpoint().cursor(), Some(&1));
}

/// Patterns as a user writes them against the variants and types that are
/// `#[non_exhaustive]`: with `..` and a final `_`, they keep compiling when
/// a later release adds a field or a variant (without them, they do not
/// compile even today: see the `compile_fail` examples on `pollkit::Error`).
#[test]
fn user_patterns_with_rest_keep_compiling() {
    fn describe(e: &Error<ApiError>) -> String {
        match e {
            Error::Fetch(e) | Error::Failed(e) => format!("failed: {e}"),
            Error::Timeout {
                elapsed, attempts, ..
            } => format!("timeout {}s {attempts}", elapsed.as_secs()),
            Error::Exhausted {
                attempts,
                last_error: Some(_),
                ..
            } => format!("exhausted {attempts} failing"),
            Error::Exhausted { attempts, .. } => format!("exhausted {attempts}"),
            Error::AttemptTimeout { timeout, .. } => format!("slow {}s", timeout.as_secs()),
            _ => "other".to_owned(),
        }
    }
    assert_eq!(describe(&Error::timeout(secs(3), 2, None)), "timeout 3s 2");
    assert_eq!(
        describe(&Error::exhausted(4, Some(ApiError::NotFound))),
        "exhausted 4 failing"
    );
    assert_eq!(describe(&Error::exhausted(4, None)), "exhausted 4");
    assert_eq!(describe(&Error::attempt_timeout(secs(9), 1)), "slow 9s");
    assert_eq!(describe(&Error::Ended), "other");

    let reply: Reply<u8, u64> = Reply::changed(7, 42);
    assert!(matches!(reply, Reply::Changed { cursor: 42, .. }));
    assert!(matches!(
        Reply::<u8, u64>::advanced(3),
        Reply::Advanced { cursor: 3, .. }
    ));

    let reservation = pollkit::Reservation::Refused;
    let slot = match reservation {
        pollkit::Reservation::At(at) => Some(at),
        _ => None,
    };
    assert!(slot.is_none());

    let signal: pollkit::sse::Signal<'_, ApiError> = pollkit::sse::Signal::Comment("ping");
    let opened = matches!(signal, pollkit::sse::Signal::Opened { attempt: 1, .. });
    assert!(!opened);
}
