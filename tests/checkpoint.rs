//! Saving a wait and going on after a restart.

mod common;

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
    assert_eq!(
        saved,
        Checkpoint {
            attempts: 5,
            elapsed: secs(40),
            cursor: None
        }
    );
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

#[cfg(feature = "serde")]
#[test]
fn a_checkpoint_survives_serialization() {
    let saved = Checkpoint {
        attempts: 12,
        elapsed: std::time::Duration::from_millis(61_500),
        cursor: Some("410".to_string()),
    };
    let json = serde_json::to_string(&saved).unwrap();
    assert_eq!(
        json,
        r#"{"attempts":12,"elapsed":{"secs":61,"nanos":500000000},"cursor":"410"}"#
    );
    let back: Checkpoint<String> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, saved);
}
