//! Fallback over loopback: a server that refuses SSE, then hangs long polls,
//! then recovers; the client falls back to short polling and comes back.

use crate::loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use pollkit::long::Reply;
use pollkit::{Backoff, Fallback, Jitter, LongPoll, Poller, ShortPoll, SseStream};
use serde::Deserialize;
use tokio::sync::watch;

const LAST: u64 = 30;

#[derive(Clone)]
struct Job {
    index: watch::Receiver<u64>,
    sse_ok: Arc<AtomicBool>,
    long_ok: Arc<AtomicBool>,
    sse_requests: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct Wait {
    index: Option<u64>,
}

async fn status(State(job): State<Job>, Query(q): Query<Wait>) -> Response {
    let mut index = job.index.clone();
    if let Some(seen) = q.index {
        if !job.long_ok.load(Ordering::SeqCst) {
            // A proxy that swallows held requests: nothing ever comes back.
            std::future::pending::<()>().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), index.wait_for(|i| *i > seen)).await;
    }
    let now = *index.borrow();
    ([("x-index", now.to_string())], now.to_string()).into_response()
}

async fn events(State(job): State<Job>, headers: HeaderMap) -> Response {
    job.sse_requests.fetch_add(1, Ordering::SeqCst);
    if !job.sse_ok.load(Ordering::SeqCst) {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let index = job.index.clone();
    let body = futures::stream::unfold((index, after), |(mut index, after)| async move {
        index.wait_for(|i| *i > after).await.ok()?;
        let now = *index.borrow();
        let event = format!("id: {now}\ndata: {now}\n\n");
        Some((Ok::<_, std::io::Error>(Bytes::from(event)), (index, now)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

type Error = pollkit::Error<reqwest::Error>;

fn transports(base: String) -> Fallback<u64, reqwest::Error> {
    let client = reqwest::Client::builder().build().unwrap();
    let (c1, c2, c3) = (client.clone(), client.clone(), client);
    let (b1, b2, b3) = (base.clone(), base.clone(), base);
    Fallback::new()
        .then("sse", move |last: Option<&u64>| {
            let (client, url) = (c1.clone(), format!("{b1}/events"));
            let stream = SseStream::new(move |id: Option<String>| {
                let mut request = client.get(&url).header(header::ACCEPT, "text/event-stream");
                if let Some(id) = id {
                    request = request.header("Last-Event-ID", id);
                }
                async move { Ok(request.send().await?.error_for_status()?.bytes_stream()) }
            })
            .retry_if(|e: &reqwest::Error| e.status().is_none());
            let stream = match last {
                Some(index) => stream.last_event_id(index.to_string()),
                None => stream,
            };
            stream
                .map_status(|event| event.data().parse().unwrap_or(0))
                .boxed_poller()
        })
        .then("long", move |last: Option<&u64>| {
            let (client, url) = (c2.clone(), format!("{b2}/job"));
            let poll = LongPoll::new(move |req: pollkit::long::Request<u64>| {
                let request = client
                    .get(&url)
                    .query(&[("index", req.cursor().copied().unwrap_or(0))]);
                async move {
                    let index: u64 = request.send().await?.text().await?.parse().unwrap_or(0);
                    Ok(Reply::changed(index, index))
                }
            })
            .wait(Duration::from_secs(2))
            .attempt_timeout(Duration::from_millis(300))
            .backoff(Backoff::new().max_retries(0))
            .rate_limit(100, Duration::from_millis(1));
            match last {
                Some(index) => poll.cursor(*index).boxed_poller(),
                None => poll.boxed_poller(),
            }
        })
        .then("short", move |_last: Option<&u64>| {
            let (client, url) = (c3.clone(), format!("{b3}/job"));
            ShortPoll::new(move || {
                let request = client.get(&url);
                async move { Ok(request.send().await?.text().await?.parse().unwrap_or(0)) }
            })
            .interval(Duration::from_millis(10))
            .jitter(Jitter::None)
            .changes()
            .boxed_poller()
        })
        .retry_better_after(Duration::from_millis(400))
}

#[tokio::test]
async fn falls_back_without_gaps_or_duplicates_and_comes_back() {
    let (tx, rx) = watch::channel(1_u64);
    let job = Job {
        index: rx,
        sse_ok: Arc::default(),
        long_ok: Arc::default(),
        sse_requests: Arc::default(),
    };
    let app = Router::new()
        .route("/job", get(status))
        .route("/events", get(events))
        .with_state(job.clone());
    let (base, stop) = loopback::serve(app).await;
    // The job advances every 60 ms; SSE recovers half-way through.
    let sse_ok = job.sse_ok.clone();
    tokio::spawn(async move {
        for i in 2..=LAST {
            tokio::time::sleep(Duration::from_millis(60)).await;
            if i == LAST / 2 {
                sse_ok.store(true, Ordering::SeqCst);
            }
            let _ = tx.send(i);
        }
    });

    let mut watch = transports(base);
    let mut seen = Vec::new();
    let mut used = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the watch never stalls")
    {
        let index: u64 = item.map_err(|e: Error| e.to_string()).unwrap();
        seen.push(index);
        if used.last() != watch.active().as_ref() {
            used.push(watch.active().unwrap());
        }
        if index == LAST {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "no duplicate, in order: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&LAST));
    // SSE refused, long polls swallowed: short polling took over, then SSE
    // came back once it worked again.
    assert_eq!(used.first(), Some(&"short"), "{used:?}");
    assert_eq!(used.last(), Some(&"sse"), "{used:?}");
    assert!(watch.switches() >= 3, "{}", watch.switches());
    assert!(job.sse_requests.load(Ordering::SeqCst) >= 2);
    drop(stop);
}
