//! A real job server over loopback for the end-to-end tests, and the client
//! side's wire types.
//!
//! - `POST /jobs` creates a job: `201 {"jobId": "job-1"}`.
//! - `GET /jobs/{id}` answers the job's status at once and, by default, moves
//!   the job one step on (see [`Handle::steps_every`]).
//! - `GET /jobs/{id}?index=N&wait=100ms` is a Consul-style blocking query: it is
//!   held until the job's index passes `N` (answered `200` with the status) or
//!   the wait ends (`304 Not Modified`); an index the job never reached is
//!   stale (`410 Gone`). Every `200` carries the index in `X-Index`.
//! - `GET /hang` never answers.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

/// The job's index once it has completed. Indexes start at 1 (`queued`).
pub const COMPLETED: u64 = 5;

/// A job's status as the server sends it and the client reads it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub state: String,
    pub percent: u8,
    pub result_url: Option<String>,
}

impl Job {
    /// The status at `index`: queued, running 25/50/75 %, then completed.
    pub fn at(id: &str, index: u64) -> Job {
        let (state, percent) = match index {
            0 | 1 => ("queued", 0),
            i if i < COMPLETED => ("running", (i - 1) * 25),
            _ => ("completed", 100),
        };
        Job {
            state: state.into(),
            percent: percent as u8,
            result_url: (index >= COMPLETED).then(|| format!("https://files.test/{id}.csv")),
        }
    }
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "jobId")]
    job_id: String,
}

/// The client the tests use: reqwest with no TLS stack (every test is plain HTTP over loopback).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("reqwest client")
}

/// `POST /jobs`, returning the new job's id.
pub async fn create_job(client: &reqwest::Client, base: &str) -> String {
    let created: Created = client
        .post(format!("{base}/jobs"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("POST /jobs")
        .json()
        .await
        .expect("POST /jobs body");
    created.job_id
}

/// Polls `cond` every 10 ms until it holds; panics after 2 s.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Stops the server when dropped (the end of the test).
pub struct Guard(oneshot::Sender<()>);

/// The test's view of the server: drive jobs, inject failures, read counters.
#[derive(Clone, Default)]
pub struct Handle(Arc<Shared>);

#[derive(Default)]
struct Shared {
    jobs: Mutex<HashMap<String, Entry>>,
    /// The `index` query parameter of every `GET /jobs/{id}`, in order.
    gets: Mutex<Vec<Option<u64>>>,
    /// Plain GETs per step (0 = only the test moves the job); 1 by default.
    steps_every: AtomicUsize,
    /// How many of the next GETs answer `503` with `Retry-After: 0`.
    fail_next: AtomicUsize,
    /// Blocking queries that were held (waited for a change), ever.
    holds: AtomicUsize,
    hang_started: AtomicUsize,
    /// Handler futures dropped before they answered (the client went away).
    dropped: AtomicUsize,
}

/// One job: its index, watched by the held requests, and its plain GETs.
struct Entry {
    index: watch::Sender<u64>,
    gets: usize,
    /// Deleted (later GETs answer `404`) after this many plain GETs.
    delete_after: Option<usize>,
}

impl Handle {
    /// Moves the job one step on.
    pub fn advance(&self, id: &str) {
        self.with_job(id, |i| (*i + 1).min(COMPLETED));
    }

    /// Completes the job at once.
    pub fn complete(&self, id: &str) {
        self.with_job(id, |_| COMPLETED);
    }

    /// Starts the job over at index 1, so a client's index becomes stale.
    pub fn restart(&self, id: &str) {
        self.with_job(id, |_| 1);
    }

    /// Deletes the job after its next `n` plain GETs: they answer `200`,
    /// every later one `404 Not Found`.
    pub fn delete_after(&self, id: &str, n: usize) {
        let mut jobs = self.0.jobs.lock().unwrap();
        let job = jobs.get_mut(id).expect("no such job");
        job.delete_after = Some(job.gets + n);
    }

    /// A plain GET moves the job one step on every `n` GETs (0: never).
    pub fn steps_every(&self, n: usize) {
        self.0.steps_every.store(n, Ordering::SeqCst);
    }

    /// The next `n` GETs of a job answer `503 Service Unavailable`.
    pub fn fail_next(&self, n: usize) {
        self.0.fail_next.store(n, Ordering::SeqCst);
    }

    /// The `index` parameter of every `GET /jobs/{id}` so far.
    pub fn gets(&self) -> Vec<Option<u64>> {
        self.0.gets.lock().unwrap().clone()
    }

    /// Blocking queries that were held (waited for a change) so far.
    pub fn holds(&self) -> usize {
        self.0.holds.load(Ordering::SeqCst)
    }

    pub fn hang_started(&self) -> usize {
        self.0.hang_started.load(Ordering::SeqCst)
    }

    pub fn dropped(&self) -> usize {
        self.0.dropped.load(Ordering::SeqCst)
    }

    fn with_job(&self, id: &str, f: impl FnOnce(&u64) -> u64) {
        let jobs = self.0.jobs.lock().unwrap();
        let job = jobs.get(id).expect("no such job");
        job.index.send_modify(|i| *i = f(i));
    }
}

/// Serves the job server on `127.0.0.1:0`: (base URL, handle, guard).
pub async fn spawn() -> (String, Handle, Guard) {
    let handle = Handle::default();
    handle.steps_every(1);
    let app = Router::new()
        .route("/jobs", post(create))
        .route("/jobs/{id}", get(status))
        .route("/hang", get(hang))
        .with_state(handle.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    // Spawned on the test's runtime: it ends with the test even if a held
    // request keeps graceful shutdown waiting.
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    (base, handle, Guard(stop))
}

async fn create(State(h): State<Handle>) -> impl IntoResponse {
    let mut jobs = h.0.jobs.lock().unwrap();
    let id = format!("job-{}", jobs.len() + 1);
    let (index, _) = watch::channel(1);
    jobs.insert(
        id.clone(),
        Entry {
            index,
            gets: 0,
            delete_after: None,
        },
    );
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "jobId": id })),
    )
}

#[derive(Deserialize)]
struct Watch {
    index: Option<u64>,
    wait: Option<String>,
}

async fn status(
    State(h): State<Handle>,
    Path(id): Path<String>,
    Query(q): Query<Watch>,
) -> Response {
    h.0.gets.lock().unwrap().push(q.index);
    let mut index = {
        let mut jobs = h.0.jobs.lock().unwrap();
        let Some(job) = jobs.get_mut(&id) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let fail =
            h.0.fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if fail.is_ok() {
            return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response();
        }
        if q.wait.is_none() {
            // A plain GET: answer now, and let the job make progress.
            let now = *job.index.borrow();
            job.gets += 1;
            let every = h.0.steps_every.load(Ordering::SeqCst);
            if every > 0 && job.gets % every == 0 {
                job.index.send_modify(|i| *i = (*i + 1).min(COMPLETED));
            }
            if job.delete_after.is_some_and(|n| job.gets >= n) {
                jobs.remove(&id);
            }
            return answer(&id, now);
        }
        job.index.subscribe()
    };
    let (Some(seen), Some(wait)) = (q.index, q.wait.as_deref().and_then(parse_wait)) else {
        // A blocking query without an index answers at once.
        let now = *index.borrow();
        return answer(&id, now);
    };
    h.0.holds.fetch_add(1, Ordering::SeqCst);
    let changed = tokio::time::timeout(wait, index.wait_for(|i| *i != seen))
        .await
        .is_ok();
    let now = *index.borrow();
    if now < seen {
        // The job started over: the client's index means nothing any more.
        StatusCode::GONE.into_response()
    } else if changed {
        answer(&id, now)
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    }
}

/// `200` with the status as JSON and the index in `X-Index`.
fn answer(id: &str, index: u64) -> Response {
    ([("x-index", index.to_string())], Json(Job::at(id, index))).into_response()
}

/// Consul-style waits: `250ms` or `10s`.
fn parse_wait(wait: &str) -> Option<Duration> {
    match wait.strip_suffix("ms") {
        Some(ms) => ms.parse().ok().map(Duration::from_millis),
        None => wait
            .strip_suffix('s')?
            .parse()
            .ok()
            .map(Duration::from_secs),
    }
}

async fn hang(State(h): State<Handle>) {
    h.0.hang_started.fetch_add(1, Ordering::SeqCst);
    let _dropped = OnDrop(&h.0.dropped);
    std::future::pending::<()>().await;
}

/// Counts a handler future dropped before it finished.
struct OnDrop<'a>(&'a AtomicUsize);

impl Drop for OnDrop<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
