//! [`Retry`]: what a retry observer (`on_retry`) is told before each retry wait.

use std::fmt;
use std::time::Duration;

/// One retry about to happen, as [`on_retry`](crate::ShortPoll::on_retry)
/// sees it: why the last request (or connection) failed, which one it was,
/// and how long the poller will wait before the next.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use pollkit::{Backoff, Jitter, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let mut calls = 0;
/// let mut poller = ShortPoll::new(move || {
///         calls += 1;
///         async move { if calls < 3 { Err("503") } else { Ok(calls) } }
///     })
///     .backoff(Backoff::new().jitter(Jitter::None))
///     .on_retry(move |retry| {
///         log.lock().unwrap().push((retry.attempt(), retry.delay(), retry.error().copied()));
///     });
/// assert_eq!(poller.next().await.unwrap().unwrap(), 3);
/// assert_eq!(*seen.lock().unwrap(), [
///     (1, Duration::from_secs(1), Some("503")),
///     (2, Duration::from_secs(2), Some("503")),
/// ]);
/// # }
/// ```
pub struct Retry<'a, E> {
    pub(crate) error: Option<&'a E>,
    pub(crate) hint: Option<Duration>,
    pub(crate) attempt: u32,
    pub(crate) delay: Duration,
}

impl<'a, E> Retry<'a, E> {
    /// The error the request failed with; `None` when it was cut by the
    /// per-request timeout (or, for SSE, the connect timeout).
    pub fn error(&self) -> Option<&'a E> {
        self.error
    }

    /// The server's hint (`Retry-After`) read from the error, before it was
    /// clamped and spread.
    pub fn hint(&self) -> Option<Duration> {
        self.hint
    }

    /// The number of the request that failed, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long the poller waits before the next request (capped by the
    /// deadline: the wait may end sooner when the deadline comes first).
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

impl<E: fmt::Debug> fmt::Debug for Retry<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("error", &self.error)
            .field("hint", &self.hint)
            .field("attempt", &self.attempt)
            .field("delay", &self.delay)
            .finish()
    }
}
