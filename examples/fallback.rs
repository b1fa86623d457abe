//! Transport fallback and stable conditions: `cargo run --example fallback`.
//!
//! The watcher prefers SSE, but a "proxy" here refuses event streams (the
//! stream is requested from a path that answers 404), so `Fallback` moves on to
//! long polling, resuming from the last status seen. Then `until_stable` waits
//! for a second job to be reported finished on three checks in a row.

mod common;

use std::error::Error;
use std::time::Duration;

use common::client::{ApiError, Job, submit};
use common::server::{Config, Server};
use futures::TryStreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Fallback, LongPoll, Poller, ShortPoll, SseStream};
use reqwest::StatusCode;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(Config::default()).await?;
    let client = reqwest::Client::builder().use_rustls_tls().build()?;
    let id = submit(&client, server.base()).await?;
    let jobs = format!("{}/jobs/{id}", server.base());

    let (c1, c2, c3, c_stable) = (client.clone(), client.clone(), client.clone(), client);
    let (sse_url, long_url, short_url) =
        (format!("{jobs}/stream-behind-proxy"), jobs.clone(), jobs);
    let watch = Fallback::new()
        .then("sse", move |_last: Option<&Job>| {
            let (client, url) = (c1.clone(), sse_url.clone());
            SseStream::new(move |_id: Option<String>| {
                let request = client.get(&url).header("accept", "text/event-stream");
                async move {
                    let response = request.send().await?.error_for_status()?;
                    Ok::<_, ApiError>(response.bytes_stream().map_err(ApiError::from))
                }
            })
            .retry_if(ApiError::is_transient)
            .try_map_status(|event| Ok(serde_json::from_str::<Job>(event.data())?))
            .boxed_poller()
        })
        .then("long", move |_last: Option<&Job>| {
            let (client, url) = (c2.clone(), long_url.clone());
            LongPoll::new(move |req: Request<u64>| {
                let index = req.cursor().copied().unwrap_or(0);
                let request = client.get(format!("{url}?index={index}&wait=30s"));
                async move {
                    let response = request.send().await?.error_for_status()?;
                    if response.status() == StatusCode::NOT_MODIFIED {
                        return Ok(Reply::unchanged());
                    }
                    let next = response
                        .headers()
                        .get("x-index")
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .ok_or(ApiError::MissingIndex)?;
                    Ok(Reply::changed(response.json::<Job>().await?, next))
                }
            })
            .rate_limit(4, Duration::from_millis(250))
            .retry_if(ApiError::is_transient)
            .boxed_poller()
        })
        .then("short", move |_last: Option<&Job>| {
            let (client, url) = (c3.clone(), short_url.clone());
            ShortPoll::new(move || {
                let request = client.get(&url);
                async move {
                    Ok::<Job, ApiError>(request.send().await?.error_for_status()?.json().await?)
                }
            })
            .interval(Duration::from_millis(500))
            .boxed_poller()
        })
        .unusable_after(Duration::from_secs(10))
        .retry_better_after(Duration::from_secs(60));

    let job = watch
        .map_status(|job| {
            println!("{job}");
            job
        })
        .until(Job::is_finished)
        .await?;
    println!("finished: {job}");

    // "Done" on three checks in a row, not one lucky poll.
    let id = submit(&c_stable, server.base()).await?;
    let url = format!("{}/jobs/{id}", server.base());
    let job = ShortPoll::new(move || {
        let request = c_stable.get(&url);
        async move { Ok::<Job, ApiError>(request.send().await?.error_for_status()?.json().await?) }
    })
    .interval(Duration::from_millis(300))
    .until_stable(3, Job::is_finished)
    .await?;
    println!("finished on three checks in a row: {job}");
    Ok(())
}
