//! [`Reply`]: what one long-poll request found.

/// What the fetch function of a [`LongPoll`](crate::LongPoll) found.
///
/// # Examples
/// ```
/// use pollkit::long::Reply;
///
/// // The server answered with a newer index: yield the body, remember the index.
/// let r: Reply<&str, u64> = Reply::changed("v2", 42);
/// assert!(matches!(r, Reply::Changed { cursor: 42, .. }));
/// // The server's wait ended with nothing new.
/// let r: Reply<&str, u64> = Reply::unchanged();
/// // Kubernetes `410 Gone`, an index that went backwards: start over.
/// let r: Reply<&str, u64> = Reply::reset();
/// # let _ = r;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply<S, C> {
    /// Something changed: yield `status` and send `cursor` next time.
    #[non_exhaustive]
    Changed {
        /// The new status.
        status: S,
        /// The cursor to send with the next request.
        cursor: C,
    },
    /// The server's wait ended with nothing new: yield nothing, keep the cursor.
    Unchanged,
    /// Nothing to yield, but the cursor moved (a Kubernetes BOOKMARK event, an
    /// index that advanced without a change that matters).
    #[non_exhaustive]
    Advanced {
        /// The cursor to send with the next request.
        cursor: C,
    },
    /// The cursor is no longer valid (Kubernetes `410 Gone`, etcd's "index
    /// cleared", Kafka's offset out of range, a Consul index that went
    /// backwards): the next request is sent without one.
    Reset,
}

impl<S, C> Reply<S, C> {
    /// Something changed: yield `status`, and send `cursor` next time.
    pub fn changed(status: S, cursor: C) -> Self {
        Reply::Changed { status, cursor }
    }

    /// The server's wait ended with nothing new.
    pub fn unchanged() -> Self {
        Reply::Unchanged
    }

    /// Nothing to yield, but send `cursor` next time.
    pub fn advanced(cursor: C) -> Self {
        Reply::Advanced { cursor }
    }

    /// The cursor is no longer valid: the next request starts without one.
    pub fn reset() -> Self {
        Reply::Reset
    }
}
