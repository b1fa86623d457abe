//! [`Cut`]: how an SSE connection ended, and what that means for the
//! stream's items and signals.

use std::time::Duration;

use super::Cause;
use crate::Error;

/// How a connection ended.
pub(super) enum Cut<E> {
    /// The body ended cleanly.
    Ended,
    /// No bytes for the idle timeout.
    Idle(Duration),
    /// The connect did not answer within this limit.
    TimedOut(Duration),
    /// `connect` or the body failed.
    Failed(E),
}

impl<E> Cut<E> {
    /// The error that ends the stream for this cut, if it is one;
    /// `attempts` is the connections made.
    pub(super) fn into_error(self, attempts: u32) -> Option<Error<E>> {
        match self {
            Cut::Ended => None,
            Cut::Idle(timeout) | Cut::TimedOut(timeout) => {
                Some(Error::AttemptTimeout { timeout, attempts })
            }
            Cut::Failed(e) => Some(Error::Fetch(e)),
        }
    }

    /// The cause a reconnect reports to the user's observer.
    pub(super) fn cause(&self) -> Cause<'_, E> {
        match self {
            Cut::Ended => Cause::Ended,
            Cut::Idle(_) => Cause::Idle,
            Cut::TimedOut(_) => Cause::TimedOut,
            Cut::Failed(e) => Cause::Failed(e),
        }
    }

    /// The error the connection failed with, if it did.
    pub(super) fn error(&self) -> Option<&E> {
        match self {
            Cut::Failed(e) => Some(e),
            _ => None,
        }
    }
}
