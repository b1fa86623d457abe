//! [`Checkpoint`]: a poller's progress as a value, to go on after a restart.

use std::time::Duration;

/// Where a wait stands: requests made, time spent against the deadline, and
/// the position to resume from (a long-poll cursor, an SSE last event id).
///
/// Take one with `checkpoint()` on a strategy, store it (it is serializable
/// with the `serde` feature), and after a restart build the same poller and
/// call `resume(checkpoint)` on it: it goes on waiting where it stopped (the
/// deadline and the attempt limit count what was already spent) instead of
/// from the beginning.
///
/// The fields are public to read; build one with [`Checkpoint::new`] (the
/// type is `#[non_exhaustive]`, so that a field can be added without a
/// breaking change).
///
/// # Time spent while stopped
/// [`elapsed`](Checkpoint::elapsed) is the time the poller ran: from its first
/// poll to the checkpoint, plus what the checkpoint it was resumed from
/// carried. The time between a checkpoint and its resume (the process was
/// down, or the checkpoint sat in a queue) is **not** counted: a wait with a
/// 10-minute deadline that was down for an hour still has the rest of its 10
/// minutes after the restart. To count the downtime against the deadline,
/// store the wall-clock time next to the checkpoint and add the difference
/// when resuming:
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use pollkit::Checkpoint;
///
/// // Before the shutdown: the checkpoint, and when it was taken.
/// let saved = Checkpoint::new(5, Duration::from_secs(40), Some(17_u64));
/// let saved_at = SystemTime::now();
///
/// // After the restart: the time down counts as spent. A clock that went
/// // backwards counts as no time.
/// let down = SystemTime::now().duration_since(saved_at).unwrap_or_default();
/// let resume_from = Checkpoint::new(
///     saved.attempts(),
///     saved.elapsed().saturating_add(down),
///     saved.into_cursor(),
/// );
/// assert!(resume_from.elapsed() >= Duration::from_secs(40));
/// ```
///
/// # Serialized form
/// With the `serde` feature, a checkpoint is a struct with the fields
/// `version` (the format version, now 1), `attempts`, `elapsed` (a
/// [`Duration`] as serde writes it) and `cursor`; in JSON:
///
/// ```json
/// {"version":1,"attempts":3,"elapsed":{"secs":12,"nanos":0},"cursor":42}
/// ```
///
/// Reading is tolerant, so that a checkpoint stored by one release of pollkit
/// loads in another: unknown fields are ignored (a field added by a later
/// release), a missing `cursor` is `None`, and a missing `version` is read as
/// 1 (pollkit 0.1 wrote none). The version changes only when a field changes
/// meaning; reading a version newer than this release knows is an error that
/// says so, never a silent misreading. Tolerance needs a self-describing
/// format (JSON, CBOR, MessagePack...).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use pollkit::long::{Reply, Request};
/// use pollkit::{Error, LongPoll, Poller};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let fetch = |req: Request<u64>| {
///     let next = req.cursor().copied().unwrap_or(0) + 1;
///     async move { Ok::<_, std::io::Error>(Reply::changed(next, next)) }
/// };
/// let mut poller = LongPoll::new(fetch).timeout(Duration::from_secs(60));
/// poller.next().await;
/// poller.next().await;
/// let saved = poller.checkpoint(); // the service shuts down here
/// assert_eq!((saved.attempts(), saved.cursor()), (2, Some(&2)));
///
/// // ... and after the restart:
/// let resumed = LongPoll::new(fetch).timeout(Duration::from_secs(60)).resume(saved);
/// assert_eq!(resumed.until(|n| *n >= 3).await.unwrap(), 3);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint<C = ()> {
    /// Requests (or connections) made so far.
    pub attempts: u32,
    /// Time the poller has run so far, counted against the deadline: since
    /// its first poll, plus what earlier checkpoints carried. Time between a
    /// checkpoint and its resume is not counted (see
    /// [Time spent while stopped](Checkpoint#time-spent-while-stopped)).
    pub elapsed: Duration,
    /// Where to resume: the last cursor (long polling) or last event id (SSE).
    pub cursor: Option<C>,
}

impl<C> Checkpoint<C> {
    /// A checkpoint of `attempts` requests made, `elapsed` time spent against
    /// the deadline, and the position to resume from.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::Checkpoint;
    ///
    /// let c = Checkpoint::new(3, Duration::from_secs(12), Some("410".to_string()));
    /// assert_eq!(c.attempts(), 3);
    /// assert_eq!(c.elapsed(), Duration::from_secs(12));
    /// assert_eq!(c.cursor().map(String::as_str), Some("410"));
    /// ```
    #[must_use]
    pub const fn new(attempts: u32, elapsed: Duration, cursor: Option<C>) -> Self {
        Checkpoint {
            attempts,
            elapsed,
            cursor,
        }
    }

    /// Requests (or connections) made so far.
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time the poller has run so far, counted against the deadline; time
    /// while stopped is not counted (see
    /// [Time spent while stopped](Checkpoint#time-spent-while-stopped)).
    pub const fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Where to resume: the last cursor (long polling) or last event id (SSE).
    pub const fn cursor(&self) -> Option<&C> {
        self.cursor.as_ref()
    }

    /// The position to resume from, taking it out of the checkpoint.
    #[must_use]
    pub fn into_cursor(self) -> Option<C> {
        self.cursor
    }
}

/// The serialized form: a format version in front of the fields, read
/// tolerantly (see the type's docs).
#[cfg(feature = "serde")]
mod wire {
    use std::time::Duration;

    use serde::de::{self, Deserialize, Deserializer};
    use serde::ser::{Serialize, Serializer};

    use super::Checkpoint;

    /// The format version written, and the newest one read.
    const VERSION: u32 = 1;

    #[derive(serde::Serialize)]
    #[serde(rename = "Checkpoint")]
    struct Out<'a, C> {
        version: u32,
        attempts: u32,
        elapsed: Duration,
        cursor: &'a Option<C>,
    }

    // Fields not named here are ignored: a later release may add some.
    #[derive(serde::Deserialize)]
    #[serde(rename = "Checkpoint")]
    struct In<C> {
        // Written first, so a newer format fails here, with a clear message,
        // before a field whose shape changed does.
        #[serde(default)]
        version: Version,
        attempts: u32,
        elapsed: Duration,
        // `Option::default` rather than `default`, which would ask `C: Default`.
        #[serde(default = "Option::default")]
        cursor: Option<C>,
    }

    /// A version this release reads; missing means 1 (pollkit 0.1 wrote none).
    #[derive(Default)]
    struct Version;

    impl<'de> Deserialize<'de> for Version {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            match u32::deserialize(deserializer)? {
                1..=VERSION => Ok(Version),
                v if v > VERSION => Err(de::Error::custom(format_args!(
                    "checkpoint format version {v} is newer than this version of pollkit \
                     reads (up to {VERSION}); upgrade pollkit to resume from it"
                ))),
                v => Err(de::Error::custom(format_args!(
                    "unknown checkpoint format version {v}"
                ))),
            }
        }
    }

    impl<C: Serialize> Serialize for Checkpoint<C> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Out {
                version: VERSION,
                attempts: self.attempts,
                elapsed: self.elapsed,
                cursor: &self.cursor,
            }
            .serialize(serializer)
        }
    }

    impl<'de, C: Deserialize<'de>> Deserialize<'de> for Checkpoint<C> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let In {
                version: Version,
                attempts,
                elapsed,
                cursor,
            } = In::deserialize(deserializer)?;
            Ok(Checkpoint::new(attempts, elapsed, cursor))
        }
    }
}
