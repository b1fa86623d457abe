//! `HttpError` keeps what matters and never a secret: no `Authorization`,
//! `Cookie` or `Set-Cookie` value, no userinfo or query string, in
//! `Display`, `Debug`, the source chain, or tracing output.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::error::Error as _;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use pollkit::reqwest::{ErrorKind, HttpError, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECRETS: [&str; 6] = [
    "hunter2",         // URL password
    "alice",           // URL user
    "tok-in-query",    // query string
    "Bearer-s3cr3t",   // Authorization
    "session=cookie1", // Cookie
    "set-me-not",      // Set-Cookie
];

/// The loopback server's `host:port` (the tests build URLs with userinfo).
async fn serve(app: Router) -> (String, oneshot::Sender<()>) {
    let (base, stop) = loopback::serve(app).await;
    (base.trim_start_matches("http://").to_owned(), stop)
}

/// Everything a log could show of an error: Display, Debug, alternate
/// Debug, and the Display and Debug of every source.
fn everything(e: &HttpError) -> String {
    let mut all = format!("{e}\n{e:?}\n{e:#?}\n");
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(all, "{s}\n{s:?}\n");
        source = s.source();
    }
    all
}

fn assert_clean(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} leaked in:\n{text}");
    }
}

/// A request that carries every kind of secret.
fn leaky_request(client: &reqwest::Client, host: &str, path: &str) -> reqwest::RequestBuilder {
    client
        .get(format!(
            "http://alice:hunter2@{host}{path}?token=tok-in-query#frag"
        ))
        .header(header::AUTHORIZATION, "Bearer-s3cr3t")
        .header(header::COOKIE, "session=cookie1")
}

#[tokio::test]
async fn a_status_error_keeps_what_matters_and_no_secret() {
    let app = Router::new().route(
        "/jobs/1",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [
                    (header::RETRY_AFTER, "7"),
                    (header::SET_COOKIE, "id=set-me-not"),
                    (header::CONTENT_TYPE, "application/problem+json"),
                ],
                format!("{{\"title\":\"down\",\"pad\":\"{}\"}}", "x".repeat(5000)),
            )
                .into_response()
        }),
    );
    let (host, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let err = json::<serde_json::Value>(leaky_request(&client, &host, "/jobs/1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert_eq!(err.status(), Some(reqwest::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_transient());
    assert_eq!(err.content_type(), Some("application/problem+json"));
    assert_eq!(err.body().len(), 1024);
    assert!(err.body().starts_with(b"{\"title\":\"down\""));
    assert_eq!(err.url(), Some(format!("http://{host}/jobs/1").as_str()));
    assert_eq!(
        err.to_string(),
        format!("GET http://{host}/jobs/1 answered 503 Service Unavailable (retry after 7s)")
    );
    assert_clean(&everything(&err));
}

#[tokio::test]
async fn a_transport_error_loses_reqwests_url() {
    // A port that was open and is now closed: connection refused.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    let client = reqwest::Client::new();
    // What a hand-written closure would log: reqwest's own error shows the query.
    let raw = leaky_request(&client, &host, "/x")
        .send()
        .await
        .unwrap_err();
    assert!(format!("{raw} {raw:?}").contains("tok-in-query"), "{raw}");
    let err = json::<serde_json::Value>(leaky_request(&client, &host, "/x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.is_transient());
    assert_eq!(err.status(), None);
    // The source is reqwest's error, without the URL reqwest would print.
    let source = err.source().expect("a source");
    assert!(source.downcast_ref::<reqwest::Error>().is_some());
    // Our own message does not repeat the source's.
    assert!(!err.to_string().contains(&source.to_string()));
    assert_clean(&everything(&err));
}

#[tokio::test]
async fn a_decode_error_is_permanent_and_clean() {
    let app = Router::new().route("/jobs/1", get(|| async { "not json hunter2" }));
    let (host, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let err = json::<serde_json::Value>(leaky_request(&client, &host, "/jobs/1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(!err.is_transient());
    assert!(err.source().is_some());
    // The body of a success is not kept, and a decode error does not quote it.
    assert!(err.body().is_empty());
    assert_clean(&everything(&err));
}

#[tokio::test]
async fn a_builder_error_is_permanent() {
    let client = reqwest::Client::new();
    let err = json::<serde_json::Value>(client.get("not a url ?token=tok-in-query"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder);
    assert!(!err.is_transient());
    assert_eq!(err.url(), None);
    assert_clean(&everything(&err));
}

// --- tracing: a minimal subscriber that writes every field into a String.

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        // As error reporters do: the whole chain.
        let _ = write!(self.0, "{}={value} ", field.name());
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(self.0, "caused by {s} / {s:?} ");
            source = s.source();
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Fields(&mut self.0.lock().unwrap()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn tracing_output_is_clean() {
    let app = Router::new().route(
        "/jobs/1",
        get(|| async {
            (
                StatusCode::UNAUTHORIZED,
                [(header::SET_COOKIE, "id=set-me-not")],
                "bad token Bearer-s3cr3t",
            )
        }),
    );
    let (host, _stop) = serve(app).await;
    let client = reqwest::Client::new();
    let status = json::<serde_json::Value>(leaky_request(&client, &host, "/jobs/1"))
        .await
        .unwrap_err();
    assert!(!status.is_transient());
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        drop(listener);
        json::<serde_json::Value>(leaky_request(&client, &host, "/x"))
            .await
            .unwrap_err()
    };
    // And wrapped in pollkit's own error, as a poller yields it.
    let wrapped: pollkit::Error<HttpError> = pollkit::Error::Fetch(closed.clone());

    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        for e in [&status, &closed] {
            tracing::error!(error = e as &dyn std::error::Error, "watch failed");
            tracing::warn!(?e, "debug");
            tracing::warn!(%e, "display");
            tracing::info!(e = tracing::field::debug(e), "field::debug");
        }
        tracing::error!(error = &wrapped as &dyn std::error::Error, "poller failed");
        tracing::error!(?wrapped, "poller failed");
        let span = tracing::info_span!("watch", error = %status);
        let _entered = span.enter();
    });
    let out = capture.0.lock().unwrap().clone();
    assert!(out.contains("401 Unauthorized"), "{out}");
    assert!(out.contains("could not connect"), "{out}");
    assert_clean(&out);
}

#[test]
fn auto_traits() {
    fn send_sync_unpin<T: Send + Sync + Unpin + Clone + 'static>() {}
    fn send_unpin<T: Send + Unpin + 'static>(_: &T) {}
    send_sync_unpin::<HttpError>();
    send_sync_unpin::<pollkit::reqwest::IndexQuery>();
    let client = reqwest::Client::new();
    let json = json::<serde_json::Value>(client.get("http://127.0.0.1:9/"));
    send_unpin(&json);
    send_unpin(&pollkit::reqwest::short::<serde_json::Value>(
        client.get("http://127.0.0.1:9/"),
    ));
    send_unpin(&pollkit::reqwest::sse(client.get("http://127.0.0.1:9/")));
    send_unpin(&pollkit::reqwest::long_etag::<serde_json::Value>(
        client.get("http://127.0.0.1:9/"),
    ));
    send_unpin(&pollkit::reqwest::long_index::<serde_json::Value, _>(
        client.get("http://127.0.0.1:9/"),
        pollkit::reqwest::IndexQuery::consul(),
        pollkit::reqwest::index_header("x-consul-index"),
    ));
}

/// Review find: `without_url` strips only the outer reqwest error's URL. A
/// redirect the client refuses nests a reqwest error that still holds the
/// URL it was sent to (with `https_only` and a plain-http `Location`, the
/// presigned target with its signature), and that error was the second
/// link of the source chain and in `Debug`. Here the nested error comes
/// from a redirect policy, as reqwest builds it for `https_only`.
#[tokio::test]
async fn a_refused_redirect_keeps_no_url_in_the_chain() {
    let app = Router::new().route(
        "/status",
        get(|| async {
            (
                StatusCode::FOUND,
                [(header::LOCATION, "/signed?sig=tok-in-query")],
            )
        }),
    );
    let (host, _stop) = serve(app).await;
    // A reqwest error that holds a URL with the secret, as `url_bad_scheme`
    // does (a refused connection keeps the URL it was sent to).
    let nested = reqwest::Client::new()
        .get("http://127.0.0.1:9/signed?sig=tok-in-query")
        .send()
        .await
        .expect_err("port 9 refuses");
    assert!(nested.url().is_some());
    let nested = Arc::new(Mutex::new(Some(nested)));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(
            move |attempt| match nested.lock().unwrap().take() {
                Some(e) => attempt.error(e),
                None => attempt.stop(),
            },
        ))
        .build()
        .unwrap();
    let err = json::<serde_json::Value>(client.get(format!("http://{host}/status")))
        .await
        .expect_err("the redirect is refused");
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_clean(&everything(&err));
}
