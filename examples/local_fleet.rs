//! A polite fleet: `cargo run --example local_fleet --features hub,reqwest`.
//!
//! 20 jobs, each watched by 5 callers. A `Hub` runs one poller per job however
//! many callers wait for it; a `Budget` keeps the whole fleet under 20 requests
//! per second; `Stats` counts what it all cost; a `Checkpoint` shows how a
//! restarted service would go on waiting.

mod common;

use std::error::Error;
use std::time::{Duration, Instant};

use common::client::{Job, State, submit};
use common::server::{Config, Server};
use pollkit::reqwest::HttpError;
use pollkit::{Budget, Hub, Jitter, Poller, Stats};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(Config::default()).await?;
    let client = reqwest::Client::builder().build()?;
    let base = server.base().to_owned();

    let hub: Hub<String, Job, HttpError> = Hub::new();
    let budget = Budget::per_second(20).burst(5);
    let stats = Stats::new();
    let start = Instant::now();

    let mut callers = Vec::new();
    for _ in 0..20 {
        let id = submit(&client, &base).await?;
        for caller in 0..5 {
            // Every caller asks the hub; only the first of each job starts a poller.
            let (client, url) = (client.clone(), format!("{base}/jobs/{id}"));
            let (budget, stats) = (budget.clone(), stats.clone());
            let key = id.clone();
            let watch = hub.watch(id.clone(), move || {
                pollkit::reqwest::short(client.get(&url))
                    .interval(Duration::from_millis(500))
                    .jitter(Jitter::Full)
                    .budget(budget)
                    .stats(stats)
                    .key(key)
            });
            // Each caller has its own condition: some want the end, some 50 %.
            let wants_end = caller % 2 == 0;
            callers.push(tokio::spawn(watch.until(move |job| {
                if wants_end {
                    job.is_finished()
                } else {
                    job.percent >= 50 || job.is_finished()
                }
            })));
        }
    }
    let mut done = 0;
    for caller in callers {
        if caller
            .await?
            .is_ok_and(|job| job.percent >= 50 || job.state == State::Failed)
        {
            done += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!("{done} of 100 callers satisfied in {elapsed:.1} s");
    println!(
        "{} requests for 20 jobs and 100 callers ({:.1} per second, budget 20), {} errors",
        stats.requests(),
        stats.requests() as f64 / elapsed,
        stats.errors()
    );
    println!("pollers still running: {}", hub.pollers());

    // A checkpoint: where a wait stands, to go on after a restart.
    let id = submit(&client, &base).await?;
    let url = format!("{base}/jobs/{id}");
    let mut poller = pollkit::reqwest::short::<Job>(client.get(&url))
        .interval(Duration::from_millis(500))
        .timeout(Duration::from_secs(60));
    futures::StreamExt::next(&mut poller).await;
    let saved = poller.checkpoint();
    println!("saved {saved:?}; the service restarts here");
    let job = pollkit::reqwest::short(client.get(&url))
        .interval(Duration::from_millis(500))
        .timeout(Duration::from_secs(60))
        .resume(saved)
        .until(Job::is_finished)
        .await?;
    println!("after the restart: {job}");
    Ok(())
}
