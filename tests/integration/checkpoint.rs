//! Saving a wait and going on after a restart.

use crate::common;

use common::{ApiError, Log, secs};
use futures::StreamExt;
use pollkit::{Checkpoint, Error, Poller, ShortPoll, SseStream};

#[tokio::test(start_paused = true)]
async fn a_resumed_short_poll_keeps_its_deadline_and_attempt_count() {
    let log = Log::new();
    let l = log.clone();
    let fetch = move || {
        l.hit();
        std::future::ready(Ok::<_, ApiError>(false))
    };
    let mut poller = ShortPoll::new(fetch.clone())
        .interval(secs(10))
        .timeout(secs(60))
        .max_attempts(100);
    for _ in 0..5 {
        poller.next().await.unwrap().unwrap();
    }
    let saved = poller.checkpoint();
    assert_eq!(saved, Checkpoint::new(5, secs(40), None));
    assert_eq!((saved.attempts, saved.elapsed), (5, secs(40)));
    drop(poller);

    // After the restart: 20 s are left of the 60 s, and 5 requests were made.
    let start = tokio::time::Instant::now();
    let r = ShortPoll::new(fetch)
        .interval(secs(10))
        .timeout(secs(60))
        .resume(saved)
        .until(|done| *done)
        .await;
    match r {
        Err(Error::Timeout {
            elapsed, attempts, ..
        }) => {
            assert_eq!((elapsed, attempts), (secs(60), 8));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(start.elapsed(), secs(20));
}

#[tokio::test(start_paused = true)]
async fn a_resumed_event_stream_sends_the_saved_id() {
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let i = ids.clone();
    let connect = move |id: Option<String>| {
        i.lock().unwrap().push(id);
        std::future::ready(Ok::<_, ApiError>(futures::stream::iter([
            Ok::<_, ApiError>(&b"id: 8\ndata: x\n\n"[..]),
        ])))
    };
    let mut stream = SseStream::new(connect.clone());
    stream.next().await.unwrap().unwrap();
    let saved = stream.checkpoint();
    assert_eq!(saved.cursor.as_deref(), Some("8"));
    let mut resumed = SseStream::new(connect).resume(saved);
    resumed.next().await.unwrap().unwrap();
    assert_eq!(*ids.lock().unwrap(), [None, Some("8".to_string())]);
}

#[tokio::test(start_paused = true)]
async fn time_between_a_checkpoint_and_its_resume_is_not_counted() {
    let fetch = || std::future::ready(Ok::<_, ApiError>(false));
    let mut poller = ShortPoll::new(fetch).interval(secs(10)).timeout(secs(60));
    poller.next().await.unwrap().unwrap();
    poller.next().await.unwrap().unwrap();
    let saved = poller.checkpoint();
    assert_eq!(saved.elapsed(), secs(10));
    drop(poller);

    // Down for an hour: the resumed poller still has 50 s of its 60.
    tokio::time::advance(secs(3600)).await;
    let start = tokio::time::Instant::now();
    let r = ShortPoll::new(fetch)
        .interval(secs(10))
        .timeout(secs(60))
        .resume(saved)
        .until(|done| *done)
        .await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert_eq!(start.elapsed(), secs(50));
}

#[test]
fn accessors_read_what_new_was_given() {
    let c = Checkpoint::new(7, secs(3), Some("e-9".to_string()));
    assert_eq!(c.attempts(), 7);
    assert_eq!(c.elapsed(), secs(3));
    assert_eq!(c.cursor().map(String::as_str), Some("e-9"));
    assert_eq!(
        (c.attempts, c.elapsed, c.cursor.as_deref()),
        (7, secs(3), Some("e-9"))
    );
    assert_eq!(c.into_cursor().as_deref(), Some("e-9"));
}

#[cfg(feature = "serde")]
mod serialized {
    use super::*;

    use std::time::Duration;

    /// Written by pollkit with format version 1. Never regenerate it: it
    /// stands for checkpoints already stored, which every later release must
    /// still load.
    const V1: &str = include_str!("../data/checkpoint_v1.json");
    /// The same checkpoint with a field that a later release might add.
    const V1_WITH_A_LATER_FIELD: &str = include_str!("../data/checkpoint_v1_future_field.json");

    fn expected() -> Checkpoint<u64> {
        Checkpoint::new(3, secs(12), Some(42))
    }

    #[test]
    fn a_checkpoint_survives_serialization() {
        let saved = Checkpoint::new(12, Duration::from_millis(61_500), Some("410".to_string()));
        let json = serde_json::to_string(&saved).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"attempts":12,"elapsed":{"secs":61,"nanos":500000000},"cursor":"410"}"#
        );
        let back: Checkpoint<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, saved);
    }

    #[test]
    fn the_stored_fixture_is_what_this_version_writes() {
        assert_eq!(serde_json::to_string(&expected()).unwrap(), V1.trim_end());
    }

    #[test]
    fn a_stored_v1_checkpoint_loads() {
        let c: Checkpoint<u64> = serde_json::from_str(V1).unwrap();
        assert_eq!(c, expected());
    }

    #[test]
    fn a_checkpoint_with_a_field_added_later_still_loads() {
        let c: Checkpoint<u64> = serde_json::from_str(V1_WITH_A_LATER_FIELD).unwrap();
        assert_eq!(c, expected());
    }

    #[test]
    fn a_checkpoint_without_a_version_is_read_as_version_1() {
        // As pollkit 0.1 wrote them.
        let json = r#"{"attempts":3,"elapsed":{"secs":12,"nanos":0},"cursor":42}"#;
        let c: Checkpoint<u64> = serde_json::from_str(json).unwrap();
        assert_eq!(c, expected());
    }

    #[test]
    fn a_missing_cursor_is_none() {
        let json = r#"{"version":1,"attempts":3,"elapsed":{"secs":12,"nanos":0}}"#;
        let c: Checkpoint<u64> = serde_json::from_str(json).unwrap();
        assert_eq!(c, Checkpoint::new(3, secs(12), None));
    }

    #[test]
    fn a_newer_version_is_a_clear_error() {
        // Even when a field changed shape in that version.
        let json = r#"{"version":2,"attempts":3,"elapsed":"12s","cursor":42}"#;
        let e = serde_json::from_str::<Checkpoint<u64>>(json).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("checkpoint format version 2 is newer"),
            "{msg}"
        );
    }

    #[test]
    fn version_0_and_missing_required_fields_are_errors() {
        let zero = r#"{"version":0,"attempts":3,"elapsed":{"secs":12,"nanos":0}}"#;
        let e = serde_json::from_str::<Checkpoint<u64>>(zero).unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown checkpoint format version 0"),
            "{e}"
        );
        let no_attempts = r#"{"version":1,"elapsed":{"secs":12,"nanos":0}}"#;
        let e = serde_json::from_str::<Checkpoint<u64>>(no_attempts).unwrap_err();
        assert!(e.to_string().contains("missing field `attempts`"), "{e}");
    }
}
