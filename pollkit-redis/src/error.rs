//! [`Error`]: what can go wrong between an instance and Redis, and
//! [`RemoteError`]: a poller's error as every instance's waiters see it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An error talking to Redis, or decoding what it holds.
///
/// Neither [`FleetBudget`](crate::FleetBudget) nor
/// [`FleetHub`](crate::FleetHub) ends a watch on these: they fall back to
/// their degraded mode and say so in their stats. The error is returned by
/// the calls that set them up ([`connect`](crate::connect)) and by the
/// lower-level helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis did not answer within {}ms", .0.as_millis())]
    Timeout(Duration),
    /// A status or checkpoint could not be encoded or decoded as JSON.
    #[error("could not encode or decode a status: {0}")]
    Codec(#[from] serde_json::Error),
    /// Redis answered something this crate did not write.
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}

/// A poller's error as the waiters of every instance see it: the holder's
/// error type cannot cross processes, so its message does.
///
/// A [`Watch`](crate::FleetWatch) yields `pollkit::Error<RemoteError>`:
/// the variant is kept (`Timeout`, `Exhausted`, `Failed`, ...) and the
/// user's error becomes its message.
///
/// # Examples
/// ```
/// use pollkit_redis::RemoteError;
///
/// let e = RemoteError::new("503 Service Unavailable");
/// assert_eq!(e.to_string(), "503 Service Unavailable");
/// assert_eq!(e.message(), "503 Service Unavailable");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    message: String,
}

impl RemoteError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        RemoteError {
            message: message.into(),
        }
    }

    /// The message of the poller's error, as the holder printed it.
    pub fn message(&self) -> &str {
        &self.message
    }
}
