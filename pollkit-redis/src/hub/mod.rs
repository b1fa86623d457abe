//! [`FleetHub`]: one poller per key across every instance of a service.

mod checkpointed;
mod config;
mod driver;
mod feed;
mod reader;
mod wire;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use pollkit::Poller;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_stream::wrappers::WatchStream;

pub use checkpointed::{Checkpointed, Resume, Stateless};
pub use config::HubConfig;

use crate::{Error, RemoteError};
use driver::Running;
use feed::{Delivery, Feed};
use wire::{EntryId, Event};

/// What a waiter gets: a status, or the poller's final error (with the
/// holder's error as a [`RemoteError`]).
pub type Item<S> = Result<S, pollkit::Error<RemoteError>>;

/// Many waiters on many instances, one poller per key: a `pollkit::Hub` (feature
/// `hub`) for a fleet, on Redis.
///
/// Every instance makes a `FleetHub` with the same `name`. A
/// [`watch`](Self::watch) of a key joins the fleet's watch of it:
/// - one instance holds the key's **lease** (`SET NX PX`, renewed by its
///   holder with a compare-and-renew script every `lease / 5`), runs the
///   poller that `make` builds, and publishes every status, with the
///   poller's [`Checkpoint`](pollkit::Checkpoint), to the key's **Redis
///   Stream** (`XADD MAXLEN ~`, only while it holds the lease), with a
///   note of the key in the hub's changes stream;
/// - every instance's waiters read that stream (each instance blocks on the
///   changes stream and reads only the keys whose notes came, so a change
///   costs Redis the same at any number of keys): each gets every status
///   from when it joined,
///   and the latest at once (`XREVRANGE`); a waiter that falls behind reads
///   on from its own position among the key's last `max_len` statuses, so
///   it loses none the stream still holds;
/// - every status has a place in the key's **sequence** (published with it,
///   carried on by each new holder from the status it resumes from) and the
///   **term** of its holder (the Redis server's clock when it took the
///   lease): a waiter never gets a status twice, nor one older than one it
///   got. When Redis loses entries (a restart, from a snapshot or empty, a
///   `DEL` of the stream), the next holder's sequence goes on from an older
///   status, or from nothing: its new term tells that its places are its
///   own, and waiters get its news rather than drop them as seen. Up to
///   the places they had, they skip the statuses it yields again (a status
///   equal, as JSON, to the one they got at its place, or to the last);
/// - when the poller ends (its error, or the end of its stream), the
///   waiters present get the end; a watch made after that starts a new
///   poller, as `pollkit::Hub` does;
/// - when the holder's last waiter leaves, it stops and gives the lease up;
///   when the holder dies, its lease expires. Either way another instance
///   with waiters takes the key within a tick (`lease / 5`) of the lease
///   being free, and `make` gets the last published status and checkpoint
///   ([`Resume`]) to build a poller that goes on from there. A new holder
///   does not publish a first status identical (as JSON) to the last one.
///
/// # Degraded mode
/// When Redis does not answer (down, slow past [`HubConfig::timeout`],
/// unreachable), no watch stops: each instance runs its own poller for each
/// key it has waiters for, as an in-process hub does, resuming from the last
/// status and checkpoint it saw, and hands statuses to its waiters directly.
/// Give those pollers a [`FleetBudget`](crate::FleetBudget): it falls back to
/// its local share at the same time. When Redis answers again, each key goes
/// back to one holder within a tick: the instance that takes the lease
/// starts a poller from the stream's latest entry (so the other instances'
/// waiters miss nothing it saw alone); the others stop theirs and read the
/// stream. The sequence keeps every waiter from getting a status twice
/// across the switches.
///
/// # What the lease guarantees
/// One poller per key is an efficiency guarantee: publishing is fenced by
/// the lease check inside Redis, so an instance that lost its lease never
/// publishes, but two pollers of a key may run for a while (a holder paused
/// past its lease polls once more when it resumes; every instance polls in
/// degraded mode). It assumes bounded pauses and a Redis clock that does
/// not jump; the crate README says what happens under failover.
///
/// # Limits
/// One Redis (or Valkey) primary, not a cluster: the lease script touches
/// the keys of many watches at once. The poller's error type does not cross
/// processes: waiters get its message in a [`RemoteError`]. Statuses are at
/// most [`HubConfig::max_status`] bytes of JSON.
///
/// # Examples
/// ```no_run
/// use std::time::Duration;
/// use pollkit::{Poller, ShortPoll};
/// use pollkit_redis::FleetHub;
///
/// # async fn job_state(_: &str) -> Result<String, std::io::Error> { Ok("done".into()) }
/// # #[tokio::main] async fn main() -> Result<(), pollkit_redis::Error> {
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let hub: FleetHub<String> = FleetHub::connect(&client, "jobs").await?;
/// // However many instances and callers wait for job 7, one instance polls it.
/// let done = hub
///     .watch("job-7", |_resume| {
///         ShortPoll::new(|| job_state("job-7")).interval(Duration::from_secs(5))
///     })
///     .until(|state| state == "done")
///     .await;
/// # let _ = done; Ok(()) }
/// ```
pub struct FleetHub<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for FleetHub<S> {
    fn clone(&self) -> Self {
        FleetHub {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for FleetHub<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetHub")
            .field("name", &self.inner.prefix)
            .field("token", &self.inner.token)
            .field("config", &self.inner.config)
            .field("keys", &self.inner.lock().keys.len())
            .finish_non_exhaustive()
    }
}

/// Counters and state of one instance's [`FleetHub`].
///
/// # Examples
/// ```
/// let stats = pollkit_redis::HubStats::default();
/// assert!(!stats.degraded);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Keys this instance has waiters for.
    pub keys: usize,
    /// Keys whose lease this instance holds and polls.
    pub holding: usize,
    /// Keys polled locally because Redis does not answer.
    pub local: usize,
    /// Whether Redis failed to answer at the last try.
    pub degraded: bool,
    /// Leases taken (first holds and takeovers).
    pub taken: u64,
    /// Statuses published to the streams.
    pub published: u64,
    /// Entries read from the streams (this instance's own included).
    pub read: u64,
}

pub(crate) struct Inner<S> {
    conn: ConnectionManager,
    reader: ConnectionManager,
    prefix: String,
    token: String,
    config: HubConfig,
    state: Mutex<State<S>>,
    /// Wakes the driver: a key was added (load it, take its lease now).
    wake: Arc<Notify>,
    /// Wakes the reader: its set of streams changed.
    wake_reader: Arc<Notify>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Keys whose lease this instance is giving up: not taken meanwhile
    /// (see `driver::Release`). Apart from the state, so that the give-up
    /// task needs no status type.
    releasing: Arc<Mutex<driver::Releasing>>,
    taken: AtomicU64,
    published: AtomicU64,
    read: AtomicU64,
    /// Lease rounds made (the streams' expiry is refreshed every few).
    ticks: AtomicU64,
}

pub(crate) struct State<S> {
    keys: HashMap<String, Key<S>>,
    degraded: bool,
    /// The reader connection's `CLIENT ID`, to interrupt its blocking read.
    reader_id: Option<i64>,
    /// Keys the reader reads next, from their cursors.
    dirty: HashSet<String>,
    next_id: u64,
}

type Make<S> = Arc<dyn Fn(&Last<S>) -> Box<dyn Running<S>> + Send + Sync>;

/// The last status and checkpoint this instance saw for a key, and its
/// place in the sequence (where a poller resumed from them goes on); after
/// an end, no status nor checkpoint: a new poller starts afresh.
#[derive(Clone)]
pub(crate) struct Last<S> {
    status: Option<S>,
    checkpoint: Option<String>,
    n: u64,
}

pub(crate) struct Key<S> {
    id: u64,
    waiters: usize,
    feed: Arc<Feed<S>>,
    /// The last entry read or published; `None` until the key is loaded.
    cursor: Option<EntryId>,
    /// The newest place in the sequence delivered here.
    n: u64,
    /// The term and the place in the sequence of the last stream entry
    /// read (`(0, 0)` before the first): where the published history
    /// stands for this instance. A new holder's entries go on past it,
    /// unless Redis lost entries (a restart, a `DEL`) and the new holder
    /// went on from an older one, or from nothing.
    read: (u64, u64),
    /// After the sequence started over: the newest place delivered before,
    /// up to which the new holder may replay statuses delivered already.
    replay: Option<u64>,
    last: Last<S>,
    make: Make<S>,
    run: Option<Run>,
    ended: bool,
}

/// This instance's poller of a key.
pub(crate) struct Run {
    id: u64,
    abort: AbortHandle,
    /// Whether it runs under the lease (publishing) or locally (degraded).
    holder: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S> Inner<S> {
    fn lock(&self) -> MutexGuard<'_, State<S>> {
        lock(&self.state)
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}:lease:{key}", self.prefix)
    }

    fn stream_key(&self, key: &str) -> String {
        format!("{}:stream:{key}", self.prefix)
    }

    /// The hub's changes stream: a note of the key with every entry.
    fn changes_key(&self) -> String {
        format!("{}:changes", self.prefix)
    }
}

impl<S> State<S> {
    /// Every key is read from its cursor at the reader's next turn.
    fn sweep(&mut self) {
        let keys: Vec<String> = self.keys.keys().cloned().collect();
        self.dirty.extend(keys);
    }
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut keys = Vec::new();
        for (key, k) in state.keys.iter_mut() {
            if let Some(run) = k.run.take() {
                run.abort.abort();
            }
            keys.push(key.clone());
        }
        // The leases this instance held expire on their own within the lease
        // time; a hub dropped on purpose gives them up at once.
        let held: Vec<String> = keys.iter().map(|k| self.lease_key(k)).collect();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (conn, token) = (self.conn.clone(), self.token.clone());
            runtime.spawn(driver::give_up(conn, held, token));
        }
    }
}

impl<S> FleetHub<S>
where
    S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Joins the fleet hub `name` (its keys live under `pollkit:hub:{name}:`)
    /// with the default [`HubConfig`]. The connections are made lazily: a hub
    /// made while Redis is down works in degraded mode until Redis answers.
    ///
    /// # Errors
    /// [`Error::Redis`] when the client's configuration is unusable.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns its tasks there).
    pub async fn connect(client: &redis::Client, name: &str) -> Result<Self, Error> {
        Self::with_config(client, name, HubConfig::new()).await
    }

    /// [`connect`](Self::connect) with a configuration. Every instance of a
    /// hub must use the same lease time.
    ///
    /// # Errors
    /// [`Error::Redis`] when the client's configuration is unusable.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub async fn with_config(
        client: &redis::Client,
        name: &str,
        config: HubConfig,
    ) -> Result<Self, Error> {
        let conn = crate::conn::manager(client, config.timeout)?;
        // The reader blocks for up to `block`: its own socket, so that the
        // other commands never queue behind it.
        let reader = crate::conn::manager(client, config.block + config.timeout)?;
        let inner = Arc::new(Inner {
            conn,
            reader,
            prefix: format!("pollkit:hub:{name}"),
            token: driver::token(),
            config,
            state: Mutex::new(State {
                keys: HashMap::new(),
                degraded: false,
                reader_id: None,
                dirty: HashSet::new(),
                next_id: 0,
            }),
            wake: Arc::default(),
            wake_reader: Arc::default(),
            tasks: Mutex::default(),
            releasing: Arc::default(),
            taken: AtomicU64::new(0),
            published: AtomicU64::new(0),
            read: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        let drive = tokio::spawn(driver::drive(weak.clone(), Arc::clone(&inner.wake)));
        let read = tokio::spawn(reader::read(weak, Arc::clone(&inner.wake_reader)));
        lock(&inner.tasks).extend([drive.abort_handle(), read.abort_handle()]);
        Ok(FleetHub { inner })
    }

    /// Joins the fleet's watch of `key`. `make` builds the poller when this
    /// instance takes the key (first, over from a holder that died or left,
    /// or on its own while Redis is down); it gets the last published status
    /// and checkpoint. It may be called many times in a watch's life, and
    /// not at all on an instance that never holds the key. Watches of a key
    /// on one instance share the first watch's `make`. It runs while the
    /// hub's state is locked: it must be quick and must not watch through
    /// this hub.
    pub fn watch<P, M>(&self, key: impl Into<String>, make: M) -> FleetWatch<S>
    where
        M: Fn(Resume<S, P::Cursor>) -> P + Send + Sync + 'static,
        P: Poller<Status = S> + Checkpointed + Send + 'static,
        P::Error: fmt::Display,
    {
        let key = key.into();
        let mut state = self.inner.lock();
        // A key whose poller ended: its waiters got the end; this watch
        // starts afresh (a new key here, a new poller in the fleet).
        let fresh = state.keys.get(&key).is_none_or(|k| k.ended);
        if fresh {
            let id = state.next_id;
            state.next_id += 1;
            let make: Make<S> = Arc::new(move |last: &Last<S>| driver::erase(make(resume(last))));
            state.keys.insert(
                key.clone(),
                Key {
                    id,
                    waiters: 0,
                    feed: Arc::new(Feed::new(self.inner.config.max_len)),
                    cursor: None,
                    n: 0,
                    read: (0, 0),
                    replay: None,
                    last: Last {
                        status: None,
                        checkpoint: None,
                        n: 0,
                    },
                    make,
                    run: None,
                    ended: false,
                },
            );
        }
        let Some(entry) = state.keys.get_mut(&key) else {
            unreachable!("inserted above")
        };
        entry.waiters += 1;
        let feed = Arc::clone(&entry.feed);
        let watch = FleetWatch {
            entry: entry.id,
            // The newest status at once, then every one after it.
            seen: feed.newest().map_or(0, |n| n.saturating_sub(1)),
            pushed: WatchStream::new(feed.subscribe()),
            feed,
            done: false,
            key: Some(key),
            inner: Arc::clone(&self.inner),
        };
        drop(state);
        if fresh {
            // Load the key's latest entry and try its lease now.
            self.inner.wake.notify_one();
        }
        watch
    }

    /// This instance's counters and state.
    pub fn stats(&self) -> HubStats {
        let inner = &self.inner;
        let state = inner.lock();
        let mut stats = HubStats {
            keys: state.keys.len(),
            degraded: state.degraded,
            taken: inner.taken.load(Ordering::Relaxed),
            published: inner.published.load(Ordering::Relaxed),
            read: inner.read.load(Ordering::Relaxed),
            ..HubStats::default()
        };
        for run in state.keys.values().filter_map(|k| k.run.as_ref()) {
            if run.holder.load(Ordering::Relaxed) {
                stats.holding += 1;
            } else {
                stats.local += 1;
            }
        }
        stats
    }

    /// This instance's token: the value of the leases it holds.
    pub fn token(&self) -> &str {
        &self.inner.token
    }
}

/// The typed [`Resume`] from what an instance saw last; a checkpoint that
/// does not decode (written by another version) is left out.
fn resume<S: Clone, C: DeserializeOwned>(last: &Last<S>) -> Resume<S, C> {
    Resume {
        status: last.status.clone(),
        checkpoint: last
            .checkpoint
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
    }
}

/// One waiter's view of a key's fleet-wide watch; a [`Poller`] itself (of
/// `Result<S, pollkit::Error<RemoteError>>`). Dropping an instance's last
/// `FleetWatch` of a key stops its poller there (and gives up its lease).
#[must_use = "streams do nothing unless polled"]
pub struct FleetWatch<S> {
    key: Option<String>,
    entry: u64,
    feed: Arc<Feed<S>>,
    pushed: WatchStream<u64>,
    /// The place in the key's feed of the last status this waiter got: it
    /// gets none at or below it.
    seen: u64,
    done: bool,
    inner: Arc<Inner<S>>,
}

impl<S> fmt::Debug for FleetWatch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetWatch")
            .field("key", &self.key)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl<S> FleetWatch<S> {
    fn accept(&mut self, delivery: Delivery<S>) -> Option<Item<S>> {
        self.seen = delivery.at;
        match delivery.event {
            Event::Status(s) => Some(Ok(s)),
            Event::Error(e) => {
                self.done = true;
                Some(Err(e))
            }
            Event::End => {
                self.done = true;
                None
            }
        }
    }
}

// Nothing in a `FleetWatch` is pinned in place: the watch stream boxes its
// own future.
impl<S> Unpin for FleetWatch<S> {}

impl<S> Stream for FleetWatch<S>
where
    S: Clone + Send + 'static,
{
    type Item = Item<S>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(delivery) = this.feed.after(this.seen) {
                return Poll::Ready(this.accept(delivery));
            }
            // Nothing new: wait for the next push (one made since the look
            // above wakes this at once).
            match this.pushed.poll_next_unpin(cx) {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S> Drop for FleetWatch<S> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let removed = {
            let mut state = self.inner.lock();
            let last = match state.keys.get_mut(&key) {
                Some(entry) if entry.id == self.entry => {
                    entry.waiters = entry.waiters.saturating_sub(1);
                    entry.waiters == 0
                }
                _ => false,
            };
            if last { state.keys.remove(&key) } else { None }
        };
        let Some(entry) = removed else {
            return;
        };
        // The last waiter here left: stop the poller and give the lease up
        // at once, so that an instance that still has waiters takes over
        // within a tick rather than a lease time.
        if let Some(run) = entry.run {
            run.abort.abort();
            if run.holder.load(Ordering::Relaxed) {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(self.inner.release(vec![key]).give_up());
                }
            }
        }
    }
}
