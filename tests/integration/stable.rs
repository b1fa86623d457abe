//! Stable conditions on the paused clock: N in a row, or held for a duration.

use crate::common;

use std::time::Duration;

use common::{ApiError, Log, secs};
use pollkit::{Error, Poller, ShortPoll};

fn replay(
    log: &Log,
    answers: &'static [bool],
) -> impl FnMut() -> std::future::Ready<Result<bool, ApiError>> + use<> {
    let log = log.clone();
    move || {
        let n = log.hit();
        std::future::ready(Ok(answers.get(n - 1).copied().unwrap_or(false)))
    }
}

#[tokio::test(start_paused = true)]
async fn n_in_a_row_and_a_flip_resets_the_count() {
    let log = Log::new();
    let answers = &[true, true, false, true, true, true, false];
    let r = ShortPoll::new(replay(&log, answers))
        .interval(secs(10))
        .until_stable(3, |healthy| *healthy)
        .await;
    assert!(r.unwrap());
    assert_eq!(log.secs(), [0, 10, 20, 30, 40, 50]);
}

#[tokio::test(start_paused = true)]
async fn zero_in_a_row_is_one() {
    let log = Log::new();
    let r = ShortPoll::new(replay(&log, &[false, true]))
        .until_stable(0, |healthy| *healthy)
        .await;
    assert!(r.unwrap());
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn held_for_a_duration_and_a_flip_restarts_the_clock() {
    let log = Log::new();
    // Healthy at 0, 10, 20; down at 30; healthy from 40 on.
    let answers = &[true, true, true, false, true, true, true, true, true];
    let r = ShortPoll::new(replay(&log, answers))
        .interval(secs(10))
        .until_held(secs(25), |healthy| *healthy)
        .await;
    assert!(r.unwrap());
    // Held since 40: confirmed by the first status at or after 65, at 70.
    assert_eq!(*log.secs().last().unwrap(), 70);
}

#[tokio::test(start_paused = true)]
async fn stable_conditions_end_with_the_pollers_error() {
    let log = Log::new();
    let r = ShortPoll::new(replay(&log, &[true, true, true]))
        .max_attempts(2)
        .until_stable(3, |healthy| *healthy)
        .await;
    assert!(matches!(r, Err(Error::Exhausted { attempts: 2, .. })));
    let stream = futures::stream::iter([Ok::<bool, Error<ApiError>>(true)]);
    let r = stream.until_held(Duration::from_secs(1), |h| *h).await;
    assert!(matches!(r, Err(Error::Ended)));
}
