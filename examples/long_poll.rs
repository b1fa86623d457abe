//! Watch one job by long polling: `cargo run --example long_poll --features reqwest`.
//!
//! Each request is held by the server until the job changes, so every answer
//! is new and arrives as the change happens. The job server and the watcher
//! are in `examples/common` (`server.rs`, `client.rs`).

mod common;

use std::error::Error;
use std::time::Instant;

use common::Strategy;
use common::client::{submit, watch_long};
use common::server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(Config::default()).await?;
    let client = reqwest::Client::builder().build()?;

    let id = submit(&client, server.base()).await?;
    println!("submitted {id}; each request waits for the next change");
    let start = Instant::now();
    let job = watch_long(&client, server.base(), &id, 1, |job| {
        println!("{:>6.2} s  {job}", start.elapsed().as_secs_f64());
    })
    .await?;

    let requests = server.counts(Strategy::Long).requests;
    println!("finished: {} after {requests} requests", job.state);
    Ok(())
}
