//! Server hints the client cannot honour end the wait honestly, on tokio's
//! paused clock: a `Retry-After` past `hint_max` or past the time left in
//! the failure bound ends it at once with that error (the hint on it); an
//! SSE `retry` is never below 100 ms.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{ApiError, ms, secs};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use pollkit::sse::Event;
use pollkit::{Backoff, Error, Poller, ShortPoll, SseStream};
use tokio::time::Instant;

type Answer = std::future::Ready<Result<u64, ApiError>>;

/// A short poll against a server that answers 429 with `Retry-After: hint`
/// for `closed` (counted from the start), then `Ok(7)`.
fn rate_limited(hint: u64, closed: u64) -> ShortPoll<impl FnMut() -> Answer + Send, Answer> {
    let start = Instant::now();
    ShortPoll::new(move || {
        std::future::ready(if start.elapsed() < secs(closed) {
            Err(ApiError::Unavailable {
                retry_after: Some(secs(hint)),
            })
        } else {
            Ok(7)
        })
    })
    .retry_after(ApiError::retry_after)
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_past_hint_max_ends_the_wait_at_once_with_that_error() {
    // `Retry-After: 3600` against the default `hint_max` of 10 min: not cut
    // to 10 min (to come back 50 minutes early and be refused again).
    let start = Instant::now();
    let end = rate_limited(3600, 3600).until(|_| true).await;
    match end {
        Err(Error::Fetch(e)) => assert_eq!(e.retry_after(), Some(secs(3600))),
        other => panic!("{other:?}"),
    }
    assert_eq!(start.elapsed(), secs(0));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_past_the_failure_bound_ends_the_wait_at_once() {
    let start = Instant::now();
    let end = rate_limited(120, 3600)
        .backoff(Backoff::new().give_up_after(secs(60)))
        .until(|_| true)
        .await;
    assert!(matches!(end, Err(Error::Fetch(_))), "{end:?}");
    assert_eq!(start.elapsed(), secs(0));
}

#[tokio::test(start_paused = true)]
async fn a_long_retry_after_within_the_bounds_is_honoured_in_full() {
    let start = Instant::now();
    let got = rate_limited(3600, 3600)
        .hint_bounds(secs(1), secs(7200))
        .backoff(Backoff::new().give_up_after(secs(7200)))
        .until(|_| true)
        .await;
    assert_eq!(got.unwrap(), 7);
    assert!(start.elapsed() >= secs(3600), "{:?}", start.elapsed());
}

type Body = BoxStream<'static, Result<Vec<u8>, ApiError>>;

#[tokio::test(start_paused = true)]
async fn a_zero_retry_field_cannot_spin_even_with_a_zero_hint_floor() {
    // Every connection says `retry: 0`, delivers one event and ends.
    let connects = Arc::new(AtomicUsize::new(0));
    let seen = connects.clone();
    let start = Instant::now();
    let events: Vec<Event> = SseStream::new(move |_last: Option<String>| {
        seen.fetch_add(1, Ordering::SeqCst);
        let body: Body = stream::iter([Ok(b"retry: 0\ndata: x\n\n".to_vec())]).boxed();
        std::future::ready(Ok::<_, ApiError>(body))
    })
    .hint_bounds(secs(0), secs(600))
    .take(50)
    .try_collect()
    .await
    .unwrap();
    assert_eq!(events.len(), 50);
    assert_eq!(connects.load(Ordering::SeqCst), 50);
    // 49 reconnects, each at least 100 ms after the one before.
    assert!(start.elapsed() >= ms(49 * 100), "{:?}", start.elapsed());
}
