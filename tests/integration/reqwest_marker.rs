//! A property: whatever a server answers and whatever the request carries,
//! a marker string put in bodies, response headers, the query, the userinfo
//! and the request's headers never appears in an error's `Display`, `Debug`,
//! any `source()` of its chain, or a tracing event, for every helper
//! (`json`, `json_answer`, `short`, `short_answer`, `long_index`,
//! `long_etag`, `sse`, `event_json`) and
//! every failure kind they report.
#![cfg(feature = "reqwest")]

use crate::loopback;

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use pollkit::Poller;
use pollkit::reqwest::{
    IndexQuery, event_json, index_header, json, json_answer, long_etag, long_index, short,
    short_answer, sse,
};
use proptest::prelude::*;
use tokio::sync::oneshot;

/// The status type every helper decodes: a number where the marker server
/// puts a string.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Typed {
    n: u32,
}

/// What the server answers next.
#[derive(Clone, Debug, Default)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// The failure kinds a server can cause, each with the marker in its body
/// and headers.
fn answers(marker: &str) -> Vec<(&'static str, Answer)> {
    let echo = |ct: String| {
        vec![
            ("content-type", ct),
            ("www-authenticate", format!("Bearer realm={marker}")),
            ("set-cookie", format!("session={marker}")),
            ("retry-after", marker.to_owned()),
            ("x-debug", marker.to_owned()),
        ]
    };
    let json_ct = || "application/json".to_owned();
    vec![
        // A value that does not fit the type (serde_json quotes it).
        (
            "data",
            Answer {
                status: 200,
                headers: [
                    echo(json_ct()),
                    vec![("x-index", "5".into()), ("etag", "\"v1\"".into())],
                ]
                .concat(),
                body: format!(r#"{{"n": "{marker}", "state": "Bearer {marker}"}}"#),
            },
        ),
        // A key that does not fit: serde_json quotes unknown variants and keys.
        (
            "data-nested",
            Answer {
                status: 200,
                headers: [echo(json_ct()), vec![("x-index", "5".into())]].concat(),
                body: format!(r#"{{"n": {{"{marker}": 1}}}}"#),
            },
        ),
        // Not JSON at all, and a content type that carries the marker.
        (
            "syntax",
            Answer {
                status: 200,
                headers: echo(format!("text/{marker}")),
                body: format!("{marker} is not json"),
            },
        ),
        // JSON that ends early.
        (
            "eof",
            Answer {
                status: 200,
                headers: echo(json_ct()),
                body: format!(r#"{{"n": "{marker}"#),
            },
        ),
        // A permanent status.
        (
            "404",
            Answer {
                status: 404,
                headers: echo(format!("application/{marker}+json")),
                body: format!(r#"{{"error": "{marker}"}}"#),
            },
        ),
        // A transient status (retried until the attempt limit).
        (
            "503",
            Answer {
                status: 503,
                headers: echo(json_ct()),
                body: format!("upstream {marker} down"),
            },
        ),
        // A body past the helpers' limit (4 MiB).
        (
            "too-large",
            Answer {
                status: 200,
                headers: [echo(json_ct()), vec![("x-index", "5".into())]].concat(),
                body: format!("\"{marker}\" ").repeat((4 << 20) / marker.len() + 1),
            },
        ),
        // A success without the index a long poll needs.
        (
            "protocol",
            Answer {
                status: 200,
                headers: echo(json_ct()),
                body: r#"{"n": 1}"#.to_owned(),
            },
        ),
        // An event stream whose event data does not fit the type.
        (
            "event",
            Answer {
                status: 200,
                headers: echo("text/event-stream".into()),
                body: format!("id: {marker}\nevent: {marker}\ndata: {{\"n\": \"{marker}\"}}\n\n"),
            },
        ),
    ]
}

async fn server(next: Arc<Mutex<Answer>>) -> (String, oneshot::Sender<()>) {
    let app = Router::new().fallback(move || {
        let a = next.lock().unwrap().clone();
        async move {
            let mut r = Response::new(Body::from(a.body));
            *r.status_mut() = StatusCode::from_u16(a.status).unwrap();
            for (name, value) in a.headers {
                r.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).unwrap(),
                );
            }
            r
        }
    });
    let (base, stop) = loopback::serve(app).await;
    (base.trim_start_matches("http://").to_owned(), stop)
}

/// Everything an error shows: Display, Debug (plain and pretty) of it and
/// of every source below it.
fn everything(e: &(dyn StdError + 'static)) -> String {
    let mut all = String::new();
    let mut next = Some(e);
    while let Some(s) = next {
        let _ = write!(all, "{s}\n{s:?}\n{s:#?}\n");
        next = s.source();
    }
    all
}

/// Runs every helper against the server's answer: the errors they end with.
async fn errors(host: &str, marker: &str) -> Vec<(&'static str, Box<dyn StdError + Send + Sync>)> {
    let client = reqwest::Client::new();
    let request = || {
        client
            .get(format!(
                "http://user:{marker}@{host}/jobs/1?token={marker}#{marker}"
            ))
            .header("authorization", format!("Bearer {marker}"))
            .header("cookie", format!("id={marker}"))
    };
    let mut out: Vec<(&'static str, Box<dyn StdError + Send + Sync>)> = Vec::new();
    if let Err(e) = json::<Typed>(request()).await {
        out.push(("json", Box::new(e)));
    }
    if let Err(e) = short::<Typed>(request())
        .max_attempts(1)
        .until(|_| true)
        .await
    {
        out.push(("short", Box::new(e)));
    }
    if let Err(e) = json_answer::<Typed>(request()).await {
        out.push(("json_answer", Box::new(e)));
    }
    let answers = short_answer::<Typed>(request()).max_attempts(1);
    if let Err(e) = answers.until(|_| true).await {
        out.push(("short_answer", Box::new(e)));
    }
    let index = long_index::<Typed, _>(request(), IndexQuery::consul(), index_header("x-index"));
    if let Some(Err(e)) = index.max_attempts(1).next().await {
        out.push(("long_index", Box::new(e)));
    }
    if let Some(Err(e)) = long_etag::<Typed>(request()).max_attempts(1).next().await {
        out.push(("long_etag", Box::new(e)));
    }
    let mut events = sse(request())
        .max_attempts(1)
        .try_map_status(event_json::<Typed>);
    if let Some(Err(e)) = events.next().await {
        out.push(("sse", Box::new(e)));
    }
    out
}

fn markers() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{6,24}".prop_map(|tail| format!("MRK{tail}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn no_marker_in_any_error_output(marker in markers()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let capture = Capture::default();
        let next = Arc::new(Mutex::new(Answer::default()));
        let mut seen = 0;
        tracing::subscriber::with_default(capture.clone(), || {
            rt.block_on(async {
                let (host, _stop) = server(next.clone()).await;
                for (kind, answer) in answers(&marker) {
                    *next.lock().unwrap() = answer;
                    for (helper, e) in errors(&host, &marker).await {
                        seen += 1;
                        tracing::error!(error = &*e as &(dyn StdError + 'static), "{helper} failed");
                        let text = everything(&*e);
                        assert!(!text.contains(&marker), "{helper}, {kind}: marker in\n{text}");
                    }
                }
            });
        });
        // Every helper fails in most kinds: a server change that made them
        // succeed would make this test vacuous.
        prop_assert!(seen >= 50, "only {seen} errors");
        let logged = capture.0.lock().unwrap().clone();
        prop_assert!(!logged.contains(&marker), "marker in tracing output:\n{logged}");
    }
}

/// Event data decoded by `event_json` alone, without a server.
#[test]
fn event_json_does_not_quote_the_data() {
    let mut parser = pollkit::sse::Parser::new();
    parser
        .feed(b"data: {\"n\": \"MRKsecret\"}\n\ndata: MRKsecret\n\n")
        .unwrap();
    for _ in 0..2 {
        let event = parser.next_event().unwrap();
        let e = event_json::<Typed>(event).unwrap_err();
        let text = everything(&e);
        assert!(!text.contains("MRKsecret"), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }
}

// --- tracing: a minimal subscriber that writes every field into a String.

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }

    fn record_error(&mut self, field: &tracing::field::Field, value: &(dyn StdError + 'static)) {
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
