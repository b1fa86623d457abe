//! Watch one job with Server-Sent Events: `cargo run --example sse --features reqwest`.
//!
//! One response carries every change as an event; were the connection to
//! drop, pollkit would reconnect and resume after the last event id. The job
//! server and the watcher are in `examples/common` (`server.rs`, `client.rs`).

mod common;

use std::error::Error;
use std::time::Instant;

use common::Strategy;
use common::client::{submit, watch_sse};
use common::server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(Config::default()).await?;
    let client = reqwest::Client::builder().build()?;

    let id = submit(&client, server.base()).await?;
    println!("submitted {id}; listening to its events");
    let start = Instant::now();
    let job = watch_sse(&client, server.base(), &id, 1, |job| {
        println!("{:>6.2} s  {job}", start.elapsed().as_secs_f64());
    })
    .await?;

    let requests = server.counts(Strategy::Sse).requests;
    println!("finished: {} after {requests} request(s)", job.state);
    Ok(())
}
