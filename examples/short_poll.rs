//! Watch one job by short polling: `cargo run --example short_poll --features reqwest`.
//!
//! Every answer is printed, so the repeated ones show what short polling
//! spends: most requests find nothing new. The job server and the watcher are
//! in `examples/common` (`server.rs`, `client.rs`).

mod common;

use std::error::Error;
use std::time::{Duration, Instant};

use common::Strategy;
use common::client::{submit, watch_short};
use common::server::{Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(Config::default()).await?;
    let client = reqwest::Client::builder().build()?;

    let id = submit(&client, server.base()).await?;
    println!("submitted {id}; asking every 500 ms");
    let start = Instant::now();
    let interval = Duration::from_millis(500);
    let job = watch_short(&client, server.base(), &id, interval, 1, |job| {
        println!("{:>6.2} s  {job}", start.elapsed().as_secs_f64());
    })
    .await?;

    let requests = server.counts(Strategy::Short).requests;
    println!("finished: {} after {requests} requests", job.state);
    Ok(())
}
