//! Transport fallback and stable conditions: `cargo run --example fallback --features reqwest`.
//!
//! The watcher prefers SSE, but a "proxy" here refuses event streams (the
//! stream is requested from a path that answers 404), so `Fallback` moves on to
//! long polling, resuming from the last status seen. Then `until_stable` waits
//! for a second job to be reported finished on three checks in a row.

mod common;

use std::error::Error;
use std::time::Duration;

use common::client::{Job, submit};
use common::server::{Config, Server};
use pollkit::reqwest::{IndexQuery, event_json, index_header};
use pollkit::{Fallback, Poller};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(Config::default()).await?;
    let client = reqwest::Client::builder().build()?;
    let id = submit(&client, server.base()).await?;
    let jobs = format!("{}/jobs/{id}", server.base());

    let (c1, c2, c3, c_stable) = (client.clone(), client.clone(), client.clone(), client);
    let (sse_url, long_url, short_url) =
        (format!("{jobs}/stream-behind-proxy"), jobs.clone(), jobs);
    let watch = Fallback::new()
        .then("sse", move |_last: Option<&Job>| {
            // A 404 is permanent: this transport is unusable, the next one starts.
            pollkit::reqwest::sse(c1.get(&sse_url))
                .try_map_status(event_json::<Job>)
                .boxed_poller()
        })
        .then("long", move |_last: Option<&Job>| {
            pollkit::reqwest::long_index(
                c2.get(&long_url),
                IndexQuery::consul(),
                index_header("x-index"),
            )
            .rate_limit(4, Duration::from_millis(250))
            .boxed_poller()
        })
        .then("short", move |_last: Option<&Job>| {
            pollkit::reqwest::short(c3.get(&short_url))
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
    let job = pollkit::reqwest::short::<Job>(c_stable.get(&url))
        .interval(Duration::from_millis(300))
        .until_stable(3, Job::is_finished)
        .await?;
    println!("finished on three checks in a row: {job}");
    Ok(())
}
