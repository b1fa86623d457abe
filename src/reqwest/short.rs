//! [`short`]: a [`ShortPoll`] of JSON statuses over reqwest.

use ::reqwest::RequestBuilder;
use serde::de::DeserializeOwned;

use super::{Answer, Config, HttpFuture};
use crate::ShortPoll;

/// A [`ShortPoll`] that sends `request` at every poll and yields its answer
/// decoded from JSON, with HTTP's error handling wired in:
/// `retry_if(HttpError::is_transient)` (a 503 or a reset connection is
/// retried with backoff, a 404 or a body that is not a `T` ends polling) and
/// `retry_after(HttpError::retry_after)` (a 429's or a 503's `Retry-After`
/// replaces the backoff delay, clamped by `hint_bounds`). A success's
/// `Retry-After` sets the time of the next poll the same way (`poll_after`;
/// set your own to replace it). To read a success's status code and headers
/// too, use [`short_answer`].
///
/// Each attempt sends a clone of the request, so the request must be
/// clonable: a body of bytes, a string or JSON is; a streaming body is not,
/// and ends polling at the first attempt with an
/// [`ErrorKind::Builder`](super::ErrorKind::Builder) error, as does a builder
/// that holds an error (a bad URL). A success's body is read up to
/// [`Config::max_body`] (4 MiB by default; `Config::new().max_body(..).short(..)`
/// sets another limit).
///
/// It is the `ShortPoll` itself: every setter (`interval`, `timeout`,
/// `jitter`, a `retry_if` of your own...) and every [`Poller`](crate::Poller)
/// method still applies. The defaults are `ShortPoll`'s.
///
/// # Cancel safety
/// As [`ShortPoll`]: dropping it drops the request in flight.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use axum::{Json, Router, routing::get};
/// use pollkit::Poller;
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Job { state: String, percent: u8 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A job that is done at the third request.
/// let polls = Arc::new(AtomicU32::new(0));
/// let app = Router::new().route("/jobs/7", get(move || {
///     let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
///     let (state, percent) = if n < 3 { ("running", n * 40) } else { ("done", 100) };
///     async move { Json(serde_json::json!({"state": state, "percent": percent})) }
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let job: Job = pollkit::reqwest::short(client.get(format!("{base}/jobs/7")))
///     .interval(Duration::from_millis(50))
///     .timeout(Duration::from_secs(60))
///     .until(|job: &Job| job.state == "done")
///     .await?;
/// assert_eq!(job.percent, 100);
/// # Ok(()) }
/// ```
pub fn short<T>(
    request: RequestBuilder,
) -> ShortPoll<impl FnMut() -> HttpFuture<T> + Send + 'static, HttpFuture<T>>
where
    T: DeserializeOwned + Send + 'static,
{
    Config::new().short(request)
}

/// [`short`], yielding each success with its metadata: an [`Answer`] holds
/// the status code, the headers and the decoded body, so a long-running
/// operation's `202 Accepted` (running) can be told from its `200` (done),
/// and its `Retry-After` sets the time of the next poll
/// (`poll_after(Answer::retry_after)`, clamped by `hint_bounds`: 1 s to
/// 10 min by default). A success with an empty body is read as JSON `null`
/// (see [`json_answer`](super::json_answer)).
///
/// # Cancel safety
/// As [`ShortPoll`]: dropping it drops the request in flight.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use axum::{Json, Router, http::StatusCode, routing::get};
/// use pollkit::Poller;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // An operation that runs (202, "ask again in 1 s") until the third poll.
/// let polls = Arc::new(AtomicU32::new(0));
/// let app = Router::new().route("/operations/7", get(move || {
///     let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
///     async move {
///         if n < 3 {
///             (StatusCode::ACCEPTED, [("retry-after", "1")], Json(serde_json::json!({"status": "running"})))
///         } else {
///             (StatusCode::OK, [("retry-after", "1")], Json(serde_json::json!({"status": "succeeded"})))
///         }
///     }
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let started = std::time::Instant::now();
/// let done = pollkit::reqwest::short_answer::<serde_json::Value>(
///         client.get(format!("{base}/operations/7")))
///     .interval(Duration::from_millis(10)) // Retry-After says 1 s: it wins
///     .until(|op| op.status() == StatusCode::OK)
///     .await?;
/// assert_eq!(done.body()["status"], "succeeded");
/// assert!(started.elapsed() >= Duration::from_secs(2));
/// # Ok(()) }
/// ```
pub fn short_answer<T>(
    request: RequestBuilder,
) -> ShortPoll<impl FnMut() -> HttpFuture<Answer<T>> + Send + 'static, HttpFuture<Answer<T>>>
where
    T: DeserializeOwned + Send + 'static,
{
    Config::new().short_answer(request)
}
