//! [`json`]: one request whose answer is a JSON status.

use ::reqwest::{Client, Request, RequestBuilder, Response};
use bytes::{Bytes, BytesMut};
use serde::de::DeserializeOwned;

use super::error::Target;
use super::template::accept;
use super::{Answer, Config, HttpError, HttpFuture};

/// Sends `request` and reads its answer as JSON: a `2xx` is decoded into
/// `T`, anything else is an [`HttpError`] that keeps the status, its
/// `Retry-After` and the start of the body. Sets `Accept: application/json`
/// unless the request has an `Accept` header. A success's body is read up
/// to [`Config::max_body`] (4 MiB by default).
///
/// This is the piece to use in a fetch closure of your own, when the
/// ready-made [`short`](super::short) does not fit (a request that changes
/// per attempt, a status you map further).
///
/// # Errors
/// An [`HttpError`] of kind [`Status`](super::ErrorKind::Status) for a status
/// other than `2xx`, [`Decode`](super::ErrorKind::Decode) for a body that is
/// not a `T`, [`TooLarge`](super::ErrorKind::TooLarge) for a body past the
/// limit, a transport kind when the network failed, and
/// [`Builder`](super::ErrorKind::Builder) when the builder holds an error.
///
/// # Cancel safety
/// Dropping the future drops the request.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use axum::{Json, Router, routing::get};
/// use pollkit::reqwest::{HttpError, json};
/// use pollkit::{Poller, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A server whose job is done.
/// let app = Router::new().route("/jobs/7", get(|| async { Json(serde_json::json!({"state": "done"})) }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// #[derive(serde::Deserialize)]
/// struct Job { state: String }
///
/// let client = reqwest::Client::new();
/// let url = format!("{base}/jobs/7");
/// let job = ShortPoll::new(|| json::<Job>(client.get(&url)))
///     .interval(Duration::from_millis(100))
///     .retry_if(HttpError::is_transient)
///     .until(|job| job.state == "done")
///     .await?;
/// assert_eq!(job.state, "done");
/// # Ok(()) }
/// ```
pub fn json<T>(request: RequestBuilder) -> HttpFuture<T>
where
    T: DeserializeOwned + Send + 'static,
{
    Config::new().json(request)
}

/// [`json`], with the answer's metadata: the status code and the headers
/// (its `Retry-After`, its `Location`) beside the decoded body, as an
/// [`Answer`]. A success with an empty body (a `202 Accepted` often has
/// none) is read as JSON `null`, so `T` may be `()`, an `Option` or a
/// `serde_json::Value`.
///
/// # Errors
/// As [`json`].
///
/// # Cancel safety
/// Dropping the future drops the request.
///
/// # Examples
/// ```
/// use axum::{Json, Router, http::StatusCode, routing::get};
/// use pollkit::reqwest::json_answer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = Router::new().route("/operations/7", get(|| async {
///     (StatusCode::ACCEPTED, [("retry-after", "5")], Json(serde_json::json!({"status": "running"})))
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// let op = json_answer::<serde_json::Value>(client.get(format!("{base}/operations/7"))).await?;
/// assert_eq!(op.status(), StatusCode::ACCEPTED);
/// assert_eq!(op.body()["status"], "running");
/// assert_eq!(op.retry_after(), Some(std::time::Duration::from_secs(5)));
/// # Ok(()) }
/// ```
pub fn json_answer<T>(request: RequestBuilder) -> HttpFuture<Answer<T>>
where
    T: DeserializeOwned + Send + 'static,
{
    Config::new().json_answer(request)
}

/// How a success with an empty body is read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Empty {
    /// As any other body: not JSON.
    Invalid,
    /// As JSON `null` (a `202 Accepted` often has no body).
    Null,
}

/// Sends a JSON request and decodes its `2xx` answer.
pub(crate) async fn fetch_json<T: DeserializeOwned>(
    client: Client,
    request: Result<Request, HttpError>,
    limit: usize,
) -> Result<T, HttpError> {
    let answer = fetch_answer(client, request, limit, Empty::Invalid).await?;
    Ok(answer.into_body())
}

/// Sends a JSON request and decodes its `2xx` answer, with its metadata.
pub(crate) async fn fetch_answer<T: DeserializeOwned>(
    client: Client,
    request: Result<Request, HttpError>,
    limit: usize,
    empty: Empty,
) -> Result<Answer<T>, HttpError> {
    let mut request = request?;
    accept(&mut request, "application/json");
    let target = Target::of(&request);
    let response = send(&client, request, &target).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(target.status(response).await);
    }
    let headers = response.headers().clone();
    let body = read(response, &target, limit).await?;
    let body = match empty {
        Empty::Null if body.trim_ascii().is_empty() => decode(b"null", &target)?,
        _ => decode(&body, &target)?,
    };
    Ok(Answer::new(status, headers, body))
}

/// Sends one request; a failure on the way is a transport error.
pub(crate) async fn send(
    client: &Client,
    request: Request,
    target: &Target,
) -> Result<Response, HttpError> {
    client
        .execute(request)
        .await
        .map_err(|e| target.transport(e))
}

/// Reads a whole body of at most `limit` bytes, chunk by chunk: a body
/// announced or found larger is a [`TooLarge`](super::ErrorKind::TooLarge)
/// error, with nothing kept past the limit.
pub(crate) async fn read(
    mut response: Response,
    target: &Target,
    limit: usize,
) -> Result<Bytes, HttpError> {
    let too_large = |response: &Response| target.too_large(response, limit);
    if response
        .content_length()
        .is_some_and(|n| u64::try_from(limit).is_ok_and(|limit| n > limit))
    {
        return Err(too_large(&response));
    }
    // Most bodies come in one chunk: kept as is, copied only if a second
    // one follows.
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Err(target.body(e)),
        };
        let held = first.as_ref().map_or(0, Bytes::len) + more.len();
        if chunk.len() > limit - held {
            return Err(too_large(&response));
        }
        match &first {
            None => first = Some(chunk),
            Some(head) => {
                if more.is_empty() {
                    more.extend_from_slice(head);
                }
                more.extend_from_slice(&chunk);
            }
        }
    }
    Ok(if more.is_empty() {
        first.unwrap_or_default()
    } else {
        more.freeze()
    })
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], target: &Target) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| target.decode(&e))
}
