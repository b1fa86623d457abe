//! "Until deleted" and "until recreated": acceptors over [`HttpError`] for
//! [`Poller::until_result`](crate::Poller::until_result).

use ::reqwest::StatusCode;

use super::HttpError;
use crate::Verdict;

/// Whether `error` says the resource is not there: `404 Not Found` or
/// `410 Gone`.
///
/// The test that [`deleted`] applies, and the one to give
/// [`pending_if`](crate::ShortPoll::pending_if) when a missing resource
/// means "not there yet" (waiting for it to be created or recreated): then a
/// 404 is no failure, and counts toward neither `max_retries` nor the
/// backoff's time bound.
///
/// # Examples
/// See [`recreated`].
pub fn is_gone(error: &HttpError) -> bool {
    matches!(
        error.status(),
        Some(StatusCode::NOT_FOUND | StatusCode::GONE)
    )
}

/// The acceptor of a deletion wait: a `404` or a `410` is the success (`()`),
/// any status means "still there", and any other error is left as the
/// wait's error.
///
/// The helpers ([`short`](super::short), [`long_etag`](super::long_etag)...)
/// already treat a `404` as permanent, so it reaches the acceptor at once,
/// not after a backoff. Combine it with a rule of your own with
/// [`Verdict::or_else`].
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use axum::{Router, http::StatusCode, routing::get};
/// use pollkit::Poller;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // An export that is there for two requests, then deleted.
/// let gets = Arc::new(AtomicU32::new(0));
/// let app = Router::new().route("/exports/7", get(move || {
///     let n = gets.fetch_add(1, Ordering::SeqCst);
///     async move { if n < 2 { (StatusCode::OK, "{}") } else { (StatusCode::NOT_FOUND, "") } }
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
///
/// let client = reqwest::Client::new();
/// // `IgnoredAny`: any JSON body will do, it is only "still there".
/// pollkit::reqwest::short::<serde::de::IgnoredAny>(client.get(format!("{base}/exports/7")))
///     .interval(Duration::from_millis(20))
///     .timeout(Duration::from_secs(60))
///     .until_result(pollkit::reqwest::deleted)
///     .await?;
/// # Ok(()) }
/// ```
pub fn deleted<S>(answer: Result<&S, &HttpError>) -> Verdict<(), HttpError> {
    match answer {
        Err(e) if is_gone(e) => Verdict::Success(()),
        _ => Verdict::Pending,
    }
}

/// The acceptor of a "recreated" wait: the first status whose key (`key`
/// of it: a uid, a generation, an `ETag` kept in the status) differs from
/// `old` is the success, with its key. The same key means "not yet".
///
/// Between the deletion and the new object the server answers `404`: give
/// the poller `.pending_if(pollkit::reqwest::is_gone)` so that the gap is
/// waited through rather than ending the wait. For kube-runtime's
/// `is_deleted(uid)` rule (gone *or* replaced), combine it with
/// [`deleted`], as the example does.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::get};
/// use pollkit::{Poller, Verdict};
/// use pollkit::reqwest::{deleted, is_gone, recreated};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Pod { uid: String }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // uid "a1", then deleted, recreated as "b2", and deleted for good.
/// let gets = Arc::new(AtomicU32::new(0));
/// let app = Router::new().route("/pods/web", get(move || {
///     let n = gets.fetch_add(1, Ordering::SeqCst);
///     async move {
///         match n {
///             0 => Json(serde_json::json!({"uid": "a1"})).into_response(),
///             1 | 2 => StatusCode::NOT_FOUND.into_response(),
///             3 | 4 => Json(serde_json::json!({"uid": "b2"})).into_response(),
///             _ => StatusCode::NOT_FOUND.into_response(),
///         }
///     }
/// }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let base = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(async move { axum::serve(listener, app).await });
/// let client = reqwest::Client::new();
/// let pod = || pollkit::reqwest::short::<Pod>(client.get(format!("{base}/pods/web")))
///     .interval(Duration::from_millis(20));
///
/// // Recreated: the 404s in between are "not yet".
/// let uid = pod()
///     .pending_if(is_gone)
///     .until_result(recreated("a1".to_string(), |p: &Pod| p.uid.clone()))
///     .await?;
/// assert_eq!(uid, "b2");
///
/// // kube's `is_deleted(uid)`: not found, or another uid (`None` for gone).
/// let mut replaced = recreated("b2".to_string(), |p: &Pod| p.uid.clone());
/// let outcome = pod()
///     .until_result(|r| deleted(r).map(|()| None).or_else(|| replaced(r).map(Some)))
///     .await?;
/// assert_eq!(outcome, None, "b2 once more (not yet), then a 404: deleted");
/// # Ok(()) }
/// ```
pub fn recreated<S, K, F>(
    old: K,
    mut key: F,
) -> impl FnMut(Result<&S, &HttpError>) -> Verdict<K, HttpError>
where
    K: PartialEq,
    F: FnMut(&S) -> K,
{
    move |answer| match answer {
        Ok(status) => {
            let key = key(status);
            if key == old {
                Verdict::Pending
            } else {
                Verdict::Success(key)
            }
        }
        Err(_) => Verdict::Pending,
    }
}
