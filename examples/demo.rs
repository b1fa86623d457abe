//! Short polling, long polling and Server-Sent Events side by side:
//!
//! ```sh
//! cargo run --example demo --features reqwest
//! cargo run --release --features reqwest --example demo -- --jobs 1000 --interval 500ms
//! ```
//!
//! An embedded job server runs on a free local port; the demo submits the same
//! kind of job once per strategy (`--jobs` at once), watches each with pollkit
//! through one reqwest client, and prints what each strategy cost on this run,
//! measured on both sides. The strategies run one after another, so that they
//! do not compete for the CPU.

mod common;

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use common::client::{Job, State};
use common::server::{Config, Server};
use common::{Progress, Report, Strategy, Watch, parse_duration};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Above this many jobs per strategy, one bar per strategy instead of one per job.
const MAX_JOB_BARS: usize = 20;

#[derive(Parser)]
#[command(about = "Watch jobs by short polling, long polling and SSE, and compare what each costs")]
struct Args {
    /// Which strategy to run.
    #[arg(long, value_enum, default_value_t = Choice::All)]
    strategy: Choice,
    /// Jobs watched at once, per strategy.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// The short-poll interval (500ms, 1s, ...).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// How long a job takes, spread by ±20 %.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    job_duration: Duration,
    /// The share of jobs that fail, from 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Seeds the job durations and pollkit's jitter.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Choice {
    Short,
    Long,
    Sse,
    /// Short polling paced by the job's own estimate of the time left.
    Adaptive,
    All,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let jobs = args.jobs as usize;
    warn_if_too_few_files(jobs);
    let config = Config {
        job_duration: args.job_duration,
        fail_rate: args.fail_rate,
        seed: args.seed,
    };
    let server = Server::start(config).await?;
    let client = reqwest::Client::builder().build()?;
    println!(
        "job server on {}: {jobs} job(s) per strategy, {:?} each (±20 %), short-poll interval {:?}",
        server.base(),
        args.job_duration,
        args.interval
    );

    let strategies = match args.strategy {
        Choice::Short => vec![Strategy::Short],
        Choice::Long => vec![Strategy::Long],
        Choice::Sse => vec![Strategy::Sse],
        Choice::Adaptive => vec![Strategy::Adaptive],
        Choice::All => Strategy::ALL.to_vec(),
    };
    let watch = Watch {
        jobs,
        interval: args.interval,
        seed: args.seed,
    };
    let multi = MultiProgress::new();
    let mut reports = Vec::new();
    for strategy in strategies {
        let (bars, progress) = progress_bars(&multi, strategy, jobs)?;
        reports.push(common::run(&server, &client, strategy, &watch, progress).await?);
        bars.iter().for_each(ProgressBar::finish);
    }
    print_table(&reports);
    for report in &reports {
        if let Some(Err(e)) = report
            .outcomes
            .iter()
            .map(|o| &o.result)
            .find(|r| r.is_err())
        {
            // The error, then each cause below it, once.
            let mut line = e.to_string();
            let mut cause = Error::source(e);
            while let Some(c) = cause {
                line = format!("{line}: {c}");
                cause = c.source();
            }
            eprintln!("{}: a watch gave up: {line}", report.strategy);
        }
    }
    Ok(())
}

/// A bar per job, or for many jobs one bar per strategy (the sum of percents).
fn progress_bars(
    multi: &MultiProgress,
    strategy: Strategy,
    jobs: usize,
) -> Result<(Vec<ProgressBar>, Progress), Box<dyn Error>> {
    if jobs <= MAX_JOB_BARS {
        let style = ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos:>3} % {msg}")?;
        let bars: Vec<_> = (1..=jobs)
            .map(|n| {
                let bar = ProgressBar::new(100).with_style(style.clone());
                multi.add(bar.with_prefix(format!("{strategy} job {n}")))
            })
            .collect();
        let shared = bars.clone();
        let progress: Progress = Arc::new(move |n, job: &Job| {
            shared[n].set_position(job.percent.into());
            shared[n].set_message(job.to_string());
        });
        return Ok((bars, progress));
    }
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:40}] {percent:>3} % {msg}")?;
    let bar = ProgressBar::new(jobs as u64 * 100).with_style(style);
    let bar = multi.add(bar.with_prefix(strategy.to_string()));
    bar.set_message(format!("of {jobs} jobs"));
    let last: Vec<AtomicU8> = (0..jobs).map(|_| AtomicU8::new(0)).collect();
    let shared = bar.clone();
    let progress: Progress = Arc::new(move |n, job: &Job| {
        let percent = if job.is_finished() { 100 } else { job.percent };
        let before = last[n].swap(percent, Ordering::Relaxed);
        shared.inc(percent.saturating_sub(before).into());
    });
    Ok((vec![bar], progress))
}

fn print_table(reports: &[Report]) {
    let row = |name: &str, cell: &dyn Fn(&Report) -> String| {
        let cells: String = reports.iter().map(|r| format!("{:>12}", cell(r))).collect();
        println!("{name:<30}{cells}");
    };
    println!();
    row("", &|r| r.strategy.to_string());
    row("jobs completed", &|r| {
        format!("{}/{}", ended(r, State::Completed), r.outcomes.len())
    });
    if reports
        .iter()
        .any(|r| ended(r, State::Completed) < r.outcomes.len())
    {
        row("jobs failed", &|r| ended(r, State::Failed).to_string());
        row("watches that gave up", &|r| {
            let finished = ended(r, State::Completed) + ended(r, State::Failed);
            (r.outcomes.len() - finished).to_string()
        });
    }
    row("requests", &|r| r.server.requests.to_string());
    row("requests per job", &|r| per_job(r, r.server.requests));
    row("bytes received", &|r| bytes(r.server.bytes));
    row("bytes per job", &|r| {
        bytes(r.server.bytes / r.outcomes.len() as u64)
    });
    if reports.iter().any(|r| r.outcomes.len() > 1) {
        row("detection latency p50", &|r| latency(r, 0.5));
        row("detection latency p99", &|r| latency(r, 0.99));
        row("detection latency max", &|r| latency(r, 1.0));
    } else {
        row("detection latency", &|r| latency(r, 1.0));
    }
    row("server: peak open connections", &|r| {
        r.server.peak_open.to_string()
    });
    row("server: requests per second", &|r| {
        format!("{:.1}", r.server.requests as f64 / r.elapsed.as_secs_f64())
    });
    row("wall time", &|r| {
        format!("{:.2} s", r.elapsed.as_secs_f64())
    });
    println!(
        "\nrequests, bytes: watch requests and their response bodies, as the server counted them\n\
         (not the POST that submits each job). Detection latency: from the server recording a\n\
         job's final status to its watcher knowing it. Open connections: watch requests in flight."
    );
}

/// How many jobs ended in `state`.
fn ended(report: &Report, state: State) -> usize {
    let is = |job: &Job| job.state == state;
    report
        .outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_ok_and(is))
        .count()
}

fn per_job(report: &Report, total: u64) -> String {
    format!("{:.1}", total as f64 / report.outcomes.len() as f64)
}

fn bytes(n: u64) -> String {
    match n {
        0..10_000 => format!("{n} B"),
        10_000..10_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// The `q` quantile of the detection latencies.
fn latency(report: &Report, q: f64) -> String {
    let mut all: Vec<Duration> = report.outcomes.iter().filter_map(|o| o.latency).collect();
    all.sort();
    let Some(last) = all.len().checked_sub(1) else {
        return "-".into();
    };
    match all[(last as f64 * q).round() as usize] {
        at if at < Duration::from_millis(1) => format!("{} µs", at.as_micros()),
        at => format!("{:.1} ms", at.as_secs_f64() * 1e3),
    }
}

/// Each held request uses a file descriptor on both ends of its connection, so
/// `--jobs 1000` needs about 2000; Linux's usual soft limit is 1024.
fn warn_if_too_few_files(jobs: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse::<usize>().ok());
    let needed = 2 * jobs + 100;
    if let Some(soft) = soft.filter(|&soft| soft < needed) {
        eprintln!(
            "warning: {jobs} jobs need about {needed} open files, the limit is {soft}: run `ulimit -n {needed}` first"
        );
    }
}
