//! What the examples share: the embedded job server ([`server`]), the three
//! watchers a service would copy ([`client`]), and [`run`], which submits jobs
//! and watches them with one strategy while the server counts the cost.

// Each example uses a part of this module.
#![allow(dead_code)]

pub mod client;
pub mod server;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::Job;
use pollkit::reqwest::HttpError;
use server::{Counts, Server};

/// A way to watch a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Short,
    Long,
    Sse,
    Adaptive,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Short,
        Strategy::Adaptive,
        Strategy::Long,
        Strategy::Sse,
    ];
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Short => "short",
            Strategy::Long => "long",
            Strategy::Sse => "sse",
            Strategy::Adaptive => "adaptive",
        })
    }
}

/// `500ms`, `1s`, `1.5s`, `2m` (a bare number is seconds): the command line's
/// durations and the long-poll `wait` parameter.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "ms" => 0.001,
        "s" | "" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("{text:?}: use ms, s or m, as in 500ms")),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms or 1s"))?;
    Duration::try_from_secs_f64(number * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// How [`run`] watches its jobs.
#[derive(Clone, Debug)]
pub struct Watch {
    /// Jobs submitted and watched at once.
    pub jobs: usize,
    /// The short-poll interval.
    pub interval: Duration,
    /// Seeds pollkit's jitter (each job's watcher gets its own seed from it).
    pub seed: u64,
}

/// Called with the job's number (from 0) and each status its watcher sees.
pub type Progress = Arc<dyn Fn(usize, &Job) + Send + Sync>;

/// How watching one job ended.
#[derive(Debug)]
pub struct Outcome {
    /// The final status, or why watching stopped without one.
    pub result: Result<Job, pollkit::Error<HttpError>>,
    /// From the server recording the final status to the client knowing it.
    pub latency: Option<Duration>,
}

/// One strategy's run, measured on both sides.
#[derive(Debug)]
pub struct Report {
    pub strategy: Strategy,
    pub outcomes: Vec<Outcome>,
    /// The server's side: requests, bytes, peak open requests.
    pub server: Counts,
    /// From the first job submitted to the last one known finished.
    pub elapsed: Duration,
}

/// Submits `watch.jobs` jobs, watches each in its own task with `strategy`
/// through one shared `client`, and measures the run.
///
/// # Errors
/// When a job cannot be submitted.
pub async fn run(
    server: &Server,
    client: &reqwest::Client,
    strategy: Strategy,
    watch: &Watch,
    progress: Progress,
) -> Result<Report, HttpError> {
    server.new_round();
    let started = Instant::now();
    let submits = (0..watch.jobs).map(|_| client::submit(client, server.base()));
    let ids = futures::future::try_join_all(submits).await?;
    let watchers = ids.into_iter().enumerate().map(|(n, id)| {
        let (client, base, progress) = (client.clone(), server.base().to_owned(), progress.clone());
        let (interval, seed) = (watch.interval, watch.seed.wrapping_add(n as u64));
        tokio::spawn(async move {
            let on_status = |job: &Job| progress(n, job);
            let result = match strategy {
                Strategy::Short => {
                    client::watch_short(&client, &base, &id, interval, seed, on_status).await
                }
                Strategy::Long => client::watch_long(&client, &base, &id, seed, on_status).await,
                Strategy::Sse => client::watch_sse(&client, &base, &id, seed, on_status).await,
                Strategy::Adaptive => {
                    client::watch_adaptive(&client, &base, &id, interval, seed, on_status).await
                }
            };
            (id, result, Instant::now())
        })
    });
    let mut outcomes = Vec::with_capacity(watch.jobs);
    for joined in futures::future::join_all(watchers).await {
        let (id, result, seen) = joined.expect("a watcher panicked");
        let finished = result.is_ok().then(|| server.finished_at(&id)).flatten();
        let latency = finished.map(|at| seen.saturating_duration_since(at));
        outcomes.push(Outcome { result, latency });
    }
    Ok(Report {
        strategy,
        outcomes,
        server: server.counts(strategy),
        elapsed: started.elapsed(),
    })
}
