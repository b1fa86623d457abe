//! [`json`]: one request whose answer is a JSON status.

use ::reqwest::{Client, Request, RequestBuilder, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::Target;
use super::template::{Template, accept};
use super::{HttpError, HttpFuture};

/// Sends `request` and reads its answer as JSON: a `2xx` is decoded into
/// `T`, anything else is an [`HttpError`] that keeps the status, its
/// `Retry-After` and the start of the body. Sets `Accept: application/json`
/// unless the request has an `Accept` header.
///
/// This is the piece to use in a fetch closure of your own, when the
/// ready-made [`short`](super::short) does not fit (a request that changes
/// per attempt, a status you map further).
///
/// # Errors
/// An [`HttpError`] of kind [`Status`](super::ErrorKind::Status) for a status
/// other than `2xx`, [`Decode`](super::ErrorKind::Decode) for a body that is
/// not a `T`, a transport kind when the network failed, and
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
    // Sent once: no clone, so a streaming body is fine here.
    let (client, request) = Template::new(request).into_parts();
    HttpFuture::new(fetch_json(client, request))
}

/// Sends a JSON request and decodes its `2xx` answer.
pub(crate) async fn fetch_json<T: DeserializeOwned>(
    client: Client,
    request: Result<Request, HttpError>,
) -> Result<T, HttpError> {
    let mut request = request?;
    accept(&mut request, "application/json");
    let target = Target::of(&request);
    let response = send(&client, request, &target).await?;
    if !response.status().is_success() {
        return Err(target.status(response).await);
    }
    let body = read(response, &target).await?;
    decode(&body, &target)
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

/// Reads a whole body.
pub(crate) async fn read(response: Response, target: &Target) -> Result<Bytes, HttpError> {
    response.bytes().await.map_err(|e| target.body(e))
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], target: &Target) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| target.decode(&e))
}
