//! `ShortPoll` end to end: reqwest against a real axum job server over loopback.
//!
//! These run on the real clock, so they assert counts, order and results,
//! never exact times (the paused-clock tests in `short_poll.rs` do that).

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use pollkit::{Error, Poller, ShortPoll};
use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, StatusCode};
use support::{Job, ms};

/// A user's error type: an HTTP status the server answered (with its
/// `Retry-After`, if any), or a transport failure.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("the server answered {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

impl ApiError {
    /// 429 and 5xx are worth retrying, and so are timeouts and refused
    /// connections; any other status (404...) is permanent.
    fn is_transient(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Transport(e) => e.is_timeout() || e.is_connect(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            ApiError::Transport(_) => None,
        }
    }
}

/// Sends `request` and reads a [`Job`], keeping the status and `Retry-After`
/// of an error answer.
async fn get_job(request: RequestBuilder) -> Result<Job, ApiError> {
    let response = request.send().await?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        return Err(ApiError::Status {
            status,
            retry_after,
        });
    }
    Ok(response.json().await?)
}

#[tokio::test]
async fn polls_a_job_until_it_completes() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");

    let job = ShortPoll::new(|| {
        let request = client.get(&url);
        async move {
            request
                .send()
                .await?
                .error_for_status()?
                .json::<Job>()
                .await
        }
    })
    .interval(ms(20))
    .timeout(Duration::from_secs(10))
    .until(|job| job.state == "completed")
    .await
    .unwrap();

    assert_eq!(job.percent, 100);
    assert_eq!(
        job.result_url.as_deref(),
        Some("https://files.test/job-1.csv")
    );
    // queued, running 25/50/75, completed: one GET each, none after.
    assert_eq!(server.gets(), [None; 5]);
}

#[tokio::test]
async fn retries_503_after_its_retry_after_then_completes() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");
    server.fail_next(2);

    let job = ShortPoll::new(|| get_job(client.get(&url)))
        .interval(ms(20))
        .timeout(Duration::from_secs(10))
        .retry_if(ApiError::is_transient)
        .retry_after(ApiError::retry_after)
        // Take `Retry-After: 0` at its word (the default floor is 1 s).
        .hint_bounds(Duration::ZERO, Duration::from_secs(1))
        .until(|job| job.state == "completed")
        .await
        .unwrap();

    assert_eq!(job.state, "completed");
    // Two 503s, then the five answers of a job that advances once per GET.
    assert_eq!(server.gets().len(), 7);
}

#[tokio::test]
async fn a_404_is_permanent_and_ends_polling_with_the_users_error() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let url = format!("{base}/jobs/no-such-job");

    let result = ShortPoll::new(|| get_job(client.get(&url)))
        .interval(ms(20))
        .timeout(Duration::from_secs(10))
        .retry_if(ApiError::is_transient)
        .until(|job| job.state == "completed")
        .await;

    let err = result.expect_err("no such job");
    assert_eq!(err.to_string(), "request failed");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("the server answered 404 Not Found"));
    match err {
        Error::Fetch(ApiError::Status { status, .. }) => assert_eq!(status, StatusCode::NOT_FOUND),
        other => panic!("expected a 404 in Error::Fetch, got {other:?}"),
    }
    assert_eq!(server.gets().len(), 1, "a permanent error is not retried");
}

#[tokio::test]
async fn changes_yields_each_distinct_status_once() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");
    // Every status is answered twice in a row.
    server.steps_every(2);

    let seen: Vec<Job> = ShortPoll::new(|| get_job(client.get(&url)))
        .interval(ms(20))
        .timeout(Duration::from_secs(10))
        .changes()
        .take(5)
        .map(Result::unwrap)
        .collect()
        .await;

    let progress: Vec<_> = seen.iter().map(|j| (&*j.state, j.percent)).collect();
    assert_eq!(
        progress,
        [
            ("queued", 0),
            ("running", 25),
            ("running", 50),
            ("running", 75),
            ("completed", 100),
        ]
    );
    assert_eq!(server.gets().len(), 9, "1,1,2,2,3,3,4,4,5");
}

#[tokio::test]
async fn dropping_the_poller_closes_the_request_in_flight() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let url = format!("{base}/hang");
    let mut poller = ShortPoll::new(|| get_job(client.get(&url))).interval(ms(20));

    tokio::select! {
        item = poller.next() => panic!("/hang answered: {item:?}"),
        () = support::eventually("the request reaches the server", || server.hang_started() == 1) => {}
    }
    assert_eq!(server.dropped(), 0);

    drop(poller);
    // The client closed the connection, so the server dropped the handler.
    support::eventually("the server sees the client go", || server.dropped() == 1).await;
    assert_eq!(server.hang_started(), 1);
}
