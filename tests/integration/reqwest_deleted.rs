//! "Until deleted" over loopback HTTP: the reqwest helper and the
//! `deleted` acceptor against the job server (`tests/support`).
#![cfg(feature = "reqwest")]

use crate::support;

use std::time::Duration;

use pollkit::reqwest::{HttpError, deleted, is_gone, short};
use pollkit::{Error, Poller, Verdict};
use serde::de::IgnoredAny;
use support::Job;

#[tokio::test]
async fn a_deletion_wait_ends_at_the_404_after_two_200s() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    server.steps_every(0);
    server.delete_after(&id, 2);

    let outcome = short::<IgnoredAny>(client.get(format!("{base}/jobs/{id}")))
        .interval(Duration::from_millis(20))
        .timeout(Duration::from_secs(30))
        .until_result(deleted)
        .await;

    assert!(outcome.is_ok(), "{outcome:?}");
    // 200, 200, then the 404 that ends the wait: three requests, no retry.
    assert_eq!(server.gets().len(), 3);
}

#[tokio::test]
async fn a_deletion_wait_keeps_the_last_status_when_it_gives_up() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    server.steps_every(0);

    let failed = short::<Job>(client.get(format!("{base}/jobs/{id}")))
        .interval(Duration::from_millis(10))
        .max_attempts(3)
        .until_result(deleted)
        .with_last_status()
        .await
        .unwrap_err();

    assert!(matches!(failed.error, Error::Exhausted { attempts: 3, .. }));
    assert_eq!(failed.last.map(|job| job.state), Some("queued".to_string()));
}

#[tokio::test]
async fn a_503_during_a_deletion_wait_is_retried_not_judged() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    let id = support::create_job(&client, &base).await;
    server.steps_every(0);
    server.delete_after(&id, 1);
    server.fail_next(1);

    let outcome = short::<IgnoredAny>(client.get(format!("{base}/jobs/{id}")))
        .interval(Duration::from_millis(10))
        .hint_bounds(Duration::ZERO, Duration::from_secs(1))
        .until_result(deleted)
        .await;

    assert!(outcome.is_ok(), "{outcome:?}");
    // 503 (retried), 200, 404.
    assert_eq!(server.gets().len(), 3);
}

#[tokio::test]
async fn a_404_while_waiting_for_creation_is_waited_through() {
    let (base, server, _guard) = support::spawn().await;
    let client = support::client();
    // No such job yet: 404 until it is created.
    let url = format!("{base}/jobs/job-1");
    let watch = short::<Job>(client.get(&url))
        .interval(Duration::from_millis(10))
        .backoff(pollkit::Backoff::new().max_retries(1))
        .pending_if(is_gone)
        .until_result(|r: Result<&Job, &HttpError>| match r {
            Ok(job) => Verdict::Success(job.state.clone()),
            Err(_) => Verdict::Pending,
        });
    let created = async {
        support::eventually("five 404s", || server.gets().len() >= 5).await;
        support::create_job(&client, &base).await
    };
    let (state, id) = tokio::join!(watch, created);
    assert_eq!(id, "job-1");
    assert_eq!(state.unwrap(), "queued");
}
