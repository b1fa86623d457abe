//! A long-running operation, the way Azure and many job APIs run one:
//! `cargo run --example long_running --features reqwest`.
//!
//! `POST /exports` answers `202 Accepted` at once, with `Location` (where to
//! watch the operation) and `Retry-After` (when to ask). Polling that
//! location answers `202` with a new `Retry-After` while it runs, then `200`
//! with the result. `json_answer` starts it and `short_answer` watches it:
//! both hand the status code and the headers with the body, and each
//! `Retry-After` sets the time of the next poll (the 100 ms interval set
//! here never applies).

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use pollkit::Poller;
use pollkit::reqwest::{json_answer, short_answer};
use serde::Deserialize;

/// The operation's status document.
#[derive(Debug, Deserialize)]
struct Operation {
    status: String,
    percent: u32,
    #[serde(rename = "resultUrl")]
    result_url: Option<String>,
}

/// An export that takes four polls, and asks to be polled once a second.
async fn server() -> Result<String, Box<dyn Error>> {
    let polls = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/exports",
            post(|| async {
                (
                    StatusCode::ACCEPTED,
                    [("location", "/operations/41"), ("retry-after", "1")],
                )
            }),
        )
        .route(
            "/operations/41",
            get(move || {
                let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n < 4 {
                        let body = serde_json::json!({"status": "running", "percent": n * 25});
                        (StatusCode::ACCEPTED, [("retry-after", "1")], Json(body)).into_response()
                    } else {
                        let body = serde_json::json!({
                            "status": "succeeded",
                            "percent": 100,
                            "resultUrl": "/exports/41.csv",
                        });
                        (StatusCode::OK, Json(body)).into_response()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let base = server().await?;
    let client = reqwest::Client::new();
    let start = Instant::now();

    // Start: 202, and where to watch. The answer has no body: `()` reads it.
    let accepted = json_answer::<()>(client.post(format!("{base}/exports"))).await?;
    let location = accepted.location().ok_or("the 202 has no Location")?;
    println!(
        "{} {location}, retry after {:?}",
        accepted.status(),
        accepted.retry_after()
    );

    // Watch: every 202 says when to ask again; the 200 is the end.
    let done = short_answer::<Operation>(client.get(format!("{base}{location}")))
        .interval(Duration::from_millis(100))
        .timeout(Duration::from_secs(60))
        .until(|op| {
            println!(
                "{:>5.2} s  {} {} {} %",
                start.elapsed().as_secs_f64(),
                op.status(),
                op.body().status,
                op.body().percent
            );
            op.status() == StatusCode::OK
        })
        .await?;
    let result = done.into_body().result_url.ok_or("no result")?;
    println!(
        "done after {:.1} s: {result}",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
