//! [`Reconnect`]: when an [`SseStream`](super::SseStream) connects again.

use super::cut::Cut;

/// When an [`SseStream`](super::SseStream) connects again after its
/// connection ends, fails or goes quiet.
///
/// | policy | clean end of the body | transient error, timeout | after the first event |
/// |---|---|---|---|
/// | [`Always`](Reconnect::Always) | reconnect | reconnect | as before it |
/// | [`AfterErrors`](Reconnect::AfterErrors) | end (`None`) | reconnect | as before it |
/// | [`BeforeFirstEvent`](Reconnect::BeforeFirstEvent) | reconnect | reconnect | an end ends the stream, an error ends it with that error |
/// | [`Never`](Reconnect::Never) | end (`None`) | end with the error | — |
///
/// Use `Always` for a feed (notifications, a job's progress): what browsers
/// do. Use `BeforeFirstEvent` for a one-shot POST that streams one answer
/// and ends (an LLM completion, an MCP call): a refused or failed start is
/// retried, but an answer cut halfway is reported, never requested (and
/// paid for) again. Use `Never` when even the start must not be repeated
/// (a request that is not idempotent). Permanent errors, the server's stop
/// ([`stop_if`](super::SseStream::stop_if)) and the retry policy end the
/// stream under every policy.
///
/// # Default
/// [`Reconnect::Always`].
///
/// # Examples
/// ```
/// use futures::StreamExt;
/// use pollkit::SseStream;
/// use pollkit::sse::Reconnect;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut connects = 0;
/// let answer: Vec<_> = SseStream::new(|_id: Option<String>| {
///         connects += 1;
///         async { Ok::<_, std::io::Error>(futures::stream::iter([Ok(&b"data: done\n\n"[..])])) }
///     })
///     .reconnect(Reconnect::BeforeFirstEvent)
///     .collect()
///     .await;
/// assert_eq!(answer.len(), 1);
/// assert_eq!(connects, 1); // the answer was not requested again
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reconnect {
    /// Reconnect after every end and every transient error.
    #[default]
    Always,
    /// Reconnect after transient errors, connect timeouts and idle
    /// timeouts; a clean end of the body ends the stream.
    AfterErrors,
    /// Reconnect until the first event arrives; after it, a clean end ends
    /// the stream and an error ends it with that error.
    BeforeFirstEvent,
    /// Never reconnect: the first connection is the only one.
    Never,
}

impl Reconnect {
    /// Whether this policy connects again after `cut`; `events_seen` is
    /// whether any event was handed out.
    pub(super) fn allows<E>(self, cut: &Cut<E>, events_seen: bool) -> bool {
        match (self, cut) {
            (Reconnect::Always, _) => true,
            (Reconnect::AfterErrors, Cut::Ended) => false,
            (Reconnect::AfterErrors, _) => true,
            (Reconnect::BeforeFirstEvent, _) => !events_seen,
            (Reconnect::Never, _) => false,
        }
    }
}
