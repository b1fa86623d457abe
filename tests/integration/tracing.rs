//! The `tracing` feature: one span per poller, an event per attempt and per
//! planned wait with the reason, and per SSE reconnect.
#![cfg(feature = "tracing")]

use crate::common;

use std::sync::{Arc, Mutex};

use common::{ApiError, secs};
use futures::StreamExt;
use pollkit::{Backoff, Budget, Jitter, Poller, ShortPoll};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records the fields of every span and event as text.
#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<String>>>,
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(format!("span {}", span.metadata().name()));
        span.record(&mut fields);
        self.lines.lock().unwrap().push(fields.0);
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields("event".into());
        event.record(&mut fields);
        self.lines.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test(start_paused = true)]
async fn spans_and_events_say_what_was_planned_and_why() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let mut answers = vec![
        Err(ApiError::Unavailable { retry_after: None }),
        Ok(1),
        Ok(2),
    ]
    .into_iter();
    let r = ShortPoll::new(move || std::future::ready(answers.next().unwrap_or(Ok(3))))
        .interval(secs(5))
        .backoff(Backoff::new().jitter(Jitter::None))
        .budget(Budget::every(secs(3)))
        .key("job-42")
        .until(|n| *n == 2)
        .await;
    assert_eq!(r.unwrap(), 2);
    let lines = recorder.lines.lock().unwrap().clone();
    let text = lines.join("\n");
    assert!(
        lines[0].starts_with("span poller strategy=short key=job-42"),
        "{text}"
    );
    assert!(text.contains("event message=request attempt=1"), "{text}");
    assert!(text.contains("delay_ms=1000 reason=backoff"), "{text}");
    // The retry at 1 s waits for the budget's next slot at 3 s.
    assert!(text.contains("delay_ms=2000 reason=budget"), "{text}");
    assert!(text.contains("delay_ms=5000 reason=interval"), "{text}");
    assert!(text.contains("event message=request attempt=3"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_resumed_checkpoint_at_the_attempt_limit_does_not_overflow() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let saved = pollkit::Checkpoint::new(u32::MAX, std::time::Duration::ZERO, None);
    let r = ShortPoll::new(|| async { Ok::<_, ApiError>(1) })
        .resume(saved)
        .take(2)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(r.len(), 2);
}
