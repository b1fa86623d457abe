//! No setting panics or spins: every `pollkit::reqwest` helper runs against
//! a real server over loopback with each of its durations at
//! `Duration::ZERO` and at `Duration::MAX` (in a debug build, where an
//! overflow panics), and neither panics nor floods the server.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::{Stream, StreamExt};
use loopback::serve;
use pollkit::reqwest::{
    Config, ErrorKind, IndexQuery, index_header, long_etag, long_index, short, short_answer, sse,
};

/// How long each case runs: enough for several requests at any pace.
const WINDOW: Duration = Duration::from_millis(250);

/// Requests a helper may make in [`WINDOW`] without spinning: the first, a
/// burst of two, a retry or two. A busy loop over loopback makes hundreds.
const MOST: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Setting {
    Wait,
    Interval,
    Timeout,
    AttemptTimeout,
    HintMin,
    HintMax,
    Stagger,
    RateLimit,
    ReconnectTime,
    IdleTimeout,
}

const SHARED: [Setting; 5] = [
    Setting::Timeout,
    Setting::AttemptTimeout,
    Setting::HintMin,
    Setting::HintMax,
    Setting::Stagger,
];

/// A server whose status never changes: every long poll is answered at
/// once with the index sent (unchanged), every event stream with one event
/// and its end.
async fn server() -> (String, Arc<AtomicUsize>, tokio::sync::oneshot::Sender<()>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = |hits: &Arc<AtomicUsize>| {
        let hits = Arc::clone(hits);
        move || {
            hits.fetch_add(1, Ordering::SeqCst);
        }
    };
    let (a, b, c) = (count(&hits), count(&hits), count(&hits));
    let app = Router::new()
        .route(
            "/status",
            get(move || async move {
                a();
                (
                    [(header::ETAG, "\"v1\"")],
                    axum::Json(serde_json::json!({"n": 1})),
                )
                    .into_response()
            }),
        )
        .route(
            "/index",
            get(move || async move {
                b();
                ([("x-index", "7")], axum::Json(serde_json::json!({"n": 1}))).into_response()
            }),
        )
        .route(
            "/events",
            get(move || async move {
                c();
                (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    "id: 1\ndata: hi\n\n",
                )
                    .into_response()
            }),
        );
    let (base, stop) = serve(app).await;
    (base, hits, stop)
}

/// Reads up to three items within the window; the count of requests made.
async fn run<St: Stream + Unpin>(mut poller: St, hits: &AtomicUsize) -> usize {
    let _ = tokio::time::timeout(WINDOW, async {
        for _ in 0..3 {
            if poller.next().await.is_none() {
                break;
            }
        }
    })
    .await;
    drop(poller);
    hits.load(Ordering::SeqCst)
}

/// Applies `setting` at `d` to any of the helpers' pollers (each strategy
/// has its own setters, so a macro rather than a trait).
macro_rules! apply {
    ($p:ident, $setting:expr, $d:ident, { $($own:tt)* }) => {{
        match $setting {
            Setting::Timeout => $p.timeout($d),
            Setting::AttemptTimeout => $p.attempt_timeout($d),
            Setting::HintMin => $p.hint_bounds($d, Duration::MAX),
            Setting::HintMax => $p.hint_bounds(Duration::ZERO, $d),
            Setting::Stagger => $p.stagger($d),
            $($own)*
        }
    }};
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn short_takes_any_duration_without_panic_or_spin() {
    let settings = [Setting::Interval].into_iter().chain(SHARED);
    for setting in settings {
        for d in [Duration::ZERO, Duration::MAX] {
            let (base, hits, _stop) = server().await;
            let poller = short::<serde_json::Value>(client().get(format!("{base}/status")));
            let poller = apply!(poller, setting, d, {
                Setting::Interval => poller.interval(d),
                _ => unreachable!(),
            });
            let made = run(poller, &hits).await;
            assert!(made <= MOST, "{setting:?} = {d:?}: {made} requests");
            let (base, hits, _stop) = server().await;
            let poller = short_answer::<serde_json::Value>(client().get(format!("{base}/status")));
            let poller = apply!(poller, setting, d, {
                Setting::Interval => poller.interval(d),
                _ => unreachable!(),
            });
            let made = run(poller, &hits).await;
            assert!(made <= MOST, "answer {setting:?} = {d:?}: {made} requests");
        }
    }
}

/// A body limit of 0 or `usize::MAX` is a limit like any other.
#[tokio::test]
async fn any_body_limit_is_taken_without_panic() {
    let (base, _hits, _stop) = server().await;
    let url = format!("{base}/status");
    let none = Config::new()
        .max_body(0)
        .json::<serde_json::Value>(client().get(&url))
        .await;
    assert_eq!(none.unwrap_err().kind(), ErrorKind::TooLarge);
    let all = Config::new()
        .max_body(usize::MAX)
        .json::<serde_json::Value>(client().get(&url))
        .await;
    assert_eq!(all.unwrap()["n"], 1);
}

#[tokio::test]
async fn long_index_and_long_etag_take_any_duration_without_panic_or_spin() {
    let settings = [Setting::Wait, Setting::RateLimit]
        .into_iter()
        .chain(SHARED);
    for setting in settings {
        for d in [Duration::ZERO, Duration::MAX] {
            for query in [
                IndexQuery::consul(),
                IndexQuery::new("index").wait_millis("wait"),
                IndexQuery::etcd_v2(),
            ] {
                let (base, hits, _stop) = server().await;
                let poller = long_index::<serde_json::Value, _>(
                    client().get(format!("{base}/index")),
                    query.clone(),
                    index_header("x-index"),
                );
                let poller = apply!(poller, setting, d, {
                    Setting::Wait => poller.wait(d),
                    Setting::RateLimit => poller.rate_limit(2, d),
                    _ => unreachable!(),
                });
                let made = run(poller, &hits).await;
                assert!(
                    made <= MOST,
                    "{setting:?} = {d:?} {query:?}: {made} requests"
                );
            }
            let (base, hits, _stop) = server().await;
            let poller = long_etag::<serde_json::Value>(client().get(format!("{base}/status")));
            let poller = apply!(poller, setting, d, {
                Setting::Wait => poller.wait(d),
                Setting::RateLimit => poller.rate_limit(2, d),
                _ => unreachable!(),
            });
            let made = run(poller, &hits).await;
            assert!(made <= MOST, "etag {setting:?} = {d:?}: {made} requests");
        }
    }
}

#[tokio::test]
async fn sse_takes_any_duration_without_panic_or_spin() {
    let settings = [Setting::ReconnectTime, Setting::IdleTimeout]
        .into_iter()
        .chain(SHARED);
    for setting in settings {
        for d in [Duration::ZERO, Duration::MAX] {
            let (base, hits, _stop) = server().await;
            let poller = sse(client().get(format!("{base}/events")));
            let poller = apply!(poller, setting, d, {
                Setting::ReconnectTime => poller.reconnect_time(d),
                Setting::IdleTimeout => poller.idle_timeout(d),
                _ => unreachable!(),
            });
            let made = run(poller, &hits).await;
            assert!(made <= MOST, "{setting:?} = {d:?}: {made} requests");
        }
    }
}
