//! [`HubConfig`]: lease time, stream length and retention, read blocking,
//! timeouts.

use std::time::Duration;

/// How a [`FleetHub`](crate::FleetHub) uses Redis.
///
/// # Default
/// - `lease` 5 s: a holder that dies is replaced within about 6 s (the lease
///   plus one tick of `lease / 5`); a holder renews every tick. Shorter
///   leases hand over sooner and cost more renewals; a holder stalled longer
///   than the lease loses the key (and cannot publish after that).
/// - `max_len` 100: entries kept per key (`XADD MAXLEN ~`), and statuses
///   kept per key on each instance for its waiters: a waiter that falls
///   behind by up to this many loses none; further behind, it skips to the
///   oldest still kept.
/// - `retain` 10 min: a key's stream is kept while its lease is held (each
///   renewal extends it) and this much after its last entry or renewal, so
///   a late joiner gets the latest status of a quiet key at once.
/// - `block` 2 s: the longest blocking read (`XREAD BLOCK`); new keys
///   interrupt it (`CLIENT UNBLOCK`), so it bounds nothing users see.
/// - `timeout` 1 s: a command that takes longer counts as Redis trouble, and
///   the instance polls on its own until Redis answers again.
/// - `max_status` 64 KiB: the largest status (as JSON) a key may have. A
///   poller that yields a larger one ends its key's watch with
///   `pollkit::Error::Failed` (the message names `max_status`); it is never
///   published, so one key's huge statuses cannot slow the reading of every
///   other key. Reading is bounded too: at most 100 entries per key per
///   read.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit_redis::HubConfig;
///
/// let config = HubConfig::new().lease(Duration::from_secs(2)).max_len(1_000);
/// assert_eq!(config.lease_time(), Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
pub struct HubConfig {
    pub(crate) lease: Duration,
    pub(crate) max_len: usize,
    pub(crate) retain: Duration,
    pub(crate) block: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_status: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl HubConfig {
    /// The defaults above.
    pub fn new() -> Self {
        HubConfig {
            lease: Duration::from_secs(5),
            max_len: 100,
            retain: Duration::from_secs(600),
            block: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            max_status: 64 * 1024,
        }
    }

    /// How long a lease lasts without renewal (at least 100 ms).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// The lease time.
    pub fn lease_time(&self) -> Duration {
        self.lease
    }

    /// Entries kept per key (at least 1).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(1);
        self
    }

    /// How long a key's stream outlives its last entry or the last renewal
    /// of its lease (at least 1 s, and at least the lease time).
    pub fn retain(mut self, retain: Duration) -> Self {
        self.retain = retain.max(Duration::from_secs(1));
        self
    }

    /// The longest blocking read (at least 10 ms).
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(10));
        self
    }

    /// How long a command may take before it counts as Redis trouble (at
    /// least 10 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// The largest status, in bytes of JSON, a key may have (at least 1).
    pub fn max_status(mut self, bytes: usize) -> Self {
        self.max_status = bytes.max(1);
        self
    }

    /// How often an instance renews and takes leases (and checks Redis).
    pub(crate) fn tick(&self) -> Duration {
        self.lease / 5
    }
}
