//! [`Request`]: what one long-poll request should ask for.

use std::time::Duration;

/// What the fetch function of a [`LongPoll`](crate::LongPoll) should send: the
/// cursor of the last change seen, and how long the server may hold the request.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::long::Request;
///
/// fn url(req: &Request<u64>) -> String {
///     format!("/v1/kv/config?index={}&wait={}s",
///             req.cursor().copied().unwrap_or(0), req.wait().as_secs())
/// }
/// # let _ = url;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<C> {
    cursor: Option<C>,
    wait: Duration,
    attempt: u32,
}

impl<C> Request<C> {
    pub(crate) fn new(cursor: Option<C>, wait: Duration, attempt: u32) -> Self {
        Request {
            cursor,
            wait,
            attempt,
        }
    }

    /// The cursor to send (an index, an ETag, an offset): `None` on the first
    /// request and after the fetch function returned [`Reply::reset`](super::Reply::reset).
    pub fn cursor(&self) -> Option<&C> {
        self.cursor.as_ref()
    }

    /// How long to ask the server to hold the request. Never more than the
    /// time left before the poller's deadline, so the client never asks the
    /// server to hold past it.
    ///
    /// It is zero for the final request at the deadline, and can be under a
    /// second near it. Some servers read a zero wait as "use my default"
    /// (Consul's is 5 minutes): for those, send at least their smallest wait
    /// (e.g. `wait().max(Duration::from_secs(1))`) and rely on the
    /// per-request timeout.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The number of this request, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Takes the cursor out of the request.
    pub fn into_cursor(self) -> Option<C> {
        self.cursor
    }
}
