//! Auto traits of the public types, as futures-util's `tests/auto_traits.rs`:
//! with `Send` inputs every poller, combinator and future is `Send` (so it can
//! be spawned on a multi-threaded runtime), and `Unpin` and `Sync` where it
//! promises to be. The user's hooks need only be `Send`: a hook that captures
//! a `Cell` (`Send`, not `Sync`) still gives a poller that is `Send + Sync`.

use crate::common;

use std::cell::Cell;
use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::ApiError;
use pollkit::long::{Reply, Request};
use pollkit::{
    Backoff, BoxPoller, Changes, Checkpoint, FailWith, Jitter, LongPoll, MapStatus, Poller,
    ShortPoll, SseStream, TryMapStatus, Until, UntilHeld, UntilStable,
};

fn send_sync_unpin<T: Send + Sync + Unpin>() {}
fn send_unpin<T: Send + Unpin>() {}
fn send_sync_unpin_val<T: Send + Sync + Unpin>(_: &T) {}
fn send_unpin_val<T: Send + Unpin>(_: &T) {}
fn send_static_val<T: Send + 'static>(_: &T) {}

type ShortFn = fn() -> Ready<Result<u8, ApiError>>;
type Short = ShortPoll<ShortFn, Ready<Result<u8, ApiError>>>;
type LongFn = fn(Request<u64>) -> Ready<Result<Reply<u8, u64>, ApiError>>;
type Long = LongPoll<LongFn, Ready<Result<Reply<u8, u64>, ApiError>>, u8, u64>;
type Body = futures::stream::Iter<std::vec::IntoIter<Result<&'static [u8], ApiError>>>;
type SseFn = fn(Option<String>) -> Ready<Result<Body, ApiError>>;
type Sse = SseStream<SseFn, Ready<Result<Body, ApiError>>, Body>;

type Pred = fn(&u8) -> bool;

#[test]
fn strategies() {
    send_sync_unpin::<Short>();
    send_sync_unpin::<Long>();
    send_sync_unpin::<Sse>();
}

#[test]
fn combinators() {
    send_sync_unpin::<Changes<Short>>();
    send_sync_unpin::<MapStatus<Short, fn(u8) -> u16>>();
    send_sync_unpin::<TryMapStatus<Short, fn(u8) -> Result<u16, ApiError>>>();
    send_sync_unpin::<FailWith<Short, fn(&u8) -> Option<ApiError>>>();
    send_sync_unpin::<Until<Short, Pred>>();
    send_sync_unpin::<UntilStable<Short, Pred>>();
    send_sync_unpin::<UntilHeld<Short, Pred>>();
    send_sync_unpin::<Until<Long, Pred>>();
    type Accept = fn(Result<&u8, &ApiError>) -> pollkit::Verdict<(), ApiError>;
    send_sync_unpin::<pollkit::UntilResult<Short, Accept>>();
    send_sync_unpin::<pollkit::UntilResult<Short, Accept, pollkit::KeepLast<u8>>>();
    send_sync_unpin::<Until<Short, Pred, pollkit::KeepLast<u8>>>();
    send_sync_unpin::<Until<MapStatus<Sse, fn(pollkit::sse::Event) -> u8>, Pred>>();
    // Type-erased: `Send` only, as futures' `BoxStream`.
    send_unpin::<BoxPoller<u8, ApiError>>();
    send_unpin::<Until<BoxPoller<u8, ApiError>, Pred>>();
}

#[test]
fn nameable_pollers() {
    // Their boxed closures are `Send` only.
    send_unpin::<pollkit::DynShortPoll<u8, ApiError>>();
    send_unpin::<pollkit::DynLongPoll<u8, u64, ApiError>>();
    send_unpin::<pollkit::DynSseStream<bytes::Bytes, ApiError>>();
    send_unpin::<Until<pollkit::DynShortPoll<u8, ApiError>, Pred>>();
}

#[test]
fn values_and_policies() {
    send_sync_unpin::<pollkit::Error<ApiError>>();
    send_sync_unpin::<pollkit::Failed<u8, ApiError>>();
    send_sync_unpin::<pollkit::Verdict<u8, ApiError>>();
    send_sync_unpin::<Checkpoint>();
    send_sync_unpin::<Checkpoint<String>>();
    send_sync_unpin::<Backoff>();
    send_sync_unpin::<pollkit::Budget>();
    send_sync_unpin::<pollkit::Cadence>();
    send_sync_unpin::<Jitter>();
    send_sync_unpin::<pollkit::Stats>();
    send_sync_unpin::<pollkit::Retry<'static, ApiError>>();
    send_unpin::<pollkit::Reservation>();
    send_sync_unpin::<Request<String>>();
    send_sync_unpin::<Reply<String, String>>();
    send_sync_unpin::<pollkit::sse::Event>();
    send_sync_unpin::<pollkit::sse::Parser>();
    send_sync_unpin::<pollkit::sse::Error>();
    send_sync_unpin::<pollkit::sse::Reconnect>();
    send_sync_unpin::<pollkit::sse::Signal<'static, ApiError>>();
    send_sync_unpin::<pollkit::sse::Cause<'static, ApiError>>();
    send_unpin::<pollkit::Fallback<u8, ApiError>>();
}

#[cfg(feature = "hub")]
#[test]
fn hub() {
    send_sync_unpin::<pollkit::Hub<u8, u8, ApiError>>();
    send_unpin::<pollkit::Watch<u8, u8, ApiError>>();
}

/// A hook's state that is `Send` but not `Sync`.
fn counter() -> Cell<u32> {
    Cell::new(0)
}

/// Backoff short enough for a real clock (paused time needs a current-thread
/// runtime, and these tests are about the other kind).
fn quick() -> Backoff {
    Backoff::new()
        .base(Duration::from_millis(1))
        .max_delay(Duration::from_millis(1))
        .jitter(Jitter::None)
}

/// A fetch that fails once with a transient error, then answers `Ok`.
fn fails_once() -> (
    Arc<AtomicU32>,
    impl Fn() -> bool + Send + Sync + Clone + 'static,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    (calls, move || c.fetch_add(1, Ordering::SeqCst) > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_poll_with_non_sync_hooks_is_spawned() {
    let (calls, ok) = fails_once();
    let retries = counter();
    let hinted = counter();
    let observed = counter();
    let poller = ShortPoll::new(move || {
        let answer = if ok() {
            Ok(7_u8)
        } else {
            Err(ApiError::Unavailable { retry_after: None })
        };
        async move { answer }
    })
    .backoff(quick())
    .retry_if(move |e: &ApiError| {
        retries.set(retries.get() + 1);
        e.is_transient()
    })
    .retry_after(move |_: &ApiError| {
        hinted.set(hinted.get() + 1);
        None
    })
    .on_retry(move |_| observed.set(observed.get() + 1));
    send_sync_unpin_val(&poller);
    let until = poller.until(|s| *s == 7);
    send_sync_unpin_val(&until);
    send_static_val(&until);
    let status = tokio::spawn(until).await.unwrap();
    assert_eq!(status.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_with_non_sync_hooks_is_spawned() {
    let (calls, ok) = fails_once();
    let retries = counter();
    let observed = counter();
    let poller = LongPoll::new(move |req: Request<u64>| {
        let next = req.cursor().copied().unwrap_or(0) + 1;
        let answer = if ok() {
            Ok(Reply::changed(7_u8, next))
        } else {
            Err(ApiError::Unavailable { retry_after: None })
        };
        async move { answer }
    })
    .backoff(quick())
    .retry_if(move |e: &ApiError| {
        retries.set(retries.get() + 1);
        e.is_transient()
    })
    .on_retry(move |_| observed.set(observed.get() + 1));
    send_sync_unpin_val(&poller);
    let until = poller.until_stable(2, |s| *s == 7);
    send_unpin_val(&until);
    send_static_val(&until);
    let status = tokio::spawn(until).await.unwrap();
    assert_eq!(status.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_with_non_sync_hooks_is_spawned() {
    let (calls, ok) = fails_once();
    let retries = counter();
    let observed = counter();
    let poller = SseStream::new(move |_last_id: Option<String>| {
        let answer = if ok() {
            Ok(futures::stream::iter([Ok::<_, ApiError>(
                &b"data: 7\n\n"[..],
            )]))
        } else {
            Err(ApiError::Unavailable { retry_after: None })
        };
        async move { answer }
    })
    // An event stream waits at least its reconnection time (100 ms at least).
    .reconnect_time(Duration::from_millis(100))
    .jitter(Jitter::None)
    .backoff(quick())
    .retry_if(move |e: &ApiError| {
        retries.set(retries.get() + 1);
        e.is_transient()
    })
    .on_retry(move |_| observed.set(observed.get() + 1))
    .map_status(|event| event.data().parse::<u8>().unwrap_or(0));
    send_sync_unpin_val(&poller);
    let until = poller.until(|s| *s == 7);
    send_unpin_val(&until);
    send_static_val(&until);
    let status = tokio::spawn(until).await.unwrap();
    assert_eq!(status.unwrap(), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_combinator_over_a_non_sync_hook_is_spawned() {
    let make = || {
        let seen = counter();
        ShortPoll::new(|| async { Ok::<u8, ApiError>(7) }).retry_if(move |e: &ApiError| {
            seen.set(seen.get() + 1);
            e.is_transient()
        })
    };
    let futures = [
        tokio::spawn(make().until(|s| *s == 7)),
        tokio::spawn(make().until_stable(1, |s| *s == 7)),
        tokio::spawn(make().until_held(Duration::ZERO, |s| *s == 7)),
        tokio::spawn(make().changes().until(|s| *s == 7)),
        tokio::spawn(make().fail_with(|_| None).until(|s| *s == 7)),
        tokio::spawn(make().map_status(|s| s).until(|s| *s == 7)),
        tokio::spawn(make().try_map_status(Ok).until(|s| *s == 7)),
        tokio::spawn(make().boxed_poller().until(|s| *s == 7)),
    ];
    for f in futures {
        assert_eq!(f.await.unwrap().unwrap(), 7);
    }
}
