//! Bounded bodies: a success's body is read chunk by chunk up to the
//! helper's limit, and a larger one is a permanent `TooLarge` error that
//! names the limit, read no further; an event stream is bounded by
//! `max_event_size`.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use loopback::serve;
use pollkit::reqwest::{Config, DEFAULT_MAX_BODY, ErrorKind, IndexQuery, index_header, json, sse};
use pollkit::{Error, Poller};

const MIB: usize = 1 << 20;

/// A body of `total` bytes of JSON padding sent in 64 KiB chunks, counting
/// the bytes the server got to produce.
fn padding(total: usize, produced: Arc<AtomicUsize>) -> Body {
    let chunk = Bytes::from(vec![b' '; 64 << 10]);
    let chunks = total / chunk.len();
    Body::from_stream(futures::stream::iter(0..chunks).map(move |_| {
        produced.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

async fn big_server(total: usize, with_length: bool) -> (String, Arc<AtomicUsize>, impl Drop) {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let app = Router::new().fallback(get(move || {
        let counter = counter.clone();
        async move {
            let mut response = Response::new(padding(total, counter));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            response
                .headers_mut()
                .insert("x-index", "3".parse().unwrap());
            if with_length {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, total.into());
            }
            response
        }
    }));
    let (base, stop) = serve(app).await;
    (base, produced, DropStop(Some(stop)))
}

struct DropStop(Option<tokio::sync::oneshot::Sender<()>>);
impl Drop for DropStop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test]
async fn a_status_body_past_the_default_limit_is_a_permanent_error_read_no_further() {
    let (base, produced, _stop) = big_server(64 * MIB, false).await;
    let client = reqwest::Client::new();
    let err = json::<serde_json::Value>(client.get(format!("{base}/status")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert_eq!(err.limit(), Some(DEFAULT_MAX_BODY));
    assert!(!err.is_transient());
    assert!(
        err.to_string().ends_with(&format!(
            "the body is larger than the limit of {DEFAULT_MAX_BODY} bytes"
        )),
        "{err}"
    );
    // The server got to write the limit and what the socket buffers hold,
    // not the 64 MiB.
    let sent = produced.load(Ordering::SeqCst);
    assert!(sent < DEFAULT_MAX_BODY + 16 * MIB, "{sent} bytes produced");
}

#[tokio::test]
async fn a_content_length_past_the_limit_ends_before_the_body_is_read() {
    let (base, _produced, _stop) = big_server(2 * MIB, true).await;
    let client = reqwest::Client::new();
    let err = Config::new()
        .max_body(64 << 10)
        .json::<serde_json::Value>(client.get(format!("{base}/status")))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.limit()),
        (ErrorKind::TooLarge, Some(64 << 10))
    );
    assert_eq!(err.status(), Some(reqwest::StatusCode::OK));
}

#[tokio::test]
async fn every_poller_helper_keeps_its_limit() {
    let (base, _produced, _stop) = big_server(MIB, false).await;
    let client = reqwest::Client::new();
    let small = Config::new().max_body(4 << 10);
    let r = small
        .clone()
        .short::<serde_json::Value>(client.get(format!("{base}/a")))
        .until(|_| true)
        .await;
    assert!(
        matches!(&r, Err(Error::Fetch(e)) if e.kind() == ErrorKind::TooLarge),
        "{r:?}"
    );
    let r = small
        .clone()
        .long_index::<serde_json::Value, _>(
            client.get(format!("{base}/b")),
            IndexQuery::consul(),
            index_header("x-index"),
        )
        .next()
        .await;
    assert!(
        matches!(&r, Some(Err(Error::Fetch(e))) if e.kind() == ErrorKind::TooLarge),
        "{r:?}"
    );
    let r = small
        .clone()
        .long_etag::<serde_json::Value>(client.get(format!("{base}/c")))
        .next()
        .await;
    assert!(
        matches!(&r, Some(Err(Error::Fetch(e))) if e.kind() == ErrorKind::TooLarge),
        "{r:?}"
    );
    // Within the limit, the same body decodes (padding around `{}`).
    let app = Router::new().route("/ok", get(|| async { format!("{}{{}}", " ".repeat(3000)) }));
    let (ok, _stop_ok) = serve(app).await;
    let v: serde_json::Value = small.json(client.get(format!("{ok}/ok"))).await.unwrap();
    assert_eq!(v, serde_json::json!({}));
}

#[tokio::test]
async fn an_endless_event_is_bounded_by_max_event_size() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let app = Router::new().route(
        "/events",
        get(move || {
            let counter = counter.clone();
            async move {
                // One line that never ends.
                let head = futures::stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from_static(b"data: "))
                });
                let chunk = Bytes::from(vec![b'x'; 16 << 10]);
                let tail = futures::stream::repeat(chunk).take(4096).map(move |c| {
                    counter.fetch_add(c.len(), Ordering::SeqCst);
                    Ok(c)
                });
                (
                    [(header::CONTENT_TYPE, "text/event-stream")],
                    Body::from_stream(head.chain(tail)),
                )
                    .into_response()
            }
        }),
    );
    let (base, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let items: Vec<_> = sse(client.get(format!("{base}/events")))
        .max_event_size(64 << 10)
        .collect()
        .await;
    assert!(
        matches!(items.as_slice(), [Err(Error::Sse(pollkit::sse::Error::EventTooLarge { limit }))] if *limit == 64 << 10),
        "{items:?}"
    );
    let sent = produced.load(Ordering::SeqCst);
    assert!(sent < 16 * MIB, "{sent} of 64 MiB produced");
}
