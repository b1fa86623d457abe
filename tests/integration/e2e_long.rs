//! `LongPoll` end to end: reqwest blocking queries against a real axum job
//! server over loopback, threading the server's `X-Index` as the cursor.
//!
//! These run on the real clock, so they assert counts, order and results, and
//! time only with generous bounds (the paused-clock tests in `long_poll.rs`
//! assert exact instants).

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use pollkit::long::{Reply, Request};
use pollkit::{Backoff, Error, LongPoll};
use reqwest::{Client, StatusCode};
use support::{COMPLETED, Job, ms};

/// A user's error type for the blocking query.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("the server answered {0}")]
    Status(StatusCode),
    #[error("a change without an X-Index header")]
    MissingIndex,
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// One blocking query, `GET {url}?wait=..&index=..`, mapped to a [`Reply`]:
/// `200` is a change (its `X-Index` is the next cursor), `304` is a wait that
/// ended with nothing new, `410` means the cursor is stale.
async fn watch_job(
    client: &Client,
    url: &str,
    req: Request<u64>,
) -> Result<Reply<Job, u64>, ApiError> {
    let mut url = format!("{url}?wait={}ms", req.wait().as_millis());
    if let Some(index) = req.cursor() {
        url += &format!("&index={index}");
    }
    let response = client.get(url).send().await?;
    match response.status() {
        StatusCode::NOT_MODIFIED => Ok(Reply::unchanged()),
        StatusCode::GONE => Ok(Reply::reset()),
        status if status.is_success() => {
            let index = response
                .headers()
                .get("x-index")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .ok_or(ApiError::MissingIndex)?;
            Ok(Reply::changed(response.json().await?, index))
        }
        status => Err(ApiError::Status(status)),
    }
}

fn progress(job: &Job) -> (&str, u8) {
    (&job.state, job.percent)
}

#[tokio::test]
async fn sees_every_change_the_server_makes() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");

    // Move the job on each time a request is being held, so that every change
    // reaches a waiting request and none is skipped.
    tokio::spawn({
        let (server, id) = (server.clone(), id.clone());
        async move {
            for holds in 1..COMPLETED as usize {
                support::eventually("a held request", || server.holds() >= holds).await;
                server.advance(&id);
            }
        }
    });

    let seen: Vec<Job> = LongPoll::new(|req| watch_job(&client, &url, req))
        .wait(Duration::from_secs(10))
        // The test's job changes faster than the default one request a second.
        .rate_limit(10, ms(10))
        .timeout(Duration::from_secs(10))
        .take(5)
        .map(Result::unwrap)
        .collect()
        .await;

    let seen: Vec<_> = seen.iter().map(progress).collect();
    assert_eq!(
        seen,
        [
            ("queued", 0),
            ("running", 25),
            ("running", 50),
            ("running", 75),
            ("completed", 100),
        ]
    );
    // The first request has no index; each next one carries the last X-Index.
    assert_eq!(server.gets(), [None, Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(server.holds(), 4);
}

#[tokio::test]
async fn a_change_arrives_within_one_round_trip_not_at_the_end_of_the_wait() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");
    let mut poller =
        LongPoll::new(|req| watch_job(&client, &url, req)).wait(Duration::from_secs(10));

    let first = poller.next().await.unwrap().unwrap();
    assert_eq!(progress(&first), ("queued", 0));

    tokio::spawn({
        let (server, id) = (server.clone(), id.clone());
        async move {
            tokio::time::sleep(ms(200)).await;
            server.advance(&id);
        }
    });
    let asked = tokio::time::Instant::now();
    let second = poller.next().await.unwrap().unwrap();
    let took = asked.elapsed();

    assert_eq!(progress(&second), ("running", 25));
    // Held for the 200 ms until the change, far from the 10 s wait.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(server.gets(), [None, Some(1)]);
    assert_eq!(server.holds(), 1);
}

#[tokio::test]
async fn a_wait_that_ends_with_nothing_new_yields_nothing_and_asks_again() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");

    // Resume from index 1: the job never moves, so every wait ends in a 304.
    let mut poller = LongPoll::new(|req| watch_job(&client, &url, req))
        .cursor(1)
        .wait(ms(100))
        .rate_limit(10, ms(10))
        .timeout(ms(350));

    let attempts = match poller.next().await {
        Some(Err(Error::Timeout { attempts, .. })) => attempts as usize,
        other => panic!("expected the deadline and no status, got {other:?}"),
    };
    assert!(poller.next().await.is_none());
    let gets = server.gets();
    assert!(gets.len() >= 2, "asked again after a 304: {gets:?}");
    assert_eq!(gets.len(), attempts);
    assert!(gets.iter().all(|index| *index == Some(1)), "{gets:?}");
}

#[tokio::test]
async fn a_silent_connection_is_caught_by_the_per_request_timeout() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let url = format!("{base}/hang");

    let mut poller = LongPoll::new(|req| watch_job(&client, &url, req))
        .wait(ms(100))
        .attempt_timeout(ms(300))
        .backoff(Backoff::new().base(ms(10)).max_retries(1));

    match poller.next().await {
        Some(Err(Error::AttemptTimeout {
            timeout, attempts, ..
        })) => {
            assert_eq!((timeout, attempts), (ms(300), 2));
        }
        other => panic!("expected AttemptTimeout, got {other:?}"),
    }
    assert_eq!(server.hang_started(), 2);
    // Each timed-out request was dropped, closing its connection.
    support::eventually("both requests closed", || server.dropped() == 2).await;
}

#[tokio::test]
async fn a_stale_index_resets_the_cursor() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    let url = format!("{base}/jobs/{id}");
    let mut poller = LongPoll::new(|req| watch_job(&client, &url, req))
        .wait(Duration::from_secs(10))
        .rate_limit(10, ms(10));

    let job = poller.next().await.unwrap().unwrap();
    assert_eq!(progress(&job), ("queued", 0));
    server.advance(&id);
    let job = poller.next().await.unwrap().unwrap();
    assert_eq!(progress(&job), ("running", 25));
    // The job starts over: index 2 is now in the future, and the server says 410.
    server.restart(&id);
    let job = poller.next().await.unwrap().unwrap();
    assert_eq!(progress(&job), ("queued", 0));

    // ..., index 2 (410 Gone), then no index at all.
    assert_eq!(server.gets(), [None, Some(1), Some(2), None]);
}
