//! The client side, ready to copy into a service: submit a job, then watch it
//! by short polling, long polling or Server-Sent Events, with pollkit's
//! `reqwest` helpers over one shared reqwest `Client`.
//!
//! The helpers bring HTTP's rules (which statuses to retry, `Retry-After`, the
//! event-stream headers and statuses); what is left here is what is specific
//! to this job server: its URLs, its `Job` type, its `X-Index` header.
//!
//! Each watcher calls `on_status` with every status it receives and returns the
//! final one (completed or failed). `seed` only makes the jitter reproducible
//! for the demo: leave `.seed(..)` out in a service.

use std::fmt;
use std::time::Duration;

use pollkit::reqwest::{HttpError, IndexQuery, event_json, index_header, json};
use pollkit::{Error, Jitter, Poller};
use reqwest::Client;
use serde::{Deserialize, Serialize};

/// Give up on a job that has not finished after this long.
const DEADLINE: Duration = Duration::from_secs(600);

/// A job's status, as `GET /jobs/{id}` and the events carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub state: State,
    pub percent: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's estimate of the time left, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Completed,
    Failed,
}

impl Job {
    /// Completed or failed: nothing will change any more.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Completed | State::Failed)
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.state, &self.result_url, &self.error) {
            (State::Completed, Some(url), _) => write!(f, "completed: {url}"),
            (State::Failed, _, Some(error)) => write!(f, "failed at {} %: {error}", self.percent),
            (state, _, _) => write!(f, "{state} {} %", self.percent),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Completed => "completed",
            State::Failed => "failed",
        })
    }
}

/// `POST /jobs`: starts a job and returns its id.
pub async fn submit(client: &Client, base: &str) -> Result<String, HttpError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        job_id: String,
    }
    let created: Created = json(client.post(format!("{base}/jobs"))).await?;
    Ok(created.job_id)
}

/// Short polling: `GET /jobs/{id}` every `interval` until the job finishes.
/// A 429 or a 5xx is retried (after its `Retry-After`), a 404 ends watching.
pub async fn watch_short(
    client: &Client,
    base: &str,
    id: &str,
    interval: Duration,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<HttpError>> {
    pollkit::reqwest::short(client.get(format!("{base}/jobs/{id}")))
        .interval(interval)
        // ±10 %, so that a thousand watchers started together do not ask in lock-step.
        .jitter(Jitter::Proportional(0.1))
        .seed(seed)
        .timeout(DEADLINE)
        .until(|job: &Job| {
            on_status(job);
            job.is_finished()
        })
        .await
}

/// Progress-aware short polling: the same `GET /jobs/{id}`, but each next
/// request is planned at the job's own estimate of the time left (`etaMs`),
/// within `interval / 4 ..= interval * 4`, and the interval adapts to how
/// often the status changes when there is no estimate.
pub async fn watch_adaptive(
    client: &Client,
    base: &str,
    id: &str,
    interval: Duration,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<HttpError>> {
    // `pace=adaptive` only lets the demo's server count these requests apart.
    pollkit::reqwest::short(client.get(format!("{base}/jobs/{id}?pace=adaptive")))
        .interval(interval)
        .adaptive(interval / 4, interval * 4)
        .eta(|job: &Job| job.eta_ms.map(Duration::from_millis))
        .jitter(Jitter::Proportional(0.1))
        .seed(seed)
        .timeout(DEADLINE)
        .until(|job: &Job| {
            on_status(job);
            job.is_finished()
        })
        .await
}

/// Long polling: `GET /jobs/{id}?wait=30000ms&index=N`, held by the server until
/// the job's index passes `N` (`304` when the wait ends first); the `X-Index`
/// of each answer is the next `N`.
pub async fn watch_long(
    client: &Client,
    base: &str,
    id: &str,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<HttpError>> {
    pollkit::reqwest::long_index(
        client.get(format!("{base}/jobs/{id}")),
        IndexQuery::new("index").wait_millis("wait"),
        index_header("x-index"),
    )
    .wait(Duration::from_secs(30))
    // This server's jobs change every 0.6-0.9 s: let each change through at once
    // (the default, a burst of 2 then one a second, can hold the last one back).
    .rate_limit(4, Duration::from_millis(250))
    .seed(seed)
    .timeout(DEADLINE)
    .until(|job: &Job| {
        on_status(job);
        job.is_finished()
    })
    .await
}

/// Server-Sent Events: one `GET /jobs/{id}/events` response carries every
/// change; a dropped connection resumes after the last event id.
pub async fn watch_sse(
    client: &Client,
    base: &str,
    id: &str,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<HttpError>> {
    pollkit::reqwest::sse(client.get(format!("{base}/jobs/{id}/events")))
        // The server sends a comment every 15 s: three missed is a dead connection.
        .idle_timeout(Duration::from_secs(45))
        .seed(seed)
        .timeout(DEADLINE)
        // An event that is not a job status ends watching with `Error::Fetch`.
        .try_map_status(event_json::<Job>)
        .until(|job: &Job| {
            on_status(job);
            job.is_finished()
        })
        .await
}
