//! `long_index` and `long_etag` leave a path's cuts to the core, over
//! loopback against a real axum server: a `504` is a failure (learned,
//! verified, or the end of a dead path), never "unchanged"; the first
//! request reads the current state at once; etcd's client-bounded wait is
//! "unchanged"; an expired cursor relists.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use loopback::serve;
use pollkit::reqwest::{IndexQuery, index_header, long_etag, long_index};
use pollkit::{Backoff, Error, Stats};
use serde::Deserialize;

type Queries = Arc<Mutex<Vec<HashMap<String, String>>>>;

#[derive(Debug, Deserialize, PartialEq, Clone)]
struct Key {
    value: u64,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn a_dead_gateway_answering_504_ends_the_watch_within_the_bound() {
    // The upstream is dead: the gateway answers every request 504 after
    // 1.2 s, past half of the 2 s wait (read as "unchanged" before: polled
    // forever, no error, `give_up_after` bypassed).
    let app = Router::new().route(
        "/v1/kv/key",
        get(|| async {
            tokio::time::sleep(ms(1200)).await;
            StatusCode::GATEWAY_TIMEOUT
        }),
    );
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let end = tokio::time::timeout(
        Duration::from_secs(20),
        long_index::<Key, _>(
            client.get(format!("{base}/v1/kv/key")),
            IndexQuery::consul(),
            index_header("X-Consul-Index"),
        )
        .wait(Duration::from_secs(2))
        .backoff(
            Backoff::new()
                .base(ms(100))
                .give_up_after(Duration::from_secs(2)),
        )
        .next(),
    )
    .await
    .expect("the watch ended");
    match end {
        Some(Err(Error::Fetch(e))) => assert_eq!(e.status(), Some(StatusCode::GATEWAY_TIMEOUT)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_gateway_cutting_just_under_the_wait_is_learned_over_http() {
    // A quiet key behind a gateway that cuts holds at 1.2 s with a 504; the
    // wait is 1.5 s. Two cuts teach 0.9 s, which the server then answers.
    let queries: Queries = Arc::default();
    let app = Router::new()
        .route(
            "/v1/kv/key",
            get(
                |State(q): State<Queries>, Query(query): Query<HashMap<String, String>>| async move {
                    q.lock().unwrap().push(query.clone());
                    let Some(wait) = query.get("wait") else {
                        return ([("x-consul-index", "5")], Json(serde_json::json!({"value": 1})))
                            .into_response();
                    };
                    let wait: u64 = wait.trim_end_matches("ms").parse().unwrap();
                    if wait > 1200 {
                        tokio::time::sleep(ms(1200)).await;
                        return StatusCode::GATEWAY_TIMEOUT.into_response();
                    }
                    tokio::time::sleep(ms(wait)).await;
                    StatusCode::NOT_MODIFIED.into_response()
                },
            ),
        )
        .with_state(queries.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let stats = Stats::new();
    let mut watch = long_index::<Key, _>(
        client.get(format!("{base}/v1/kv/key")),
        IndexQuery::new("index").wait_millis("wait"),
        index_header("X-Consul-Index"),
    )
    .wait(ms(1500))
    .backoff(Backoff::new().base(ms(100)))
    .stats(stats.clone());
    assert_eq!(watch.next().await.unwrap().unwrap(), Key { value: 1 });
    let next = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
    assert!(next.is_err(), "{next:?}");
    assert_eq!(stats.waits_lowered(), 1);
    let queries = queries.lock().unwrap().clone();
    let waits: Vec<_> = queries.iter().map(|q| q.get("wait").cloned()).collect();
    // The first request reads the state at once: no wait, no index.
    assert_eq!(waits[0], None);
    assert_eq!(queries[0].get("index"), None);
    assert_eq!(waits[1].as_deref(), Some("1500ms"));
    assert_eq!(waits[2].as_deref(), Some("1500ms"));
    // Three quarters of the cut (1.2 s and the loopback's few ms).
    let lowered: Vec<u64> = waits[3..]
        .iter()
        .map(|w| {
            w.as_deref()
                .unwrap()
                .trim_end_matches("ms")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(lowered.iter().all(|w| (900..1000).contains(w)), "{waits:?}");
}

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

fn etcd_index(_: &reqwest::header::HeaderMap, e: &Event) -> Option<u64> {
    Some(e.node.modified_index + 1)
}

/// An etcd v2 key as etcd 3.4 serves it: a read without `wait` answers at
/// once; `wait=true` without `waitIndex` or with one past the store's index
/// is answered with headers at once and a body held until the next change
/// (never here: the key is quiet); an index
/// older than `cleared` gets `400` + `errorCode 401`.
async fn etcd(
    State((q, cleared)): State<(Queries, u64)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    q.lock().unwrap().push(query.clone());
    let node = |i: u64| {
        Json(
            serde_json::json!({"action": "get", "node": {"modifiedIndex": i, "value": format!("v{i}")}}),
        )
    };
    if !query.contains_key("wait") {
        return node(7).into_response();
    }
    match query.get("waitIndex").and_then(|i| i.parse::<u64>().ok()) {
        Some(i) if i < cleared => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({
                "errorCode": 401,
                "message": "The event in requested index is outdated and cleared",
                "cause": "the requested history has been cleared [8/3]",
                "index": 7
            })),
        )
            .into_response(),
        // etcd sends its headers at once and holds the body.
        _ => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(futures::stream::pending::<
                Result<bytes::Bytes, std::convert::Infallible>,
            >()),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn etcd_v2_reads_a_quiet_key_at_once_and_its_wait_ends_unchanged() {
    let queries: Queries = Arc::default();
    let app = Router::new()
        .route("/v2/keys/job", get(etcd))
        .with_state((queries.clone(), 0));
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let stats = Stats::new();
    let mut watch = long_index(
        client.get(format!("{base}/v2/keys/job")),
        IndexQuery::etcd_v2(),
        etcd_index,
    )
    .wait(ms(300))
    .stats(stats.clone());
    let first = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert_eq!(first.unwrap().unwrap().unwrap().node.value, "v7");
    let next = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert!(next.is_err(), "{next:?}");
    assert_eq!(stats.errors(), 0, "a quiet key is no error");
    let queries = queries.lock().unwrap().clone();
    assert_eq!(queries[0].get("wait"), None);
    assert!(queries.len() >= 5, "{queries:?}");
    assert!(
        queries[1..]
            .iter()
            .all(|q| q.get("wait").map(String::as_str) == Some("true")
                && q.get("waitIndex").map(String::as_str) == Some("8"))
    );
}

#[tokio::test]
async fn an_expired_etcd_index_relists_and_goes_on() {
    // Resuming from index 3, which etcd has cleared (its history starts at
    // 5): a 401 in a 400, then a fresh read of the current state.
    let queries: Queries = Arc::default();
    let app = Router::new()
        .route("/v2/keys/job", get(etcd))
        .with_state((queries.clone(), 5));
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let stats = Stats::new();
    let mut watch = long_index(
        client.get(format!("{base}/v2/keys/job")),
        IndexQuery::etcd_v2(),
        etcd_index,
    )
    .cursor(3)
    .wait(ms(300))
    .stats(stats.clone());
    let first = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert_eq!(first.unwrap().unwrap().unwrap().node.value, "v7");
    let next = tokio::time::timeout(Duration::from_millis(700), watch.next()).await;
    assert!(next.is_err(), "{next:?}");
    assert_eq!(stats.errors(), 0);
    let queries = queries.lock().unwrap().clone();
    assert_eq!(queries[0].get("waitIndex").map(String::as_str), Some("3"));
    assert_eq!(queries[1].get("waitIndex"), None);
    assert_eq!(queries[2].get("waitIndex").map(String::as_str), Some("8"));
}

#[tokio::test]
async fn a_410_gone_restarts_an_etag_watch() {
    let seen = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let app = Router::new()
        .route(
            "/config",
            get(
                |State(seen): State<Arc<Mutex<Vec<Option<String>>>>>,
                 headers: axum::http::HeaderMap| async move {
                    let tag = headers
                        .get("if-none-match")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.lock().unwrap().push(tag.clone());
                    match tag.as_deref() {
                        Some("\"old\"") => StatusCode::GONE.into_response(),
                        Some(_) => {
                            tokio::time::sleep(ms(200)).await;
                            StatusCode::NOT_MODIFIED.into_response()
                        }
                        None => ([("etag", "\"v9\"")], Json(serde_json::json!({"value": 9})))
                            .into_response(),
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let mut watch = long_etag::<Key>(client.get(format!("{base}/config")))
        .cursor("\"old\"".to_owned())
        .wait(ms(200));
    let first = tokio::time::timeout(Duration::from_secs(2), watch.next()).await;
    assert_eq!(first.unwrap().unwrap().unwrap(), Key { value: 9 });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[..2], [Some("\"old\"".to_owned()), None]);
}
