//! The client side, ready to copy into a service: submit a job, then watch it
//! by short polling, long polling or Server-Sent Events, with pollkit over one
//! shared reqwest `Client`.
//!
//! Each watcher calls `on_status` with every status it receives and returns the
//! final one (completed or failed). `seed` only makes the jitter reproducible
//! for the demo: leave `.seed(..)` out in a service.

use std::fmt;
use std::time::Duration;

use futures::TryStreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Error, Jitter, LongPoll, Poller, ShortPoll, SseStream};
use reqwest::header::ACCEPT;
use reqwest::{Client, RequestBuilder, StatusCode};
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

/// What can go wrong while watching a job.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("a job status without an X-Index header")]
    MissingIndex,
    #[error("a job status that is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A `204 No Content` is how a server says "stop reconnecting".
    #[error("no event stream: the server answered {0}")]
    NotAStream(StatusCode),
}

impl ApiError {
    /// Worth retrying: a failed connection or request, a 429, a 5xx. Any
    /// other status (404: no such job) ends watching at once.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Http(e) => e
                .status()
                .is_none_or(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS),
            ApiError::MissingIndex | ApiError::Json(_) | ApiError::NotAStream(_) => false,
        }
    }
}

/// `POST /jobs`: starts a job and returns its id.
pub async fn submit(client: &Client, base: &str) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        job_id: String,
    }
    let response = client.post(format!("{base}/jobs")).send().await?;
    let created: Created = response.error_for_status()?.json().await?;
    Ok(created.job_id)
}

/// Short polling: `GET /jobs/{id}` every `interval` until the job finishes.
pub async fn watch_short(
    client: &Client,
    base: &str,
    id: &str,
    interval: Duration,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<ApiError>> {
    let url = format!("{base}/jobs/{id}");
    ShortPoll::new(|| {
        let request = client.get(&url);
        async move { Ok::<_, ApiError>(request.send().await?.error_for_status()?.json().await?) }
    })
    .interval(interval)
    // ±10 %, so that a thousand watchers started together do not ask in lock-step.
    .jitter(Jitter::Proportional(0.1))
    .seed(seed)
    .timeout(DEADLINE)
    .retry_if(ApiError::is_transient)
    .until(|job| {
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
) -> Result<Job, Error<ApiError>> {
    // `pace=adaptive` only lets the demo's server count these requests apart.
    let url = format!("{base}/jobs/{id}?pace=adaptive");
    ShortPoll::new(|| {
        let request = client.get(&url);
        async move { Ok::<_, ApiError>(request.send().await?.error_for_status()?.json().await?) }
    })
    .interval(interval)
    .adaptive(interval / 4, interval * 4)
    .eta(|job: &Job| job.eta_ms.map(Duration::from_millis))
    .jitter(Jitter::Proportional(0.1))
    .seed(seed)
    .timeout(DEADLINE)
    .retry_if(ApiError::is_transient)
    .until(|job| {
        on_status(job);
        job.is_finished()
    })
    .await
}

/// Long polling: `GET /jobs/{id}?wait=30000ms&index=N`, held by the server until
/// the job's index passes `N`; the index of each answer is the next `N`.
pub async fn watch_long(
    client: &Client,
    base: &str,
    id: &str,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<ApiError>> {
    let url = format!("{base}/jobs/{id}");
    LongPoll::new(|req: Request<u64>| {
        // No index on the first request: the server answers at once.
        let mut query = format!("{url}?wait={}ms", req.wait().as_millis());
        if let Some(index) = req.cursor() {
            query += &format!("&index={index}");
        }
        blocking_query(client.get(query))
    })
    .wait(Duration::from_secs(30))
    // This server's jobs change every 0.6-0.9 s: let each change through at once
    // (the default, a burst of 2 then one a second, can hold the last one back).
    .rate_limit(4, Duration::from_millis(250))
    .seed(seed)
    .timeout(DEADLINE)
    .retry_if(ApiError::is_transient)
    .until(|job| {
        on_status(job);
        job.is_finished()
    })
    .await
}

/// One long-poll request: `304` is a wait that ended with nothing new, `200`
/// a change whose `X-Index` is the cursor for the next request.
async fn blocking_query(request: RequestBuilder) -> Result<Reply<Job, u64>, ApiError> {
    let response = request.send().await?.error_for_status()?;
    if response.status() == StatusCode::NOT_MODIFIED {
        return Ok(Reply::unchanged());
    }
    let index = response
        .headers()
        .get("x-index")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .ok_or(ApiError::MissingIndex)?;
    Ok(Reply::changed(response.json().await?, index))
}

/// Server-Sent Events: one `GET /jobs/{id}/events` response carries every
/// change; a dropped connection resumes after the last event id.
pub async fn watch_sse(
    client: &Client,
    base: &str,
    id: &str,
    seed: u64,
    mut on_status: impl FnMut(&Job),
) -> Result<Job, Error<ApiError>> {
    let url = format!("{base}/jobs/{id}/events");
    SseStream::new(|last_event_id: Option<String>| {
        let mut request = client.get(&url).header(ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        async move {
            let response = request.send().await?.error_for_status()?;
            if response.status() != StatusCode::OK {
                return Err(ApiError::NotAStream(response.status()));
            }
            Ok(response.bytes_stream().map_err(ApiError::from))
        }
    })
    // The server sends a comment every 15 s: three missed is a dead connection.
    .idle_timeout(Duration::from_secs(45))
    .seed(seed)
    .timeout(DEADLINE)
    .retry_if(ApiError::is_transient)
    // An event that is not a job status ends watching with `Error::Fetch`.
    .try_map_status(|event| Ok(serde_json::from_str::<Job>(event.data())?))
    .until(|job| {
        on_status(job);
        job.is_finished()
    })
    .await
}
