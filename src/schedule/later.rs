//! [`later`]: an instant a duration from now that never panics.

use std::time::Duration;

use tokio::time::Instant;

/// Like tokio's own `far_future`: about thirty years is "never" for a poller.
pub(crate) const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + d`, saturating at a far-off instant instead of panicking.
#[inline]
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    if d.is_zero() {
        return now;
    }
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}
