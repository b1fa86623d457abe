//! Cancellation by drop, for every strategy.
//!
//! On the paused clock: for k = 0..N, a fresh poller whose request futures
//! (and SSE bodies) carry drop guards is polled k times with a no-op waker,
//! the clock moving on between polls, so that it is dropped at every await
//! point in turn (waiting, requesting, streaming, backing off, waiting for a
//! token). After the drop, every request future and body it created must be
//! gone, no task may be left (`num_alive_tasks`; pollkit spawns none) and no
//! request may follow. Both the stream and the `until` future are dropped
//! this way.
//!
//! Over loopback: pollers dropped while a request is in flight, while
//! waiting, while held and while streaming leave no connection open on the
//! server (its own count of open TCP connections goes back to 0).

use crate::faults;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Jitter, LongPoll, Poller, ShortPoll, SseStream};

/// Drops per strategy and style: k = 0..POLLS polls before the drop.
const POLLS: usize = 48;
/// Paused time between two polls.
const STEP: Duration = Duration::from_millis(250);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts the guarded values made and dropped.
#[derive(Clone, Default)]
struct Guards {
    made: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Guards {
    fn guard(&self) -> Guard {
        self.made.fetch_add(1, Ordering::SeqCst);
        Guard(self.dropped.clone())
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    fn live(&self) -> usize {
        self.made() - self.dropped.load(Ordering::SeqCst)
    }
}

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How the last request that finished ended, as the fetch saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Last {
    #[default]
    Nothing,
    Ok,
    Quick,
    Err,
}

type Record = Arc<Mutex<Last>>;

/// Polls `thing` k times (a no-op waker: nothing wakes it but the test),
/// moving the paused clock on between polls; returns whether it finished.
async fn poll_times<T>(
    thing: &mut T,
    k: usize,
    mut poll: impl FnMut(&mut T, &mut Context<'_>) -> bool,
) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..k {
        if poll(thing, &mut cx) {
            return true;
        }
        tokio::time::advance(STEP).await;
    }
    false
}

fn poll_stream<S: Stream + Unpin>(s: &mut S, cx: &mut Context<'_>) -> bool {
    // An item is fine; only the end of the stream counts as finished.
    matches!(Pin::new(s).poll_next(cx), Poll::Ready(None))
}

fn poll_future<F: Future + Unpin>(f: &mut F, cx: &mut Context<'_>) -> bool {
    Pin::new(f).poll(cx).is_ready()
}

/// After the drop: nothing guarded is left, no task, and nothing more runs.
async fn assert_nothing_left(what: &str, guards: &[&Guards]) {
    for g in guards {
        assert_eq!(
            g.live(),
            0,
            "{what}: a request future or body outlived the poller"
        );
    }
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(
        metrics.num_alive_tasks(),
        0,
        "{what}: a task was left behind"
    );
    let made: Vec<usize> = guards.iter().map(|g| g.made()).collect();
    tokio::time::advance(Duration::from_secs(3600)).await;
    let after: Vec<usize> = guards.iter().map(|g| g.made()).collect();
    assert_eq!(made, after, "{what}: a request was made after the drop");
}

// ---------------------------------------------------------------------------
// ShortPoll
// ---------------------------------------------------------------------------

type ShortFuture = Pin<Box<dyn Future<Output = Result<u32, &'static str>> + Send>>;

/// Requests cycle: answered after 1 s; failed after 300 ms; hanging (cut by
/// the 2 s attempt timeout); answered at once.
fn short_poller(
    guards: &Guards,
    last: &Record,
) -> impl Poller<Status = u32, Error = &'static str> + Unpin + use<> {
    let (guards, last) = (guards.clone(), last.clone());
    let mut n = 0u32;
    ShortPoll::new(move || -> ShortFuture {
        n += 1;
        let guard = guards.guard();
        let last = last.clone();
        let which = n % 4;
        Box::pin(async move {
            let _guard = guard;
            let outcome = match which {
                1 => {
                    tokio::time::sleep(ms(1000)).await;
                    Ok(n)
                }
                2 => {
                    tokio::time::sleep(ms(300)).await;
                    Err("503")
                }
                3 => std::future::pending().await,
                _ => Ok(n),
            };
            *last.lock().unwrap() = if outcome.is_ok() { Last::Ok } else { Last::Err };
            outcome
        })
    })
    .interval(Duration::from_secs(3))
    .attempt_timeout(Duration::from_secs(2))
    .backoff(
        Backoff::new()
            .base(ms(700))
            .jitter(Jitter::None)
            .max_retries(1000),
    )
}

/// Where a request/response poller stood when dropped.
fn phase(guards: &Guards, last: &Record) -> &'static str {
    match (guards.made(), guards.live(), *last.lock().unwrap()) {
        (0, _, _) => "not started",
        (_, 1, _) => "requesting",
        (_, _, Last::Ok) => "waiting",
        (_, _, Last::Quick) => "backing off after a quick empty reply",
        // The last request failed, or hung and was cut by the attempt timeout.
        _ => "backing off",
    }
}

#[tokio::test(start_paused = true)]
async fn short_poll_dropped_at_every_await_point() {
    let mut seen = BTreeSet::new();
    for k in 0..POLLS {
        for style in ["stream", "until"] {
            let (guards, last) = (Guards::default(), Record::default());
            let poller = short_poller(&guards, &last);
            if style == "stream" {
                let mut poller = poller;
                poll_times(&mut poller, k, poll_stream).await;
                seen.insert(phase(&guards, &last));
                drop(poller);
            } else {
                let mut until = poller.until(|_| false);
                poll_times(&mut until, k, poll_future).await;
                seen.insert(phase(&guards, &last));
                drop(until);
            }
            assert_nothing_left(&format!("ShortPoll {style}, {k} polls"), &[&guards]).await;
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["backing off", "not started", "requesting", "waiting"]
    );
}

// ---------------------------------------------------------------------------
// LongPoll
// ---------------------------------------------------------------------------

type LongFuture = Pin<Box<dyn Future<Output = Result<Reply<u32, u32>, &'static str>> + Send>>;

/// Requests cycle: held 2 s then a change; an empty reply after 10 ms (the
/// server ignored the wait: backoff); a failure after 100 ms; held past the
/// 3 s attempt timeout; a change at once (paced by the token bucket).
fn long_poller(
    guards: &Guards,
    last: &Record,
) -> impl Poller<Status = u32, Error = &'static str> + Unpin + use<> {
    let (guards, last) = (guards.clone(), last.clone());
    let mut n = 0u32;
    LongPoll::new(move |_req: Request<u32>| -> LongFuture {
        n += 1;
        let guard = guards.guard();
        let last = last.clone();
        let which = n % 5;
        Box::pin(async move {
            let _guard = guard;
            let (outcome, seen) = match which {
                1 => {
                    tokio::time::sleep(ms(2000)).await;
                    (Ok(Reply::changed(n, n)), Last::Ok)
                }
                2 => {
                    tokio::time::sleep(ms(10)).await;
                    (Ok(Reply::unchanged()), Last::Quick)
                }
                3 => {
                    tokio::time::sleep(ms(100)).await;
                    (Err("503"), Last::Err)
                }
                4 => std::future::pending().await,
                _ => (Ok(Reply::changed(n, n)), Last::Ok),
            };
            *last.lock().unwrap() = seen;
            outcome
        })
    })
    .wait(Duration::from_secs(10))
    .attempt_timeout(Duration::from_secs(3))
    .rate_limit(1, Duration::from_secs(1))
    .jitter(Jitter::None)
    .backoff(
        Backoff::new()
            .base(ms(600))
            .jitter(Jitter::None)
            .max_retries(1000),
    )
}

#[tokio::test(start_paused = true)]
async fn long_poll_dropped_at_every_await_point() {
    let mut seen = BTreeSet::new();
    for k in 0..POLLS {
        for style in ["stream", "until"] {
            let (guards, last) = (Guards::default(), Record::default());
            let poller = long_poller(&guards, &last);
            if style == "stream" {
                let mut poller = poller;
                poll_times(&mut poller, k, poll_stream).await;
                seen.insert(phase(&guards, &last));
                drop(poller);
            } else {
                let mut until = poller.until(|_| false);
                poll_times(&mut until, k, poll_future).await;
                seen.insert(phase(&guards, &last));
                drop(until);
            }
            assert_nothing_left(&format!("LongPoll {style}, {k} polls"), &[&guards]).await;
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "backing off",
            "backing off after a quick empty reply",
            "not started",
            "requesting",
            "waiting"
        ]
    );
}

// ---------------------------------------------------------------------------
// SseStream
// ---------------------------------------------------------------------------

type Body = BoxStream<'static, Result<Vec<u8>, &'static str>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Body, &'static str>> + Send>>;

/// A body that sends an event every 400 ms, `events` of them, then ends as
/// `end` says: 0 closes, 1 fails, 2 goes silent (the idle timeout's job).
fn body(guards: &Guards, from: u64, events: u64, end: u64) -> Body {
    let guard = guards.guard();
    let chunks = stream::unfold(from, move |n| async move {
        if n >= from + events {
            return None;
        }
        tokio::time::sleep(ms(400)).await;
        Some((Ok(format!("id: {n}\ndata: {n}\n\n").into_bytes()), n + 1))
    });
    let tail: Body = match end {
        0 => stream::empty().boxed(),
        1 => stream::iter([Err("connection reset")]).boxed(),
        _ => stream::pending().boxed(),
    };
    chunks
        .chain(tail)
        .map(move |c| {
            let _keep = &guard;
            c
        })
        .boxed()
}

/// Connections cycle: connect in 200 ms and stream 3 events then close;
/// refused after 100 ms; stream 2 events then fail; stream 1 event then go
/// silent; a connect that hangs past the 2 s attempt timeout.
fn sse_poller(
    connects: &Guards,
    bodies: &Guards,
) -> impl Poller<Status = pollkit::sse::Event, Error = &'static str> + Unpin + use<> {
    let (connects, bodies) = (connects.clone(), bodies.clone());
    let mut n = 0u64;
    SseStream::new(move |last: Option<String>| -> ConnectFuture {
        n += 1;
        let guard = connects.guard();
        let bodies = bodies.clone();
        let from = last.map_or(1, |id| id.parse::<u64>().unwrap() + 1);
        let which = n % 5;
        Box::pin(async move {
            let _guard = guard;
            match which {
                1 => {
                    tokio::time::sleep(ms(200)).await;
                    Ok(body(&bodies, from, 3, 0))
                }
                2 => {
                    tokio::time::sleep(ms(100)).await;
                    Err("503")
                }
                3 => Ok(body(&bodies, from, 2, 1)),
                4 => Ok(body(&bodies, from, 1, 2)),
                _ => std::future::pending().await,
            }
        })
    })
    .reconnect_time(ms(500))
    .jitter(Jitter::None)
    .idle_timeout(Duration::from_secs(1))
    .attempt_timeout(Duration::from_secs(2))
    .backoff(
        Backoff::new()
            .base(ms(300))
            .jitter(Jitter::None)
            .max_retries(1000),
    )
}

fn sse_phase(connects: &Guards, bodies: &Guards) -> &'static str {
    match (connects.made(), connects.live(), bodies.live()) {
        (0, _, _) => "not started",
        (_, 1, _) => "connecting",
        (_, _, 1) => "streaming",
        _ => "waiting to reconnect",
    }
}

#[tokio::test(start_paused = true)]
async fn sse_stream_dropped_at_every_await_point() {
    let mut seen = BTreeSet::new();
    for k in 0..POLLS {
        for style in ["stream", "until"] {
            let (connects, bodies) = (Guards::default(), Guards::default());
            let poller = sse_poller(&connects, &bodies);
            if style == "stream" {
                let mut poller = poller;
                poll_times(&mut poller, k, poll_stream).await;
                seen.insert(sse_phase(&connects, &bodies));
                drop(poller);
            } else {
                let mut until = poller.until(|_| false);
                poll_times(&mut until, k, poll_future).await;
                seen.insert(sse_phase(&connects, &bodies));
                drop(until);
            }
            assert_nothing_left(
                &format!("SseStream {style}, {k} polls"),
                &[&connects, &bodies],
            )
            .await;
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "connecting",
            "not started",
            "streaming",
            "waiting to reconnect"
        ]
    );
}

// ---------------------------------------------------------------------------
// Over loopback: no connection stays open
// ---------------------------------------------------------------------------

/// A client that keeps no idle connection: any connection still open after a
/// drop would be one the poller leaked.
fn no_idle_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client")
}

async fn fetch_text(client: reqwest::Client, url: String) -> Result<String, reqwest::Error> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// Waits (real time) until `cond` holds, up to 5 s.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(ms(10)).await;
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn dropped_pollers_leave_no_connection_open() {
    let server = faults::spawn(faults::Config {
        rate: 0.0,
        ..Default::default()
    })
    .await;
    let c = server.counters.clone();
    let base = server.base.clone();

    for k in 0..4u64 {
        // ShortPoll, dropped while its request hangs on the server.
        let hangs = c.hang_started.load(Ordering::SeqCst);
        let (client, url) = (no_idle_client(), format!("{base}/hang"));
        let mut poller = ShortPoll::new(move || fetch_text(client.clone(), url.clone()));
        tokio::select! {
            item = poller.next() => panic!("/hang answered: {item:?}"),
            () = eventually("the request reaches the server", || {
                c.hang_started.load(Ordering::SeqCst) > c.hang_dropped.load(Ordering::SeqCst)
            }) => {}
        }
        tokio::time::sleep(ms(5 * k)).await;
        drop(poller);
        assert!(
            server.all_connections_closed().await,
            "ShortPoll in flight, round {k}"
        );
        assert_eq!(c.hang_started.load(Ordering::SeqCst), hangs + 1);
        eventually("the server drops the handler", || {
            c.hang_dropped.load(Ordering::SeqCst) == hangs + 1
        })
        .await;

        // ShortPoll, dropped while it waits for the next interval.
        let (client, url) = (no_idle_client(), format!("{base}/jobs/{k}"));
        let mut poller = ShortPoll::new(move || fetch_text(client.clone(), url.clone()))
            .interval(Duration::from_secs(60));
        assert!(poller.next().await.unwrap().is_ok());
        drop(poller);
        assert!(
            server.all_connections_closed().await,
            "ShortPoll waiting, round {k}"
        );

        // LongPoll, dropped while its second request is held by the server.
        let (client, url) = (no_idle_client(), format!("{base}/watch/{}", 100 + k));
        let mut poller = LongPoll::new(move |req: Request<u64>| {
            let mut url = format!("{url}?wait=60000");
            if let Some(index) = req.cursor() {
                url += &format!("&index={index}");
            }
            let client = client.clone();
            async move {
                let response = client.get(url).send().await?.error_for_status()?;
                let index = response.headers()["x-index"]
                    .to_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
                Ok::<_, reqwest::Error>(Reply::changed(response.text().await?, index))
            }
        })
        .wait(Duration::from_secs(60));
        assert!(poller.next().await.unwrap().is_ok());
        // The next request is held (up to the 60 s wait); drop it mid-hold.
        let held = tokio::time::timeout(ms(50 + 10 * k), poller.next()).await;
        assert!(held.is_err() || held.unwrap().is_some());
        drop(poller);
        assert!(
            server.all_connections_closed().await,
            "LongPoll held, round {k}"
        );

        // SseStream, dropped mid-stream after k + 1 events.
        let (client, url) = (no_idle_client(), format!("{base}/forever"));
        let mut events = SseStream::new(move |_id: Option<String>| {
            let request = client.get(&url);
            async move {
                let response = request.send().await?.error_for_status()?;
                Ok::<_, reqwest::Error>(response.bytes_stream())
            }
        });
        for _ in 0..=k {
            assert!(events.next().await.unwrap().is_ok());
        }
        drop(events);
        assert!(
            server.all_connections_closed().await,
            "SseStream streaming, round {k}"
        );
        eventually("the server drops the event stream", || {
            c.forever_dropped.load(Ordering::SeqCst) == k + 1
        })
        .await;

        // SseStream, dropped while connecting to a server that never answers.
        let (client, url) = (no_idle_client(), format!("{base}/hang"));
        let mut events = SseStream::new(move |_id: Option<String>| {
            let request = client.get(&url);
            async move {
                let response = request.send().await?.error_for_status()?;
                Ok::<_, reqwest::Error>(response.bytes_stream())
            }
        });
        let connecting = tokio::time::timeout(ms(50 + 10 * k), events.next()).await;
        assert!(connecting.is_err(), "/hang answered");
        drop(events);
        assert!(
            server.all_connections_closed().await,
            "SseStream connecting, round {k}"
        );
    }
    assert_eq!(c.forever_started.load(Ordering::SeqCst), 4);
    assert_eq!(c.hang_started.load(Ordering::SeqCst), 8);
    eventually("every hanging handler is dropped", || {
        c.hang_dropped.load(Ordering::SeqCst) == 8
    })
    .await;
}
