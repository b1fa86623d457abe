//! SseStream and Fallback on proxies, on tokio's paused clock: quiet streams
//! cut every minute, connects that never answer, buffering proxies, the
//! server's stop (204), one-shot streams and the opt-in signals.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ApiError, Log, secs};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use pollkit::sse::{Reconnect, Signal};
use pollkit::{Error, Fallback, Poller, ShortPoll, SseStream};
use tokio::time::Instant;

type Body = BoxStream<'static, Result<String, ApiError>>;

/// A chunk after `delay`.
fn after(delay: Duration, chunk: &str) -> Body {
    let chunk = chunk.to_owned();
    stream::once(async move {
        tokio::time::sleep(delay).await;
        Ok(chunk)
    })
    .boxed()
}

fn cut_after(delay: Duration) -> Body {
    stream::once(async move {
        tokio::time::sleep(delay).await;
        Err(ApiError::Unavailable { retry_after: None })
    })
    .boxed()
}

#[tokio::test(start_paused = true)]
async fn a_quiet_stream_cut_every_minute_reconnects_forever() {
    // Each connection: a keep-alive comment every 20 s and, on every tenth
    // connection, one event; a proxy cuts it (an error) at 60 s.
    let log = Log::new();
    let l = log.clone();
    let mut events = SseStream::new(move |last: Option<String>| {
        let n = l.hit() as u64;
        let from: u64 = last.and_then(|id| id.parse().ok()).unwrap_or(0);
        async move {
            let mut body: Body = after(secs(20), ": keep-alive\n\n")
                .chain(after(secs(20), ": keep-alive\n\n"))
                .boxed();
            if n % 10 == 0 {
                let id = from + 1;
                body = body
                    .chain(after(secs(1), &format!("id: {id}\ndata: {id}\n\n")))
                    .boxed();
            }
            Ok::<Body, ApiError>(body.chain(cut_after(secs(19))).boxed())
        }
    });
    let mut got = Vec::new();
    while got.len() < 100 {
        let event = events.next().await.unwrap().unwrap();
        got.push(event.data().parse::<u64>().unwrap());
    }
    assert_eq!(
        got,
        (1..=100).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let t = log.times();
    assert_eq!(t.len(), 1_000, "1,000 connections, all cut");
    for w in t.windows(2) {
        // 59 s of connection (60 s with an event), then the reconnection
        // time (3 s, spread above to at most 3.6 s): never faster, never a
        // growing backoff.
        let gap = w[1] - w[0];
        assert!(
            gap >= secs(62) && gap <= Duration::from_millis(63_600),
            "{gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_never_answers_is_abandoned_after_30_s() {
    let log = Log::new();
    let l = log.clone();
    let event = SseStream::new(move |_: Option<String>| {
        let n = l.hit();
        async move {
            if n < 3 {
                std::future::pending::<()>().await;
            }
            Ok::<Body, ApiError>(stream::iter([Ok("data: at last\n\n".to_owned())]).boxed())
        }
    })
    .until(|_| true)
    .await;
    assert_eq!(event.unwrap().data(), "at last");
    let s = log.secs();
    assert_eq!(s.len(), 3);
    assert!(
        s[1] >= 33 && s[1] <= 34,
        "30 s, then the reconnection time: {s:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_idle_timeout_covers_the_wait_for_headers() {
    let log = Log::new();
    let l = log.clone();
    let start = Instant::now();
    let event = SseStream::new(move |_: Option<String>| {
        let n = l.hit();
        async move {
            if n == 1 {
                // A proxy holding the headers back.
                std::future::pending::<()>().await;
            }
            Ok::<Body, ApiError>(stream::iter([Ok("data: x\n\n".to_owned())]).boxed())
        }
    })
    .idle_timeout(secs(15))
    .until(|_| true)
    .await;
    assert_eq!(event.unwrap().data(), "x");
    let waited = start.elapsed();
    assert!(waited >= secs(18) && waited <= secs(19), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn fallback_leaves_a_buffered_stream_and_keeps_a_quiet_one() {
    // Buffered: headers arrive, then nothing at all.
    let buffered = |_: Option<&String>| {
        SseStream::new(|_: Option<String>| async {
            Ok::<Body, ApiError>(stream::pending().boxed())
        })
        .map_status(|e| e.data().to_owned())
        .boxed_poller()
    };
    // Quiet: a comment every 5 s, an event every 15 s.
    let quiet = |_: Option<&String>| {
        SseStream::new(|_: Option<String>| async {
            let beats = stream::iter(0..).then(|i| async move {
                tokio::time::sleep(secs(5)).await;
                Ok::<_, ApiError>(if i % 3 == 2 {
                    format!("data: {i}\n\n")
                } else {
                    ": ping\n\n".to_owned()
                })
            });
            Ok::<Body, ApiError>(beats.boxed())
        })
        .map_status(|e| e.data().to_owned())
        .boxed_poller()
    };
    let short = |_: Option<&String>| {
        ShortPoll::new(|| async { Ok::<_, ApiError>("short".to_owned()) }).boxed_poller()
    };

    let start = Instant::now();
    let mut watch = Fallback::new()
        .then("sse", buffered)
        .then("short", short)
        .unusable_after(secs(10));
    assert_eq!(watch.next().await.unwrap().unwrap(), "short");
    assert_eq!(start.elapsed(), secs(10), "left within unusable_after");

    let mut watch = Fallback::new()
        .then("sse", quiet)
        .then("short", short)
        .unusable_after(secs(10));
    for _ in 0..20 {
        assert_ne!(watch.next().await.unwrap().unwrap(), "short");
    }
    assert_eq!(watch.active(), Some("sse"));
    assert_eq!(watch.switches(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_servers_stop_ends_the_stream_cleanly() {
    let log = Log::new();
    let l = log.clone();
    let connect = move |_: Option<String>| {
        let n = l.hit();
        async move {
            if n == 1 {
                Ok::<Body, ApiError>(stream::iter([Ok("data: a\n\n".to_owned())]).boxed())
            } else {
                Err(ApiError::NotFound) // stands for "204 No Content"
            }
        }
    };
    let items: Vec<_> = SseStream::new(connect.clone())
        .stop_if(|e| *e == ApiError::NotFound)
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(items[0].is_ok());
    assert_eq!(log.count(), 2, "no reconnect after the stop");
    let r = SseStream::new(connect)
        .stop_if(|e| *e == ApiError::NotFound)
        .until(|e| e.data() == "never")
        .await;
    assert!(matches!(r, Err(Error::Ended)));
}

#[test]
fn reconnect_policies() {
    // Connection 1 fails before any event; 2 delivers one then is cut; 3 ends.
    fn run(policy: Reconnect) -> (usize, Vec<Result<String, String>>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async move {
            let log = Log::new();
            let l = log.clone();
            let items: Vec<_> = SseStream::new(move |_: Option<String>| {
                let n = l.hit();
                async move {
                    match n {
                        1 => Err(ApiError::Unavailable { retry_after: None }),
                        2 => Ok::<Body, ApiError>(
                            stream::iter([Ok("data: a\n\n".to_owned())])
                                .chain(cut_after(secs(1)))
                                .boxed(),
                        ),
                        _ => Ok(stream::iter([Ok("data: b\n\n".to_owned())]).boxed()),
                    }
                }
            })
            .reconnect(policy)
            .take(3)
            .map(|r| r.map(|e| e.data().to_owned()).map_err(|e| e.to_string()))
            .collect()
            .await;
            (log.count(), items)
        })
    }
    let (n, items) = run(Reconnect::Never);
    assert_eq!((n, items.len()), (1, 1));
    assert!(items[0].is_err());
    let (n, items) = run(Reconnect::BeforeFirstEvent);
    assert_eq!(n, 2, "retried before the first event, not after");
    assert_eq!(items[0].as_deref(), Ok("a"));
    assert!(items[1].is_err(), "the cut answer is reported: {items:?}");
    let (n, items) = run(Reconnect::AfterErrors);
    assert_eq!(n, 3);
    assert_eq!(items[1].as_deref(), Ok("b"));
    assert_eq!(items.len(), 2, "the clean end of 3 ends the stream");
    let (n, items) = run(Reconnect::Always);
    assert_eq!((n, items.len()), (4, 3));
}

#[tokio::test(start_paused = true)]
async fn signals_show_comments_opens_and_reconnects() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let log = Log::new();
    let l = log.clone();
    let _: Vec<_> = SseStream::new(move |_: Option<String>| {
        let n = l.hit();
        async move {
            if n == 1 {
                return Err(ApiError::Unavailable { retry_after: None });
            }
            Ok::<Body, ApiError>(stream::iter([Ok(": hello\ndata: x\n\n".to_owned())]).boxed())
        }
    })
    .on_signal(move |signal: &Signal<'_, ApiError>| {
        s.lock().unwrap().push(format!("{signal:?}"));
    })
    .take(1)
    .collect()
    .await;
    let seen = seen.lock().unwrap();
    assert!(seen[0].starts_with("Reconnecting { after: 3"), "{seen:?}");
    assert!(seen[0].contains("Failed(Unavailable"), "{seen:?}");
    assert_eq!(seen[1..], ["Opened { attempt: 2 }", "Comment(\"hello\")"]);
}
