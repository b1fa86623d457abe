//! `pollkit::reqwest::{long_index, long_etag}` against a real axum server
//! over loopback: the query and headers they send, and how each answer
//! (304, empty, same index, a 504 during the wait, a quick 504) is read.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use loopback::serve;
use pollkit::reqwest::{ErrorKind, IndexQuery, index_header, long_etag, long_index};
use pollkit::{Backoff, Error, Jitter, Poller};
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq, Clone)]
struct Key {
    value: u64,
}

/// Each request's query, `If-None-Match` and `Prefer`, and when it arrived.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    query: HashMap<String, String>,
    if_none_match: Option<String>,
    prefer: Option<String>,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn push(&self, query: HashMap<String, String>, headers: &HeaderMap) -> usize {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut log = self.0.lock().unwrap();
        log.push(Seen {
            at: Instant::now(),
            query,
            if_none_match: get("if-none-match"),
            prefer: get("prefer"),
        });
        log.len()
    }

    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// Quick answers without a change back off; keep the test quick too.
fn fast_backoff() -> Backoff {
    Backoff::new()
        .base(Duration::from_millis(20))
        .max_delay(Duration::from_millis(100))
}

fn with_index(index: u64, value: u64) -> Response {
    (
        [("x-consul-index", index.to_string())],
        Json(serde_json::json!({ "value": value })),
    )
        .into_response()
}

/// A Consul-like key: 1) the current value at index 10; 2) 304 (the wait
/// ended); 3) an empty 200; 4) the same index 10 (Consul's answer at the end
/// of a wait); 5) a 504 during the wait; 6) a quick 504; 7) value 2 at
/// index 12; 8) an index that went backwards (a snapshot restore), value 3.
async fn consul(
    State(log): State<Log>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match log.push(query, &headers) {
        1 => with_index(10, 1),
        2 => StatusCode::NOT_MODIFIED.into_response(),
        3 => (StatusCode::OK, "").into_response(),
        4 => with_index(10, 1),
        5 => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        6 => StatusCode::GATEWAY_TIMEOUT.into_response(),
        7 => with_index(12, 2),
        _ => with_index(4, 3),
    }
}

#[tokio::test]
async fn long_index_reads_every_kind_of_answer() {
    let log = Log::default();
    let app = Router::new()
        .route("/v1/kv/key", get(consul))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let values: Vec<u64> = long_index(
        client.get(format!("{base}/v1/kv/key?dc=east")),
        IndexQuery::consul(),
        index_header("X-Consul-Index"),
    )
    .wait(Duration::from_millis(400))
    .rate_limit(100, Duration::from_millis(1))
    .backoff(fast_backoff())
    .jitter(Jitter::None)
    .hint_bounds(Duration::from_millis(10), Duration::from_millis(10))
    .timeout(Duration::from_secs(20))
    .take(3)
    .map(|key: Result<Key, _>| key.unwrap().value)
    .collect()
    .await;
    assert_eq!(values, [1, 2, 3]);
    let seen = log.seen();
    assert_eq!(seen.len(), 8, "{seen:#?}");
    let q = |n: usize, k: &str| seen[n].query.get(k).cloned();
    // The request's own query is kept; the first request carries no index.
    assert_eq!(q(0, "dc").as_deref(), Some("east"));
    assert_eq!(q(0, "index"), None);
    assert_eq!(
        q(0, "wait"),
        None,
        "the first request reads the state at once"
    );
    assert_eq!(q(1, "wait").as_deref(), Some("1s"));
    for n in 1..7 {
        assert_eq!(q(n, "index").as_deref(), Some("10"), "request {}", n + 1);
    }
    assert_eq!(q(7, "index").as_deref(), Some("12"));
    // Both 504s were errors (too quick to be a path's cut): each retried
    // after a backoff.
    assert!(seen[5].at - seen[4].at >= Duration::from_millis(300 + 10));
    assert!(seen[6].at - seen[5].at >= Duration::from_millis(10));
}

#[tokio::test]
async fn long_index_without_an_index_is_a_protocol_error() {
    let app = Router::new().route(
        "/jobs/1",
        get(|| async { Json(serde_json::json!({ "value": 1 })) }),
    );
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let err = long_index::<Key, _>(
        client.get(format!("{base}/jobs/1")),
        IndexQuery::new("index").wait_millis("wait"),
        index_header("x-index"),
    )
    .until(|_| true)
    .await
    .unwrap_err();
    let Error::Fetch(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(!e.is_transient());
}

#[tokio::test]
async fn etcd_v2_style_index_from_the_body() {
    #[derive(Debug, Deserialize)]
    struct Node {
        #[serde(rename = "modifiedIndex")]
        modified_index: u64,
        value: String,
    }
    #[derive(Debug, Deserialize)]
    struct Event {
        node: Node,
    }
    let log = Log::default();
    let app = Router::new()
        .route(
            "/v2/keys/job",
            get(
                |State(log): State<Log>,
                 Query(query): Query<HashMap<String, String>>,
                 headers: HeaderMap| async move {
                    let n = log.push(query, &headers) as u64;
                    Json(serde_json::json!({
                        "action": "set",
                        "node": { "modifiedIndex": 40 + n, "value": format!("v{n}") }
                    }))
                },
            ),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let values: Vec<String> = long_index(
        client.get(format!("{base}/v2/keys/job")),
        IndexQuery::etcd_v2(),
        |_: &reqwest::header::HeaderMap, e: &Event| Some(e.node.modified_index + 1),
    )
    .rate_limit(100, Duration::from_millis(1))
    .take(2)
    .map(|e| e.unwrap().node.value)
    .collect()
    .await;
    assert_eq!(values, ["v1", "v2"]);
    let seen = log.seen();
    // The first request is a plain read: etcd would hold a `wait=true`.
    assert_eq!(seen[0].query.get("wait"), None);
    assert_eq!(seen[0].query.get("waitIndex"), None);
    assert_eq!(seen[1].query.get("wait").map(String::as_str), Some("true"));
    assert_eq!(
        seen[1].query.get("waitIndex").map(String::as_str),
        Some("42")
    );
}

#[tokio::test]
async fn long_index_waits_a_503s_retry_after() {
    let log = Log::default();
    let app = Router::new()
        .route(
            "/v1/kv/key",
            get(
                |State(log): State<Log>,
                 Query(query): Query<HashMap<String, String>>,
                 headers: HeaderMap| async move {
                    if log.push(query, &headers) == 1 {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, "1")],
                        )
                            .into_response();
                    }
                    with_index(3, 7)
                },
            ),
        )
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let key: Key = long_index(
        client.get(format!("{base}/v1/kv/key")),
        IndexQuery::consul(),
        index_header("x-consul-index"),
    )
    .jitter(Jitter::None)
    .timeout(Duration::from_secs(20))
    .until(|_| true)
    .await
    .unwrap();
    assert_eq!(key.value, 7);
    let seen = log.seen();
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

/// Version 1 (ETag "v1"); then 304 while the client holds "v1", twice;
/// then version 2 ("v2"); then the same "v2" from a server that ignores
/// `If-None-Match`; then version 3 with no ETag at all.
async fn etag(
    State(log): State<Log>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let etagged = |etag: &'static str, v: u64| {
        (
            [(header::ETAG, etag)],
            Json(serde_json::json!({ "value": v })),
        )
            .into_response()
    };
    match log.push(query, &headers) {
        1 => etagged("\"v1\"", 1),
        2 | 3 => StatusCode::NOT_MODIFIED.into_response(),
        4 => etagged("\"v2\"", 2),
        5 => etagged("\"v2\"", 2),
        _ => Json(serde_json::json!({ "value": 3 })).into_response(),
    }
}

#[tokio::test]
async fn long_etag_sends_if_none_match_and_prefer_wait() {
    let log = Log::default();
    let app = Router::new()
        .route("/config", get(etag))
        .with_state(log.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let values: Vec<u64> = long_etag(client.get(format!("{base}/config")))
        .wait(Duration::from_millis(2500))
        .rate_limit(100, Duration::from_millis(1))
        .backoff(fast_backoff())
        .take(3)
        .map(|key: Result<Key, _>| key.unwrap().value)
        .collect()
        .await;
    assert_eq!(values, [1, 2, 3]);
    let seen = log.seen();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0].if_none_match, None);
    assert_eq!(seen[0].prefer, None);
    for s in &seen[1..4] {
        assert_eq!(s.if_none_match.as_deref(), Some("\"v1\""));
        assert_eq!(s.prefer.as_deref(), Some("wait=3"));
    }
    assert_eq!(seen[4].if_none_match.as_deref(), Some("\"v2\""));
    assert_eq!(seen[5].if_none_match.as_deref(), Some("\"v2\""));
}
