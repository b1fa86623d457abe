//! The demo's flow (`examples/demo.rs`) in-process with small numbers, so that
//! the examples cannot rot: every job finishes under every strategy, and the
//! server's counts compare as the strategies say they should.
//!
//! Real clock and real sockets: the assertions are on counts and results, and
//! on time only with generous bounds.

use crate::example_common as common;

use std::sync::Arc;
use std::time::Duration;

use common::client::State;
use common::server::{Config, FINAL, Server};
use common::{Report, Strategy, Watch};

const JOBS: usize = 3;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs every strategy, one after another as the demo does.
async fn run_all(fail_rate: f64) -> Vec<Report> {
    let config = Config {
        job_duration: ms(400),
        fail_rate,
        seed: 7,
    };
    let server = Server::start(config).await.expect("the server starts");
    let client = reqwest::Client::builder()
        .build()
        .expect("a reqwest client");
    let watch = Watch {
        jobs: JOBS,
        interval: ms(5),
        seed: 7,
    };
    let mut reports = Vec::new();
    for strategy in Strategy::ALL {
        let run = common::run(&server, &client, strategy, &watch, Arc::new(|_, _| {}));
        let report = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run finishes")
            .expect("the jobs are submitted");
        reports.push(report);
    }
    reports
}

/// Every job of every strategy ended in `state`, and the watcher knew soon
/// after the server finished it.
fn assert_all_ended(reports: &[Report], state: State) {
    for report in reports {
        assert_eq!(report.outcomes.len(), JOBS);
        for outcome in &report.outcomes {
            let job = match &outcome.result {
                Ok(job) => job,
                Err(e) => panic!("{}: watching failed: {e}", report.strategy),
            };
            assert_eq!(job.state, state, "{}: {job:?}", report.strategy);
            let latency = outcome.latency.expect("the server recorded the end");
            assert!(
                latency < Duration::from_secs(2),
                "{}: {latency:?}",
                report.strategy
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_completes_and_long_polling_and_sse_ask_far_less() {
    let reports = run_all(0.0).await;
    assert_all_ended(&reports, State::Completed);
    for report in &reports {
        let job = report.outcomes[0].result.as_ref().unwrap();
        assert_eq!(job.percent, 100);
        assert!(job.result_url.is_some(), "{job:?}");
        let server = report.server;
        assert!(server.bytes > 0, "{}: {server:?}", report.strategy);
        assert!(
            (1..=JOBS as u64).contains(&server.peak_open),
            "{}: {server:?}",
            report.strategy
        );
    }
    let counts = |strategy: Strategy| {
        reports
            .iter()
            .find(|r| r.strategy == strategy)
            .map(|r| r.server)
            .expect("every strategy ran")
    };
    let [short, adaptive, long, sse] = [
        Strategy::Short,
        Strategy::Adaptive,
        Strategy::Long,
        Strategy::Sse,
    ]
    .map(counts);
    // Progress-aware pacing asks near the job's own estimate of its end.
    assert!(
        adaptive.requests < short.requests,
        "adaptive {adaptive:?} short {short:?}"
    );
    let jobs = JOBS as u64;
    // Short polling asks every 5 ms for about 400 ms: dozens per job.
    assert!(short.requests >= 5 * jobs, "{short:?}");
    // Long polling: at most one request per change (index 1 to FINAL), plus
    // one whose wait ends with nothing new.
    assert!(
        (jobs..=jobs * (FINAL + 1)).contains(&long.requests),
        "{long:?}"
    );
    assert!(
        long.requests * 2 < short.requests,
        "long {long:?} short {short:?}"
    );
    // SSE: one request per job, unless a connection dropped.
    assert!((jobs..=2 * jobs).contains(&sse.requests), "{sse:?}");
    assert!(sse.requests < long.requests, "sse {sse:?} long {long:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_ends_every_watcher_with_its_error() {
    let reports = run_all(1.0).await;
    assert_all_ended(&reports, State::Failed);
    for report in &reports {
        let job = report.outcomes[0].result.as_ref().unwrap();
        assert!(job.error.is_some() && job.result_url.is_none(), "{job:?}");
    }
}
