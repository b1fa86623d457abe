//! What a key's stream holds: entry ids, statuses, checkpoints and the end,
//! as the fields of a Redis Stream entry.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use pollkit::Error as PollError;
use serde::{Deserialize, Serialize};

use crate::RemoteError;

/// Field: the status, as JSON.
pub(crate) const STATUS: &str = "s";
/// Field: the checkpoint taken after the status, as JSON.
pub(crate) const CHECKPOINT: &str = "c";
/// Field: the poller's final error, as JSON ([`WireError`]).
pub(crate) const ERROR: &str = "e";
/// Field: the poller ended without an error.
pub(crate) const END: &str = "end";
/// Field of a note in the hub's changes stream: the key that changed.
pub(crate) const NOTE: &str = "k";
/// Field: the entry's place in the key's sequence (1, 2, ...; carried on by
/// every new holder from the status it resumes from).
pub(crate) const SEQ: &str = "n";
/// Field: the term of the holder that published the entry: the Redis
/// server's clock (`TIME`, in microseconds) when it took the lease, above
/// the term of the stream's latest entry. A new term whose sequence does
/// not go on past the entries a reader read tells that Redis lost some.
pub(crate) const TERM: &str = "t";

/// A stream entry id, `milliseconds-sequence`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EntryId {
    ms: u64,
    seq: u64,
}

impl FromStr for EntryId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        Ok(EntryId {
            ms: ms.parse().map_err(drop)?,
            seq: seq.parse().map_err(drop)?,
        })
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What a waiter gets: a status, the poller's error, or its end.
#[derive(Clone, Debug)]
pub(crate) enum Event<S> {
    Status(S),
    Error(PollError<RemoteError>),
    End,
}

impl<S> Event<S> {
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self, Event::Status(_))
    }
}

/// A poller's final error, across processes: the variant, its numbers, and
/// the user's error as its message.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum WireError {
    Fetch {
        message: String,
    },
    Failed {
        message: String,
    },
    Timeout {
        elapsed_ms: u64,
        attempts: u32,
        last_error: Option<String>,
    },
    Exhausted {
        attempts: u32,
        last_error: Option<String>,
    },
    AttemptTimeout {
        timeout_ms: u64,
        attempts: u32,
    },
    Ended,
    /// A variant this crate does not know (an SSE format error, a future
    /// one): its whole message.
    Other {
        message: String,
    },
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl WireError {
    pub(crate) fn from_error<E: fmt::Display>(e: &PollError<E>) -> Self {
        match e {
            PollError::Fetch(e) => WireError::Fetch {
                message: e.to_string(),
            },
            PollError::Failed(e) => WireError::Failed {
                message: e.to_string(),
            },
            PollError::Timeout {
                elapsed,
                attempts,
                last_error,
                ..
            } => WireError::Timeout {
                elapsed_ms: ms(*elapsed),
                attempts: *attempts,
                last_error: last_error.as_ref().map(ToString::to_string),
            },
            PollError::Exhausted {
                attempts,
                last_error,
                ..
            } => WireError::Exhausted {
                attempts: *attempts,
                last_error: last_error.as_ref().map(ToString::to_string),
            },
            PollError::AttemptTimeout {
                timeout, attempts, ..
            } => WireError::AttemptTimeout {
                timeout_ms: ms(*timeout),
                attempts: *attempts,
            },
            PollError::Ended => WireError::Ended,
            // The message of an SSE format error is its source's.
            PollError::Sse(sse) => WireError::Other {
                message: format!("{e}: {sse}"),
            },
            other => WireError::Other {
                message: other.to_string(),
            },
        }
    }

    pub(crate) fn into_error(self) -> PollError<RemoteError> {
        match self {
            WireError::Fetch { message } => PollError::Fetch(RemoteError::new(message)),
            WireError::Failed { message } => PollError::Failed(RemoteError::new(message)),
            WireError::Timeout {
                elapsed_ms,
                attempts,
                last_error,
            } => PollError::timeout(
                Duration::from_millis(elapsed_ms),
                attempts,
                last_error.map(RemoteError::new),
            ),
            WireError::Exhausted {
                attempts,
                last_error,
            } => PollError::exhausted(attempts, last_error.map(RemoteError::new)),
            WireError::AttemptTimeout {
                timeout_ms,
                attempts,
            } => PollError::attempt_timeout(Duration::from_millis(timeout_ms), attempts),
            WireError::Ended => PollError::Ended,
            WireError::Other { message } => PollError::Fetch(RemoteError::new(message)),
        }
    }
}

/// One decoded entry of a key's stream.
#[derive(Debug)]
pub(crate) struct Entry<S> {
    pub(crate) id: EntryId,
    pub(crate) event: Event<S>,
    pub(crate) checkpoint: Option<String>,
    /// Its place in the sequence; `None` in an entry written without one
    /// (it then follows the entries before it).
    pub(crate) n: Option<u64>,
    /// The term of its holder; `None` in an entry written without one (by
    /// an older release: it is of the term before it).
    pub(crate) term: Option<u64>,
}

/// Decodes a stream entry; `None` for one this crate did not write (it is
/// skipped, never delivered).
pub(crate) fn decode<S: serde::de::DeserializeOwned>(
    entry: &redis::streams::StreamId,
) -> Option<Entry<S>> {
    let id = entry.id.parse().ok()?;
    let checkpoint = entry.get::<String>(CHECKPOINT);
    let n = entry.get::<u64>(SEQ);
    let term = entry.get::<u64>(TERM);
    let event = if let Some(status) = entry.get::<String>(STATUS) {
        Event::Status(serde_json::from_str(&status).ok()?)
    } else if let Some(error) = entry.get::<String>(ERROR) {
        Event::Error(serde_json::from_str::<WireError>(&error).ok()?.into_error())
    } else if entry.map.contains_key(END) {
        Event::End
    } else {
        return None;
    };
    Some(Entry {
        id,
        event,
        checkpoint,
        n,
        term,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_as_redis_does() {
        let a: EntryId = "1700000000000-9".parse().unwrap();
        let b: EntryId = "1700000000000-10".parse().unwrap();
        let c: EntryId = "1700000000001-0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1700000000000-10");
        assert!("junk".parse::<EntryId>().is_err());
    }

    #[test]
    fn errors_keep_their_variant_across_processes() {
        let e: PollError<std::io::Error> = PollError::timeout(
            Duration::from_secs(3),
            4,
            Some(std::io::Error::other("503")),
        );
        let wire = serde_json::to_string(&WireError::from_error(&e)).unwrap();
        let back = serde_json::from_str::<WireError>(&wire)
            .unwrap()
            .into_error();
        assert_eq!(back.to_string(), e.to_string());
    }
}
