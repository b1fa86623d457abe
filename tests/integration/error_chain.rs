//! `pollkit::Error`'s chain is the conventional one: the user's error is the
//! `source()` (so `downcast_ref` finds it through `anyhow` or a
//! `Box<dyn Error>`), and no message repeats the cause below it.

use crate::common;

use std::error::Error as StdError;

use common::{ApiError, secs};
use pollkit::{Error, Poller, ShortPoll};

/// The error and every source below it, top first.
fn links<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// Every message of the chain, top first, as an error reporter prints it.
fn chain(e: &(dyn StdError + 'static)) -> Vec<String> {
    links(e).map(ToString::to_string).collect()
}

#[tokio::test(start_paused = true)]
async fn downcast_ref_finds_the_users_error_through_box_dyn_error() {
    let err = ShortPoll::new(|| async { Err::<(), _>(ApiError::NotFound) })
        .until(|_| true)
        .await
        .unwrap_err();
    let boxed: Box<dyn StdError + Send + Sync> = Box::new(err);
    let found = links(&*boxed).find_map(|e| e.downcast_ref::<ApiError>());
    assert_eq!(found, Some(&ApiError::NotFound));
    assert_eq!(chain(&*boxed), ["request failed", "404 not found"]);
}

#[tokio::test(start_paused = true)]
async fn downcast_ref_finds_the_last_error_of_a_timeout_through_anyhow() {
    let err =
        ShortPoll::new(|| async { Err::<(), _>(ApiError::Unavailable { retry_after: None }) })
            .retry_if(ApiError::is_transient)
            .timeout(secs(10))
            .until(|_| true)
            .await
            .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let any = anyhow::Error::new(err).context("watching job 7");
    let found = any.chain().find_map(|e| e.downcast_ref::<ApiError>());
    assert!(matches!(found, Some(ApiError::Unavailable { .. })));
    // Each cause printed once: anyhow's `{:#}` joins the chain with ": ".
    let text = format!("{any:#}");
    assert_eq!(text.matches("503 service unavailable").count(), 1, "{text}");
    assert!(
        text.ends_with("the last request failed: 503 service unavailable"),
        "{text}"
    );
}

#[test]
fn exhausted_and_failed_give_their_error_as_the_source() {
    let e: Error<ApiError> = Error::exhausted(3, Some(ApiError::NotFound));
    assert_eq!(
        e.source().and_then(|s| s.downcast_ref::<ApiError>()),
        Some(&ApiError::NotFound)
    );
    let e: Error<ApiError> = Error::Failed(ApiError::NotFound);
    assert_eq!(chain(&e), ["the watched resource failed", "404 not found"]);
    let e: Error<ApiError> = Error::exhausted(3, None);
    assert!(e.source().is_none());
}
