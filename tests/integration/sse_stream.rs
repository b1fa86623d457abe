//! SseStream on tokio's paused clock: resume, retry, backoff, idle timeout.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{ApiError, DropFlag, Log, ms, secs};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use pollkit::sse::Event;
use pollkit::{Backoff, Error, Jitter, Poller, SseStream};

/// How one scripted connection ends after its chunks.
#[derive(Clone, Copy)]
enum End {
    Close,
    Fail,
    Hang,
}

type Body = BoxStream<'static, Result<Vec<u8>, ApiError>>;

#[derive(Clone, Default)]
struct Server {
    log: Option<Log>,
    ids: Arc<Mutex<Vec<Option<String>>>>,
    bodies_dropped: Arc<AtomicUsize>,
}

impl Server {
    fn new() -> Self {
        Server {
            log: Some(Log::new()),
            ..Default::default()
        }
    }

    /// A connect function playing `script` (one entry per connection; `Err`
    /// refuses the connection). Later connections hang.
    fn connect(
        &self,
        script: Vec<Result<(Vec<&'static str>, End), ApiError>>,
    ) -> impl FnMut(Option<String>) -> std::future::Ready<Result<Body, ApiError>> + use<> {
        let server = self.clone();
        let mut script = script.into_iter();
        move |last_id| {
            server.log.as_ref().unwrap().hit();
            server.ids.lock().unwrap().push(last_id);
            let flag = DropFlag(server.bodies_dropped.clone());
            std::future::ready(match script.next() {
                Some(Err(e)) => Err(e),
                Some(Ok((chunks, end))) => {
                    let chunks =
                        stream::iter(chunks.into_iter().map(|c| Ok(c.as_bytes().to_vec())));
                    let tail: Body = match end {
                        End::Close => stream::empty().boxed(),
                        End::Fail => {
                            stream::iter([Err(ApiError::Unavailable { retry_after: None })]).boxed()
                        }
                        End::Hang => stream::pending().boxed(),
                    };
                    Ok(chunks
                        .chain(tail)
                        .map(move |c| {
                            let _keep = &flag;
                            c
                        })
                        .boxed())
                }
                None => Ok(stream::pending()
                    .map(move |c: Result<Vec<u8>, ApiError>| {
                        let _keep = &flag;
                        c
                    })
                    .boxed()),
            })
        }
    }

    fn ids(&self) -> Vec<Option<String>> {
        self.ids.lock().unwrap().clone()
    }

    fn secs(&self) -> Vec<u64> {
        self.log.as_ref().unwrap().secs()
    }

    fn millis(&self) -> Vec<u128> {
        self.log.as_ref().unwrap().millis()
    }
}

fn data(events: &[Event]) -> Vec<&str> {
    events.iter().map(Event::data).collect()
}

#[tokio::test(start_paused = true)]
async fn every_event_once_in_order_across_cuts_mid_event() {
    let server = Server::new();
    let script = vec![
        Ok((
            vec!["id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\nda"],
            End::Close,
        )),
        Ok((
            vec!["id: 3\ndata: c\n", "\nid: 4\ndata: d\n\nid: 5\n"],
            End::Fail,
        )),
        Ok((
            vec!["id: 5\ndata: e\n\n", "id: 6\r\ndata: f\r\n\r"],
            End::Close,
        )),
        Ok((vec!["id: 7\ndata: g\n\n"], End::Close)),
    ];
    let events: Vec<Event> = SseStream::new(server.connect(script))
        .reconnect_time(secs(1))
        .jitter(Jitter::None)
        .take(7)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(data(&events), ["a", "b", "c", "d", "e", "f", "g"]);
    let ids: Vec<_> = events.iter().map(Event::last_event_id).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
    // The id of a block the cut left unfinished is never sent.
    assert_eq!(
        server.ids(),
        [None, Some("2".into()), Some("4".into()), Some("6".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn the_servers_retry_field_sets_the_reconnect_delay() {
    let server = Server::new();
    let script = vec![
        Ok((vec!["retry: 5000\ndata: a\n\n"], End::Close)),
        Ok((vec!["retry: 2500\ndata: b\n\n"], End::Close)),
        Ok((vec!["data: c\n\n"], End::Close)),
    ];
    let events: Vec<Event> = SseStream::new(server.connect(script))
        .jitter(Jitter::None)
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(data(&events), ["a", "b", "c"]);
    assert_eq!(server.millis(), [0, 5_000, 7_500]);
}

#[tokio::test(start_paused = true)]
async fn the_servers_retry_is_clamped_to_the_hint_bounds() {
    let server = Server::new();
    let script = vec![
        Ok((vec!["retry: 0\ndata: a\n\n"], End::Close)),
        Ok((vec!["retry: 18446744073709551615\ndata: b\n\n"], End::Close)),
        Ok((vec!["retry: 18446744073709551616\ndata: c\n\n"], End::Close)),
        Ok((vec!["data: d\n\n"], End::Close)),
    ];
    let events: Vec<Event> = SseStream::new(server.connect(script))
        .jitter(Jitter::None)
        .hint_bounds(ms(500), secs(60))
        .take(4)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(data(&events), ["a", "b", "c", "d"]);
    // 0 → 0.5 s; u64::MAX ms → 60 s; a value past u64 is ignored (60 s stays).
    assert_eq!(server.millis(), [0, 500, 60_500, 120_500]);
}

#[tokio::test(start_paused = true)]
async fn a_new_connection_keeps_the_resume_position() {
    // Every response opens with `retry` and a blank line, which must not
    // erase the last event id.
    let server = Server::new();
    let script = vec![
        Ok((vec!["retry: 1000\n\nid: 9\ndata: a\n\n"], End::Close)),
        Ok((vec!["retry: 1000\n\ndata: b\n\n"], End::Close)),
        Ok((vec!["retry: 1000\n\ndata: c\n\n"], End::Close)),
    ];
    let events: Vec<Event> = SseStream::new(server.connect(script))
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(data(&events), ["a", "b", "c"]);
    assert_eq!(events[2].last_event_id(), "9");
    assert_eq!(server.ids(), [None, Some("9".into()), Some("9".into())]);
}

#[tokio::test(start_paused = true)]
async fn failing_reconnects_back_off_and_reset_after_events() {
    let server = Server::new();
    let down = || Err(ApiError::Unavailable { retry_after: None });
    let script = vec![
        Ok((vec!["data: a\n\n"], End::Close)),
        down(),
        down(),
        down(),
        down(),
        Ok((vec!["data: b\n\n"], End::Fail)),
        down(),
        Ok((vec!["data: c\n\n"], End::Close)),
    ];
    let events: Vec<Event> = SseStream::new(server.connect(script))
        .jitter(Jitter::None)
        .reconnect_time(secs(3))
        .backoff(Backoff::new().jitter(Jitter::None))
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(data(&events), ["a", "b", "c"]);
    // After a: 3 s. Refusals in a row: 3 (the reconnection time), then the
    // backoff once it is longer: max(3, 2)=3, max(3, 4)=4, max(3, 8)=8.
    // b delivered, then failed: back to 3; the refusal after it: max(3, 2)=3.
    assert_eq!(server.secs(), [0, 3, 6, 9, 13, 21, 24, 27]);
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_a_refused_connection_is_honoured() {
    let server = Server::new();
    let script = vec![
        Err(ApiError::Unavailable {
            retry_after: Some(secs(42)),
        }),
        Ok((vec!["data: a\n\n"], End::Close)),
    ];
    let r = SseStream::new(server.connect(script))
        .retry_after(ApiError::retry_after)
        .until(|_| true)
        .await;
    assert_eq!(r.unwrap().data(), "a");
    // The hint is waited in full, spread up to a fifth above.
    let s = server.secs();
    assert!(s[1] >= 42 && s[1] <= 50, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_ends_the_stream() {
    let server = Server::new();
    let script = vec![
        Ok((vec!["data: a\n\n"], End::Close)),
        Err(ApiError::NotFound),
    ];
    let items: Vec<_> = SseStream::new(server.connect(script))
        .retry_if(ApiError::is_transient)
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().data(), "a");
    assert!(matches!(items[1], Err(Error::Fetch(ApiError::NotFound))));
}

#[tokio::test(start_paused = true)]
async fn retries_run_out_with_the_last_error() {
    let server = Server::new();
    let script = vec![Err(ApiError::Unavailable { retry_after: None }); 10];
    let r = SseStream::new(server.connect(script))
        .backoff(Backoff::new().max_retries(2))
        .until(|_| true)
        .await;
    assert!(matches!(r, Err(Error::Fetch(ApiError::Unavailable { .. }))));
    assert_eq!(server.secs().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_dropped_after_the_idle_timeout() {
    let server = Server::new();
    let script = vec![
        Ok((vec!["data: a\n\n"], End::Hang)),
        Ok((vec![": keep-alive\n"], End::Hang)),
        Ok((vec!["data: b\n\n"], End::Close)),
    ];
    let events: Vec<Event> = SseStream::new(server.connect(script))
        .jitter(Jitter::None)
        .reconnect_time(secs(1))
        .idle_timeout(secs(30))
        .take(2)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(data(&events), ["a", "b"]);
    // Silent for 30 s -> reconnect 1 s later; the second connection sent a
    // comment then went silent too (no event: the first such reconnect waits
    // the reconnection time, later ones back off).
    assert_eq!(server.secs(), [0, 31, 62]);
    // Both silent connections were dropped, and the last one with the stream.
    assert_eq!(server.bodies_dropped.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_quiet_stream() {
    let server = Server::new();
    let script = vec![Ok((vec!["data: a\n\n"], End::Hang))];
    let start = tokio::time::Instant::now();
    let items: Vec<_> = SseStream::new(server.connect(script))
        .timeout(secs(60))
        .collect()
        .await;
    assert_eq!(start.elapsed(), secs(60));
    assert_eq!(items.len(), 2);
    assert!(matches!(items[1], Err(Error::Timeout { attempts: 1, .. })));
    assert_eq!(server.bodies_dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_hangs_is_caught_by_the_attempt_timeout() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let r = SseStream::new(move |_id: Option<String>| {
        s.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<Body, ApiError>>()
    })
    .attempt_timeout(secs(5))
    .backoff(Backoff::new().max_retries(1))
    .until(|_| true)
    .await;
    assert!(
        matches!(r, Err(Error::AttemptTimeout { attempts: 2, .. })),
        "{r:?}"
    );
    assert_eq!(started.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_event_ends_the_stream_with_a_clear_error() {
    let server = Server::new();
    let script = vec![Ok((
        vec!["data: ok\n\ndata: 0123456789abcdef\n\n"],
        End::Close,
    ))];
    let items: Vec<_> = SseStream::new(server.connect(script))
        .max_event_size(10)
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().data(), "ok");
    assert!(matches!(
        items[1],
        Err(Error::Sse(pollkit::sse::Error::EventTooLarge { limit: 10 }))
    ));
}

#[tokio::test(start_paused = true)]
async fn resuming_from_a_saved_id_and_dropping_the_stream() {
    let server = Server::new();
    let script = vec![Ok((vec!["data: x\n\n"], End::Hang))];
    let mut stream = SseStream::new(server.connect(script)).last_event_id("41");
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.last_event_id(), "41");
    assert_eq!(server.ids(), [Some("41".into())]);
    drop(stream);
    assert_eq!(
        server.bodies_dropped.load(Ordering::SeqCst),
        1,
        "the connection was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn max_attempts_counts_connections_and_changes_work_on_events() {
    let server = Server::new();
    let script = vec![
        Ok((vec!["data: same\n\ndata: same\n\n"], End::Close)),
        Ok((vec!["data: same\n\ndata: new\n\n"], End::Close)),
    ];
    let items: Vec<_> = SseStream::new(server.connect(script))
        .max_attempts(2)
        .reconnect_time(secs(1))
        .changes()
        .collect()
        .await;
    let got: Vec<_> = items[..2]
        .iter()
        .map(|r| r.as_ref().unwrap().data())
        .collect();
    assert_eq!(got, ["same", "new"]);
    assert!(matches!(
        items[2],
        Err(Error::Exhausted { attempts: 2, .. })
    ));
}

/// Review find: `SseStream`'s `Debug` printed the last event id, which is
/// the server's text (and now may come from the caller's `Last-Event-ID`).
#[tokio::test(start_paused = true)]
async fn debug_never_prints_the_last_event_id() {
    let mut events = SseStream::new(|_last: Option<String>| async {
        Ok::<_, ApiError>(stream::iter([Ok::<_, ApiError>(
            &b"id: tok-SECRET-1\ndata: x\n\n"[..],
        )]))
    })
    .last_event_id("tok-SECRET-0");
    let before = format!("{events:?}");
    assert!(
        !before.contains("SECRET") && before.contains("Some(..)"),
        "{before}"
    );
    let event = events.next().await.unwrap().unwrap();
    assert_eq!(event.last_event_id(), "tok-SECRET-1");
    let after = format!("{events:?} {events:#?}");
    assert!(!after.contains("SECRET"), "{after}");
}
