//! [`Hub`]: many waiters, one poller per resource.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::BroadcastStream;

use crate::{Error, Poller};

/// What the hub hands to every waiter of a key.
type Item<S, E> = Result<S, Error<Arc<E>>>;

/// How many statuses a slow waiter may fall behind before it skips to the
/// newest ones (statuses describe a state, so the newest is what counts).
const CAPACITY: usize = 64;

/// Many waiters, one request: a hub keyed by resource (a job id, a key) in
/// which any number of waiters share one poller per key.
///
/// The first [`watch`](Hub::watch) of a key starts its poller (on a task of
/// the current Tokio runtime); later ones join it. Each waiter gets every
/// status from the moment it joined, the latest one at once, and can
/// [`until`](Poller::until) on its own predicate. The poller stops when the
/// last waiter of its key leaves (its [`Watch`] is dropped). A waiter that
/// falls more than 64 statuses behind skips to the newest.
///
/// The user's error is shared between waiters as an `Arc<E>`.
///
/// # Deadlines
/// The shared poller belongs to every waiter of its key, so give it no
/// `timeout` in `make` (the first caller's deadline would end the wait of
/// everyone who joins later). Give each waiter its own with
/// [`Watch::timeout`]: its watch ends with [`Error::Timeout`] at its own
/// deadline, and the poller goes on for the others.
///
/// # Locking
/// Joining and leaving take the hub's map lock briefly; publishing a status
/// takes only its own key's lock, so busy keys do not contend.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
/// use pollkit::{Hub, Poller, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let requests = Arc::new(AtomicU32::new(0));
/// let hub: Hub<String, u32, std::io::Error> = Hub::new();
/// let watch = |hub: &Hub<String, u32, std::io::Error>| {
///     let requests = requests.clone();
///     hub.watch("job-7".to_string(), move || {
///         ShortPoll::new(move || {
///             let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
///             async move { Ok(n * 25) }
///         })
///         .interval(Duration::from_secs(5))
///     })
/// };
/// // Ten callers wait for the same job: one request per interval in all.
/// let waiters: Vec<_> = (0..10).map(|_| watch(&hub).until(|p| *p == 100)).collect();
/// for done in futures::future::join_all(waiters).await {
///     assert_eq!(done.unwrap(), 100);
/// }
/// assert_eq!(requests.load(Ordering::SeqCst), 4);
/// # }
/// ```
pub struct Hub<K, S, E> {
    entries: Arc<Mutex<HashMap<K, Entry<S, E>>>>,
}

/// One key's poller, as the hub's map holds it.
struct Entry<S, E> {
    id: u64,
    shared: Arc<Shared<S, E>>,
    waiters: usize,
    task: AbortHandle,
}

/// What a key's poller publishes, under the key's own lock.
struct Shared<S, E> {
    tx: broadcast::Sender<Item<S, E>>,
    latest: Mutex<Option<Item<S, E>>>,
}

impl<K, S, E> Clone for Hub<K, S, E> {
    fn clone(&self) -> Self {
        Hub {
            entries: Arc::clone(&self.entries),
        }
    }
}

impl<K, S, E> fmt::Debug for Hub<K, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("pollers", &lock(&self.entries).len())
            .finish()
    }
}

impl<K, S, E> Default for Hub<K, S, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    S: Clone + Send + 'static,
    E: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, S, E> Hub<K, S, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    S: Clone + Send + 'static,
    E: Send + Sync + 'static,
{
    /// An empty hub. Clones share the same pollers.
    pub fn new() -> Self {
        Hub {
            entries: Arc::default(),
        }
    }

    /// Joins the watch of `key`, starting its poller with `make` if nobody
    /// watches it yet (`make` is not called otherwise).
    ///
    /// # Panics
    /// Starting a poller outside a Tokio runtime panics, as `tokio::spawn` does.
    pub fn watch<P>(&self, key: K, make: impl FnOnce() -> P) -> Watch<K, S, E>
    where
        P: Poller<Status = S, Error = E> + Send + 'static,
    {
        if let Some(watch) = self.join(&key) {
            return watch;
        }
        // `make` runs without the hub's lock: it may be slow, or watch
        // another key itself.
        let poller = make();
        let mut entries = lock(&self.entries);
        let entry = match entries.entry(key.clone()) {
            // Another caller started this key meanwhile: join theirs.
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.start(key.clone(), poller))
            }
        };
        Self::subscribe(key, entry, &self.entries)
    }

    /// Joins the running poller of `key`, if there is one.
    fn join(&self, key: &K) -> Option<Watch<K, S, E>> {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(key)?;
        Some(Self::subscribe(key.clone(), entry, &self.entries))
    }

    fn subscribe(
        key: K,
        entry: &mut Entry<S, E>,
        entries: &Arc<Mutex<HashMap<K, Entry<S, E>>>>,
    ) -> Watch<K, S, E> {
        entry.waiters += 1;
        // Subscribe before reading the latest, under the key's lock, so no
        // status is missed or seen twice.
        let latest = lock(&entry.shared.latest);
        let rx = BroadcastStream::new(entry.shared.tx.subscribe());
        Watch {
            key: Some(key),
            id: entry.id,
            latest: latest.clone(),
            rx,
            entries: Arc::clone(entries),
            deadline: None,
            ended: false,
        }
    }

    /// How many pollers are running (one per watched key).
    pub fn pollers(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Spawns the poller of `key`; it publishes under the hub's lock, so a
    /// waiter that joins sees the latest status and every one after it.
    fn start<P>(&self, key: K, poller: P) -> Entry<S, E>
    where
        P: Poller<Status = S, Error = E> + Send + 'static,
    {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        let (tx, _) = broadcast::channel(CAPACITY);
        let shared = Arc::new(Shared {
            tx,
            latest: Mutex::new(None),
        });
        let publish = Arc::clone(&shared);
        let entries = Arc::downgrade(&self.entries);
        let task = tokio::spawn(async move {
            // Removes this key's entry however the task ends, a panic in the
            // user's fetch included, so its waiters see the end and the next
            // watch of the key starts afresh instead of joining a dead one.
            let _cleanup = Cleanup {
                entries: entries.clone(),
                key: Some(key.clone()),
                id,
            };
            let mut poller = std::pin::pin!(poller);
            while let Some(item) = poller.next().await {
                let item = item.map_err(|e| e.map(Arc::new));
                // Only this key's lock: other keys publish undisturbed.
                let mut latest = lock(&publish.latest);
                *latest = Some(item.clone());
                // No receiver is fine: the latest is kept for the next waiter.
                let _ = publish.tx.send(item);
            }
        });
        Entry {
            id,
            shared,
            waiters: 0,
            task: task.abort_handle(),
        }
    }
}

/// Removes a poller's entry when its task ends (if it is still the same entry).
struct Cleanup<K: Hash + Eq, S, E> {
    entries: std::sync::Weak<Mutex<HashMap<K, Entry<S, E>>>>,
    key: Option<K>,
    id: u64,
}

impl<K: Hash + Eq, S, E> Drop for Cleanup<K, S, E> {
    fn drop(&mut self) {
        let (Some(entries), Some(key)) = (self.entries.upgrade(), self.key.take()) else {
            return;
        };
        let mut entries = lock(&entries);
        if entries.get(&key).is_some_and(|e| e.id == self.id) {
            entries.remove(&key);
        }
    }
}

/// One waiter's view of a shared poller; a [`Poller`] itself. Dropping the
/// last `Watch` of a key stops its poller.
#[must_use = "streams do nothing unless polled"]
pub struct Watch<K: Hash + Eq, S, E> {
    key: Option<K>,
    id: u64,
    latest: Option<Item<S, E>>,
    rx: BroadcastStream<Item<S, E>>,
    entries: Arc<Mutex<HashMap<K, Entry<S, E>>>>,
    /// This waiter's own deadline: when it started and its timer.
    deadline: Option<(Instant, Pin<Box<Sleep>>)>,
    ended: bool,
}

impl<K: Hash + Eq, S, E> Watch<K, S, E> {
    /// This waiter's own deadline, counted from now: at it, this watch ends
    /// with [`Error::Timeout`] (its `attempts` is 0: the requests are the
    /// shared poller's), and the shared poller goes on for the other
    /// waiters. Default: none.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Error, Hub, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let hub: Hub<u8, &str, std::io::Error> = Hub::new();
    /// let make = || ShortPoll::new(|| async { Ok("running") });
    /// let patient = hub.watch(7, make).until(|s| *s == "done");
    /// let hasty = hub.watch(7, make).timeout(Duration::from_secs(10)).until(|s| *s == "done");
    /// assert!(matches!(hasty.await, Err(Error::Timeout { .. })));
    /// assert_eq!(hub.pollers(), 1, "still polling for the patient waiter");
    /// drop(patient);
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        let now = Instant::now();
        let at = crate::schedule::later(now, timeout);
        self.deadline = Some((now, Box::pin(tokio::time::sleep_until(at))));
        self
    }
}

impl<K: Hash + Eq + fmt::Debug, S, E> fmt::Debug for Watch<K, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

// Nothing in a `Watch` is pinned in place: the receiver boxes its own future.
impl<K: Hash + Eq, S, E> Unpin for Watch<K, S, E> {}

impl<K, S, E> Stream for Watch<K, S, E>
where
    K: Hash + Eq,
    S: Clone + Send + 'static,
    E: Send + Sync + 'static,
{
    type Item = Item<S, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(latest) = this.latest.take() {
            return Poll::Ready(Some(latest));
        }
        if let Some((since, timer)) = this.deadline.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                this.ended = true;
                return Poll::Ready(Some(Err(Error::Timeout {
                    elapsed: since.elapsed(),
                    attempts: 0,
                    last_error: None,
                })));
            }
        }
        loop {
            match this.rx.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(item))) => return Poll::Ready(Some(item)),
                // Fell behind: skip to the newest statuses.
                Poll::Ready(Some(Err(_lagged))) => continue,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<K: Hash + Eq, S, E> Drop for Watch<K, S, E> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let removed = {
            let mut entries = lock(&self.entries);
            let last = match entries.get_mut(&key) {
                Some(entry) if entry.id == self.id => {
                    entry.waiters = entry.waiters.saturating_sub(1);
                    entry.waiters == 0
                }
                _ => false,
            };
            if last { entries.remove(&key) } else { None }
        };
        // Stops the poller and drops its request in flight (outside the lock:
        // the task's own cleanup takes it too).
        if let Some(entry) = removed {
            entry.task.abort();
        }
    }
}
