//! [`Stats`]: counters a user can read while pollers run.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters that one or many pollers add to: requests (or connections) made,
/// errors, SSE reconnects, and the time spent waiting between requests.
///
/// Give a clone to each poller with `.stats(..)`; all clones share the same
/// counters, so one `Stats` can total a whole fleet. Counting costs a relaxed
/// atomic add per event and no allocation.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Poller, ShortPoll, Stats};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let stats = Stats::new();
/// let mut n = 0;
/// let _ = ShortPoll::new(move || { n += 1; async move { Ok::<_, std::io::Error>(n) } })
///     .interval(Duration::from_secs(5))
///     .stats(stats.clone())
///     .until(|n| *n == 3)
///     .await;
/// assert_eq!(stats.requests(), 3);
/// assert_eq!(stats.waited(), Duration::from_secs(10));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Stats {
    inner: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
    waits_lowered: AtomicU64,
    waited_nanos: AtomicU64,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("requests", &self.requests())
            .field("errors", &self.errors())
            .field("reconnects", &self.reconnects())
            .field("waits_lowered", &self.waits_lowered())
            .field("waited", &self.waited())
            .finish()
    }
}

impl Stats {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests made (for SSE: connections attempted).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Failed requests: errors, per-request timeouts, failed connections,
    /// the one that ends polling included.
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// SSE reconnects (connections after the first).
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    /// Times a `LongPoll` lowered the wait it asks for because requests
    /// kept being cut after the same time (a proxy's read timeout).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::long::Reply;
    /// use pollkit::{LongPoll, Poller, Stats};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), pollkit::Error<&'static str>> {
    /// let stats = Stats::new();
    /// let asked = LongPoll::new(|req| async move {
    ///         // A proxy cuts every request held for 8 s (a 504); the server
    ///         // answers with the wait it was asked to hold.
    ///         if req.wait() >= Duration::from_secs(8) {
    ///             tokio::time::sleep(Duration::from_secs(8)).await;
    ///             return Err("504 Gateway Timeout");
    ///         }
    ///         tokio::time::sleep(req.wait()).await;
    ///         Ok(Reply::changed(req.wait(), 1))
    ///     })
    ///     .wait(Duration::from_secs(30))
    ///     .stats(stats.clone())
    ///     .until(|_| true)
    ///     .await?;
    /// // Two cuts at 8 s taught the limit: it now asks for 3/4 of it.
    /// assert_eq!(asked, Duration::from_secs(6));
    /// assert_eq!((stats.waits_lowered(), stats.errors()), (1, 2));
    /// # Ok(()) }
    /// ```
    pub fn waits_lowered(&self) -> u64 {
        self.inner.waits_lowered.load(Ordering::Relaxed)
    }

    /// Total time planned between requests (intervals, backoff, hints,
    /// pacing, budget).
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.inner.waited_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn request(&self) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.inner.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reconnect(&self) {
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wait_lowered(&self) {
        self.inner.waits_lowered.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wait(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Saturates (at about 584 years) rather than wrapping: one `Stats`
        // may total a fleet that waits thousands of seconds per second.
        let _ = self
            .inner
            .waited_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(nanos))
            });
    }
}
