//! The embedded job server. `POST /jobs` starts a job that moves, on its own
//! clock, through queued → running 25, 50, 75 % → completed (or failed); each
//! change raises the job's index (1 to [`FINAL`]). Three ways to watch it:
//!
//! - `GET /jobs/{id}`: the status at once (short polling);
//! - `GET /jobs/{id}?wait=30s&index=N`: held until the job's index passes `N`,
//!   `304 Not Modified` when the wait ends first; the index is in `X-Index`
//!   (long polling, as Consul's blocking queries);
//! - `GET /jobs/{id}/events`: `text/event-stream`, one event per change with
//!   the index as its id, resumed after `Last-Event-ID` (Server-Sent Events).
//!
//! A middleware counts, per strategy, the requests, the body bytes sent and
//! the requests open at once (a held long poll or an event stream is open
//! until its response ends).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio::sync::{oneshot, watch};

use super::client::{Job, State as JobState};
use super::{Strategy, parse_duration};

/// The index of a job's final status; it starts at 1 (queued).
pub const FINAL: u64 = 5;
/// The longest a long-poll request is held, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The jobs the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a job takes, spread by ±20 %.
    pub job_duration: Duration,
    /// The share of jobs that fail instead of completing, from 0 to 1.
    pub fail_rate: f64,
    /// Seeds each job's duration and whether it fails.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            job_duration: Duration::from_secs(3),
            fail_rate: 0.0,
            seed: 42,
        }
    }
}

/// What one strategy cost the server so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub requests: u64,
    /// Response body bytes (headers not included).
    pub bytes: u64,
    /// The most requests open at once.
    pub peak_open: u64,
}

/// The running server; it stops when dropped.
pub struct Server {
    base: String,
    app: Arc<App>,
    _stop: oneshot::Sender<()>,
}

struct App {
    config: Config,
    jobs: Mutex<HashMap<String, watch::Sender<Snapshot>>>,
    /// Jobs created before the current round (see [`Server::new_round`]).
    round_start: AtomicU64,
    counters: [Counters; 4],
}

/// A job as the server keeps it.
#[derive(Clone)]
struct Snapshot {
    index: u64,
    job: Job,
    finished_at: Option<Instant>,
    /// When the job is expected to end (reported as `etaMs` by `GET /jobs/{id}`).
    ends_at: tokio::time::Instant,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
}

impl Server {
    /// Serves on `127.0.0.1` at a free port.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let app = Arc::new(App {
            config,
            jobs: Mutex::default(),
            round_start: AtomicU64::new(0),
            counters: Default::default(),
        });
        let router = Router::new()
            .route("/jobs", post(create))
            .route("/jobs/{id}", get(status))
            .route("/jobs/{id}/events", get(events))
            .layer(middleware::from_fn_with_state(app.clone(), count))
            .with_state(app.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        });
        Ok(Server {
            base,
            app,
            _stop: stop,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn counts(&self, strategy: Strategy) -> Counts {
        let c = &self.app.counters[strategy as usize];
        Counts {
            requests: c.requests.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            peak_open: c.peak_open.load(Relaxed),
        }
    }

    /// Starts a round: its k-th job draws the same duration and fate as the
    /// k-th job of every other round, so that each strategy watches the same jobs.
    pub fn new_round(&self) {
        let created = self.app.jobs().len() as u64;
        self.app.round_start.store(created, Relaxed);
    }

    /// When the job reached its final status, if it has.
    pub fn finished_at(&self, id: &str) -> Option<Instant> {
        self.app.jobs().get(id)?.borrow().finished_at
    }
}

impl App {
    fn jobs(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<Snapshot>>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn subscribe(&self, id: &str) -> Option<watch::Receiver<Snapshot>> {
        Some(self.jobs().get(id)?.subscribe())
    }
}

async fn create(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut jobs = app.jobs();
    let n = jobs.len() as u64 + 1;
    let id = format!("job-{n}");
    let (spread, fate) = draws(app.config.seed, n - app.round_start.load(Relaxed));
    let duration = app.config.job_duration.mul_f64(0.8 + 0.4 * spread);
    let first = Snapshot {
        index: 1,
        job: status_at(&id, 1, false),
        finished_at: None,
        ends_at: tokio::time::Instant::now() + duration,
    };
    // The map keeps a sender, so a finished job's channel never closes.
    let (job, _) = watch::channel(first);
    jobs.insert(id.clone(), job.clone());
    let fails = fate < app.config.fail_rate;
    tokio::spawn(run_job(job, id.clone(), duration, fails));
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "jobId": id })),
    )
}

/// Moves the job one index on every `duration / 4`.
async fn run_job(job: watch::Sender<Snapshot>, id: String, duration: Duration, fails: bool) {
    let start = tokio::time::Instant::now();
    for index in 2..=FINAL {
        let step = (index - 1) as u32;
        tokio::time::sleep_until(start + duration * step / (FINAL - 1) as u32).await;
        job.send_modify(|s| {
            s.index = index;
            s.job = status_at(&id, index, fails);
            s.finished_at = (index == FINAL).then(Instant::now);
        });
    }
}

fn status_at(id: &str, index: u64, fails: bool) -> Job {
    let (state, percent) = match index {
        1 => (JobState::Queued, 0),
        FINAL if fails => (JobState::Failed, 75),
        FINAL => (JobState::Completed, 100),
        _ => (JobState::Running, (index as u8 - 1) * 25),
    };
    Job {
        state,
        percent,
        result_url: (state == JobState::Completed)
            .then(|| format!("https://files.example.com/{id}.csv")),
        error: (state == JobState::Failed).then(|| "the worker ran out of disk space".into()),
        eta_ms: None,
    }
}

#[derive(Deserialize)]
struct Blocking {
    index: Option<u64>,
    wait: Option<String>,
}

async fn status(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<Blocking>,
) -> Response {
    let Some(mut job) = app.subscribe(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let (Some(seen), Some(wait)) = (q.index, q.wait) {
        let Ok(wait) = parse_duration(&wait) else {
            return (StatusCode::BAD_REQUEST, "wait: try 30s or 500ms").into_response();
        };
        let passed = job.wait_for(|s| s.index > seen);
        if tokio::time::timeout(wait.min(MAX_WAIT), passed)
            .await
            .is_err()
        {
            return StatusCode::NOT_MODIFIED.into_response();
        }
    }
    let mut now = job.borrow().clone();
    if !now.job.is_finished() {
        // The server's estimate of the time left, for progress-aware clients.
        let left = now
            .ends_at
            .saturating_duration_since(tokio::time::Instant::now());
        now.job.eta_ms = Some(left.as_millis() as u64);
    }
    ([("x-index", now.index.to_string())], Json(now.job)).into_response()
}

async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(job) = app.subscribe(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Resume after the last event the client saw: event ids are indexes.
    let after: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let events = futures::stream::unfold((job, after), |(mut job, after)| async move {
        if after >= FINAL {
            return None; // the final status went out: end the response
        }
        let now = job.wait_for(|s| s.index > after).await.ok()?.clone();
        let event = Event::default()
            .id(now.index.to_string())
            .event("status")
            .json_data(&now.job);
        Some((event, (job, now.index)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Counts a watch request, its body bytes, and how long it stays open.
async fn count(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(strategy) = strategy_of(&request) else {
        return next.run(request).await;
    };
    let open = Open::new(app, strategy);
    let response = next.run(request).await;
    if let Some(len) = response.body().size_hint().exact() {
        // JSON (or nothing): the whole body is already in memory.
        open.counters().bytes.fetch_add(len, Relaxed);
        return response;
    }
    // An event stream: count each chunk; it is open for as long as its body.
    response.map(|body| {
        let counted = body.into_data_stream().inspect_ok(move |chunk| {
            open.counters().bytes.fetch_add(chunk.len() as u64, Relaxed);
        });
        Body::from_stream(counted)
    })
}

/// Which strategy a request belongs to, from its shape.
fn strategy_of(request: &Request) -> Option<Strategy> {
    let uri = request.uri();
    if request.method() != Method::GET {
        None
    } else if uri.query().is_some_and(|q| q.contains("pace=adaptive")) {
        Some(Strategy::Adaptive)
    } else if uri.path().ends_with("/events") {
        Some(Strategy::Sse)
    } else if uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("wait=")))
    {
        Some(Strategy::Long)
    } else {
        Some(Strategy::Short)
    }
}

/// One open request: counted when made, and open until dropped.
struct Open {
    app: Arc<App>,
    strategy: Strategy,
}

impl Open {
    fn new(app: Arc<App>, strategy: Strategy) -> Open {
        let c = &app.counters[strategy as usize];
        c.requests.fetch_add(1, Relaxed);
        let open = c.open.fetch_add(1, Relaxed) + 1;
        c.peak_open.fetch_max(open, Relaxed);
        Open { app, strategy }
    }

    fn counters(&self) -> &Counters {
        &self.app.counters[self.strategy as usize]
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counters().open.fetch_sub(1, Relaxed);
    }
}

/// Two numbers in `[0, 1)` for job `n`, the same for the same seed (SplitMix64).
fn draws(seed: u64, n: u64) -> (f64, f64) {
    let mut state = seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (next(), next())
}
