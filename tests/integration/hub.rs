//! The shared hub: many waiters, one poller per key.
#![cfg(feature = "hub")]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{ApiError, DropFlag, Log, secs};
use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Error, Hub, LongPoll, Poller, ShortPoll, SseStream};

type Ready = std::future::Ready<Result<usize, ApiError>>;
type Counter = ShortPoll<Box<dyn FnMut() -> Ready + Send>, Ready>;

fn counter(log: &Log) -> impl Fn() -> Counter + use<> {
    let log = log.clone();
    move || {
        let log = log.clone();
        let fetch: Box<dyn FnMut() -> Ready + Send> =
            Box::new(move || std::future::ready(Ok(log.hit())));
        ShortPoll::new(fetch).interval(secs(5))
    }
}

#[tokio::test(start_paused = true)]
async fn many_waiters_one_request_per_interval_each_with_its_own_predicate() {
    let log = Log::new();
    let hub: Hub<u32, usize, ApiError> = Hub::new();
    let make = counter(&log);
    let waiters: Vec<_> = (1..=20)
        .map(|i| hub.watch(7, &make).until(move |n| *n > i % 4))
        .collect();
    let results = futures::future::join_all(waiters).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), (i + 1) % 4 + 1);
    }
    // Four statuses were needed by the most patient waiters: four requests.
    assert_eq!(log.secs(), [0, 5, 10, 15]);
    // Everyone left: the poller stopped.
    assert_eq!(hub.pollers(), 0);
    tokio::time::sleep(secs(60)).await;
    assert_eq!(log.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_late_joiner_gets_the_latest_at_once_then_every_status() {
    let log = Log::new();
    let hub: Hub<&'static str, usize, ApiError> = Hub::new();
    let make = counter(&log);
    let mut first = hub.watch("job", &make);
    assert_eq!(first.next().await.unwrap().unwrap(), 1);
    assert_eq!(first.next().await.unwrap().unwrap(), 2);
    let start = tokio::time::Instant::now();
    let mut late = hub.watch("job", || -> pollkit::BoxPoller<usize, ApiError> {
        unreachable!("the poller runs already")
    });
    assert_eq!(late.next().await.unwrap().unwrap(), 2);
    assert_eq!(start.elapsed(), secs(0), "the latest came at once");
    assert_eq!(late.next().await.unwrap().unwrap(), 3);
    assert_eq!(first.next().await.unwrap().unwrap(), 3);
    assert_eq!(hub.pollers(), 1);
    assert_eq!(log.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_last_waiter_leaving_stops_the_poller_and_its_request() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let hub: Hub<u8, (), ApiError> = Hub::new();
    let d = dropped.clone();
    let make = move || {
        let d = d.clone();
        ShortPoll::new(move || {
            let flag = DropFlag(d.clone());
            async move {
                let _flag = flag;
                std::future::pending::<Result<(), ApiError>>().await
            }
        })
    };
    let a = hub.watch(1, &make);
    let b = hub.watch(1, &make);
    tokio::task::yield_now().await; // the poller's request is in flight
    drop(a);
    tokio::task::yield_now().await;
    assert_eq!((hub.pollers(), dropped.load(Ordering::SeqCst)), (1, 0));
    drop(b);
    tokio::task::yield_now().await;
    assert_eq!((hub.pollers(), dropped.load(Ordering::SeqCst)), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn an_error_reaches_every_waiter_and_ends_their_streams() {
    let hub: Hub<u8, (), ApiError> = Hub::new();
    let make = || ShortPoll::new(|| async { Err::<(), _>(ApiError::NotFound) }).retry_if(|_| false);
    let mut a = hub.watch(1, make);
    let mut b = hub.watch(1, make);
    for w in [&mut a, &mut b] {
        match w.next().await {
            Some(Err(Error::Fetch(e))) => assert_eq!(*e, ApiError::NotFound),
            other => panic!("{other:?}"),
        }
        assert!(w.next().await.is_none());
    }
    assert_eq!(hub.pollers(), 0);
}

#[tokio::test(start_paused = true)]
async fn long_polls_and_event_streams_can_be_shared_too() {
    let requests = Arc::new(AtomicUsize::new(0));
    let r = requests.clone();
    let hub: Hub<&'static str, u64, ApiError> = Hub::new();
    let make_long = move || {
        let r = r.clone();
        LongPoll::new(move |req: Request<u64>| {
            r.fetch_add(1, Ordering::SeqCst);
            let next = req.cursor().copied().unwrap_or(0) + 1;
            async move {
                tokio::time::sleep(secs(1)).await;
                Ok(Reply::changed(next, next))
            }
        })
    };
    let waiters: Vec<_> = (0..5)
        .map(|_| hub.watch("long", &make_long).until(|n| *n == 3))
        .collect();
    for r in futures::future::join_all(waiters).await {
        assert_eq!(r.unwrap(), 3);
    }
    // Three changes for five waiters: three requests, plus the next one the
    // shared poller asks at once before the last waiter leaves (not 15).
    assert!(requests.load(Ordering::SeqCst) <= 4);

    let connects = Arc::new(AtomicUsize::new(0));
    let c = connects.clone();
    let make_sse = move || {
        let c = c.clone();
        SseStream::new(move |_id: Option<String>| {
            c.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<_, ApiError>(
                futures::stream::iter([Ok::<_, ApiError>(&b"id: 1\ndata: 5\n\n"[..])])
                    .chain(futures::stream::pending()),
            ))
        })
        .map_status(|event| event.data().parse::<u64>().unwrap_or(0))
    };
    let waiters: Vec<_> = (0..5)
        .map(|_| hub.watch("sse", &make_sse).until(|n| *n == 5))
        .collect();
    for r in futures::future::join_all(waiters).await {
        assert_eq!(r.unwrap(), 5);
    }
    assert_eq!(connects.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_poller_that_panics_ends_its_waiters_and_the_key_starts_afresh() {
    let hub: Hub<u8, u32, ApiError> = Hub::new();
    let panicking = || {
        ShortPoll::new(|| -> std::future::Ready<Result<u32, ApiError>> {
            panic!("a bug in the user's fetch")
        })
    };
    let mut w = hub.watch(1, panicking);
    // The waiter sees the end instead of hanging.
    let r = tokio::time::timeout(secs(3600), w.next()).await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_eq!(hub.pollers(), 0);
    // The next watch of the key starts a new poller.
    let r = hub
        .watch(1, || ShortPoll::new(|| async { Ok::<u32, ApiError>(5) }))
        .until(|n| *n == 5)
        .await;
    assert_eq!(r.unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn each_waiter_has_its_own_deadline() {
    let hub: Hub<u8, u32, std::io::Error> = Hub::new();
    let make = || {
        let mut n = 0;
        ShortPoll::new(move || {
            n += 1;
            async move { Ok(n) }
        })
        .interval(secs(1))
    };
    let start = tokio::time::Instant::now();
    let first = hub.watch(1, make).timeout(secs(10)).until(|n| *n == 1_000);
    let first = tokio::spawn(first);
    tokio::time::sleep(secs(9)).await;
    // Joins one second before the first waiter's deadline, with its own 20 s.
    let late = hub.watch(1, make).timeout(secs(20)).until(|n| *n == 25);
    assert!(matches!(
        first.await.unwrap(),
        Err(pollkit::Error::Timeout { .. })
    ));
    assert_eq!(start.elapsed(), secs(10));
    assert_eq!(late.await.unwrap(), 25, "the late waiter goes on");
    assert_eq!(hub.pollers(), 0);
}
