//! A `Last-Event-ID` the caller sets on the request seeds `sse`'s resume
//! position, as other SSE clients read it: the first connection sends it,
//! later ones the last id seen.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use loopback::serve;
use pollkit::Error;
use pollkit::reqwest::{ErrorKind, sse};

/// A server that records each connection's `Last-Event-ID`: the first
/// connection gets event 42, the second event 43, then `204` (stop).
async fn server(
    seen: Arc<Mutex<Vec<Option<String>>>>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new().route(
        "/events",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let id = headers
                    .get("last-event-id")
                    .map(|v| v.to_str().unwrap().to_owned());
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(id);
                    seen.len()
                };
                match n {
                    1 => (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        "retry: 10\nid: 42\ndata: a\n\n",
                    )
                        .into_response(),
                    2 => (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        "id: 43\ndata: b\n\n",
                    )
                        .into_response(),
                    _ => StatusCode::NO_CONTENT.into_response(),
                }
            }
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn a_last_event_id_set_on_the_request_seeds_the_resume_position() {
    let seen = Arc::default();
    let (base, _stop) = server(Arc::clone(&seen)).await;
    let client = reqwest::Client::new();
    let events: Vec<_> = sse(client
        .get(format!("{base}/events"))
        .header("Last-Event-ID", "41"))
    .hint_bounds(Duration::from_millis(10), Duration::from_secs(1))
    .collect()
    .await;
    let ids: Vec<_> = events
        .iter()
        .map(|e| e.as_ref().unwrap().last_event_id().to_owned())
        .collect();
    assert_eq!(ids, ["42", "43"]);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            Some("41".to_owned()),
            Some("42".to_owned()),
            Some("43".to_owned())
        ]
    );
}

#[tokio::test]
async fn the_streams_own_last_event_id_replaces_the_header() {
    let seen = Arc::default();
    let (base, _stop) = server(Arc::clone(&seen)).await;
    let client = reqwest::Client::new();
    let _: Vec<_> = sse(client
        .get(format!("{base}/events"))
        .header("Last-Event-ID", "41"))
    .last_event_id("7")
    .hint_bounds(Duration::from_millis(10), Duration::from_secs(1))
    .collect()
    .await;
    assert_eq!(seen.lock().unwrap()[0].as_deref(), Some("7"));
}

#[tokio::test]
async fn a_last_event_id_that_is_not_text_ends_the_stream_instead_of_replaying_it() {
    let seen = Arc::default();
    let (base, _stop) = server(Arc::clone(&seen)).await;
    let client = reqwest::Client::new();
    let bytes = reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap();
    let items: Vec<_> = sse(client
        .get(format!("{base}/events"))
        .header("Last-Event-ID", bytes))
    .collect()
    .await;
    assert!(
        matches!(items.as_slice(), [Err(Error::Fetch(e))] if e.kind() == ErrorKind::Builder),
        "{items:?}"
    );
    assert!(seen.lock().unwrap().is_empty(), "no connection made");
}
