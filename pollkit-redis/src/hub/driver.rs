//! The tasks behind a [`FleetHub`](super::FleetHub): the driver (load keys,
//! renew and take leases, notice Redis trouble) and one task per poller
//! this instance runs; the reader is in `reader.rs`.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use pollkit::Poller;
use redis::Script;
use redis::aio::ConnectionManager;
use redis::streams::StreamRangeReply;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::checkpointed::Checkpointed;
use super::wire::{self, EntryId, Event, WireError};
use super::{Inner, Key, Last, Run, State, lock};
use crate::{Error, RemoteError};

static LEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/lease.lua")));
static PUBLISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/publish.lua")));
static UNLEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../scripts/unlease.lua")));

/// A token that tells this instance's leases from every other's: the
/// process, the time it was made and a counter.
pub(crate) fn token() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A poller, erased: its next item (with the error as it crosses
/// processes) and its checkpoint as JSON.
pub(crate) trait Running<S>: Send {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<S, WireError>>>;
    fn checkpoint(&self) -> Option<String>;
}

struct Erased<P>(Pin<Box<P>>);

impl<P> Running<P::Status> for Erased<P>
where
    P: Poller + Checkpointed + Send,
    P::Error: fmt::Display,
{
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<P::Status, WireError>>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(|e| WireError::from_error(&e))))
    }

    fn checkpoint(&self) -> Option<String> {
        serde_json::to_string(&self.0.as_ref().get_ref().checkpoint()).ok()
    }
}

pub(crate) fn erase<P>(poller: P) -> Box<dyn Running<P::Status>>
where
    P: Poller + Checkpointed + Send + 'static,
    P::Error: fmt::Display,
{
    Box::new(Erased(Box::pin(poller)))
}

/// The most leases one script call renews or takes.
const LEASES_PER_CALL: usize = 100;

/// The most entries one read takes per key: with `max_status`, what a read
/// may carry is bounded.
pub(super) const READ_COUNT: usize = 100;

/// A duration in whole milliseconds, for a script.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Runs a Redis call with the hub's timeout.
pub(super) async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout(timeout)),
    }
}

/// Gives up leases (compare and delete), best effort.
pub(crate) async fn give_up(mut conn: ConnectionManager, leases: Vec<String>, token: String) {
    for lease in leases {
        let mut call = UNLEASE.key(&lease);
        call.arg(&token);
        let call = call.invoke_async::<i64>(&mut conn);
        if tokio::time::timeout(Duration::from_secs(1), call)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Per key, how many of its leases' give-ups are under way.
pub(crate) type Releasing = HashMap<String, usize>;

/// Leases this instance is giving up (a compare-and-delete with its token):
/// until that is done, it does not take their keys again, or the give-up
/// would delete the lease it took for a new watch of the key (made as soon
/// as the old watch's waiters got its end), and the new poller would stop
/// at its first publish. Dropped, it lets the keys be taken again.
pub(crate) struct Release {
    releasing: Arc<Mutex<Releasing>>,
    wake: Arc<Notify>,
    conn: ConnectionManager,
    token: String,
    keys: Vec<String>,
    leases: Vec<String>,
}

impl Release {
    /// Gives the leases up, best effort, and lets the keys be taken again.
    pub(crate) async fn give_up(mut self) {
        let leases = std::mem::take(&mut self.leases);
        give_up(self.conn.clone(), leases, self.token.clone()).await;
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut releasing = lock(&self.releasing);
        for key in &self.keys {
            if let Some(count) = releasing.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    releasing.remove(key);
                }
            }
        }
        drop(releasing);
        self.wake.notify_one();
    }
}

impl<S> Inner<S> {
    /// Marks `keys` as being given up (see [`Release`]); call it before the
    /// waiters can see why (the end published).
    pub(crate) fn release(&self, keys: Vec<String>) -> Release {
        let mut releasing = lock(&self.releasing);
        for key in &keys {
            *releasing.entry(key.clone()).or_insert(0) += 1;
        }
        drop(releasing);
        Release {
            releasing: Arc::clone(&self.releasing),
            wake: Arc::clone(&self.wake),
            conn: self.conn.clone(),
            token: self.token.clone(),
            leases: keys.iter().map(|k| self.lease_key(k)).collect(),
            keys,
        }
    }
}

/// The driver: a tick every `lease / 5`, and at once when a key is added.
pub(crate) async fn drive<S>(weak: Weak<Inner<S>>, wake: Arc<Notify>)
where
    S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    loop {
        let notified = wake.notified();
        let tick = {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            inner.tick().await;
            inner.config.tick()
        };
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(tick) => {}
        }
    }
}

/// Hands a stream entry to a key's waiters on this instance, if `watch` is
/// still the key's watch here.
pub(super) fn deliver<S: Clone + Serialize>(
    state: &mut State<S>,
    key: &str,
    watch: u64,
    entry: wire::Entry<S>,
) {
    let Some(k) = state.keys.get_mut(key).filter(|k| k.id == watch) else {
        return;
    };
    deliver_entry(k, entry);
}

/// Hands a stream entry to a key's waiters, once per stream id; an entry
/// written without a place in the sequence follows the ones before it, and
/// one written without a term is of the term before it.
fn deliver_entry<S: Clone + Serialize>(k: &mut Key<S>, entry: wire::Entry<S>) {
    let n = entry.n.unwrap_or(k.n + 1);
    let term = entry.term.unwrap_or(k.read.0);
    deliver_to(k, Some((entry.id, term)), n, entry.event, entry.checkpoint);
}

/// Moves a key's cursor past an entry that could not be decoded (if
/// `watch` is still the key's watch here).
pub(super) fn skip<S>(state: &mut State<S>, key: &str, watch: u64, id: &str) {
    if let Some(k) = state.keys.get_mut(key).filter(|k| k.id == watch) {
        skip_entry(k, id);
    }
}

fn skip_entry<S>(k: &mut Key<S>, id: &str) {
    let Ok(id) = id.parse::<EntryId>() else {
        return;
    };
    if k.cursor.is_none_or(|cursor| id > cursor) {
        k.cursor = Some(id);
    }
}

/// Hands an event to a key's waiters: `read` is its stream entry's id and
/// term (`None` for a local poller's event), `n` its place in the sequence.
/// Nothing at or below the newest place delivered goes out: a status
/// published by one poller and handed over locally by another (around a
/// Redis outage) comes once, and never after a newer one.
///
/// Except when the sequence started over (see [`starts_over`]): its places
/// are the new holder's, compared among themselves from then on. Up to the
/// newest place delivered before, a status that is the one delivered at its
/// place, or the last one delivered, is a replay (a poller that resumed
/// from an older checkpoint, or found no change since): not delivered. The
/// first one that is news ends the replay.
fn deliver_to<S: Clone + Serialize>(
    k: &mut Key<S>,
    read: Option<(EntryId, u64)>,
    n: u64,
    event: Event<S>,
    checkpoint: Option<String>,
) {
    if let Some((id, term)) = read {
        if k.cursor.is_some_and(|cursor| id <= cursor) {
            return;
        }
        k.cursor = Some(id);
        if starts_over(k.read, term, n) && !k.ended {
            // Up to the newest place delivered, also when an earlier replay
            // is not over (Redis lost entries again meanwhile): `k.n` is
            // then the replay's place, below the newest delivered.
            k.replay = Some(k.replay.map_or(k.n, |newest| newest.max(k.n)));
            k.n = n.saturating_sub(1);
        }
        k.read = (term, n);
    }
    if k.ended || n <= k.n {
        return;
    }
    k.n = n;
    let replayed = match (&event, k.replay) {
        (Event::Status(s), Some(newest)) if n <= newest => {
            k.feed.delivered(n, |old| same_json(s, old))
                || k.last
                    .status
                    .as_ref()
                    .is_some_and(|last| same_json(s, last))
        }
        _ => false,
    };
    if !replayed {
        k.replay = None;
    }
    match &event {
        Event::Status(s) => {
            k.last = Last {
                status: Some(s.clone()),
                checkpoint: checkpoint.or(k.last.checkpoint.take()),
                n,
            };
        }
        Event::Error(_) | Event::End => k.ended = true,
    }
    if !replayed {
        k.feed.push(n, event);
    }
}

/// Whether two statuses are the same as JSON (as the stream holds them).
fn same_json<S: Serialize>(a: &S, b: &S) -> bool {
    match (serde_json::to_string(a), serde_json::to_string(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether a stream entry of `term` at place `n` starts the key's sequence
/// over, after the last entry read at `read` (term, place). Entries are read
/// in stream order, which is the holders' order (publishing is fenced by
/// the lease), so a new term is a new holder. A new holder goes on from the
/// stream's latest status: past every entry any instance read, unless Redis
/// lost entries (a restart from a snapshot or empty, a `DEL`) and it went
/// on from an older one, or from nothing. Then its places are at or below
/// the last one read, and they are news.
///
/// A new holder whose places are above the last entry read goes on from
/// it: its places below the newest delivered here came here already, from
/// this instance's own poller while Redis was away.
fn starts_over(read: (u64, u64), term: u64, n: u64) -> bool {
    term != read.0 && n <= read.1
}

/// The end of an earlier poller, found as a key's latest entry when this
/// instance loads it: history, not news. The waiters joined after it, so
/// it is not delivered; a new poller starts afresh after its place.
fn after_end<S>(k: &mut Key<S>, id: EntryId, term: u64, n: u64) {
    k.cursor = Some(id);
    k.n = n;
    k.read = (term, n);
    k.replay = None;
    k.last = Last {
        status: None,
        checkpoint: None,
        n,
    };
}

/// How many of a stream's latest entries are looked at for the newest one
/// this crate can read (the others are skipped, never delivered).
const LOOKBACK: usize = 16;

/// The latest entries of a stream, newest first (`XREVRANGE + - COUNT`).
fn latest_cmd(stream: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(LOOKBACK);
    cmd
}

/// The entries of a stream after `cursor`, oldest first, up to `count`
/// (`XRANGE stream (cursor + COUNT count`).
pub(super) fn after_cmd(stream: &str, cursor: EntryId, count: usize) -> redis::Cmd {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(stream)
        .arg(format!("({cursor}"))
        .arg("+")
        .arg("COUNT")
        .arg(count);
    cmd
}

/// A stream's newest entry id (where reading goes on), and the newest entry
/// this crate can read among the latest (`reply` newest first).
fn newest<S: DeserializeOwned>(
    reply: &StreamRangeReply,
) -> (Option<EntryId>, Option<wire::Entry<S>>) {
    let id = reply.ids.first().and_then(|e| e.id.parse().ok());
    (id, reply.ids.iter().find_map(wire::decode))
}

impl<S> Inner<S>
where
    S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// One tick: load new keys, renew and take leases, start and stop
    /// pollers, and notice Redis trouble (and its end).
    pub(crate) async fn tick(self: &Arc<Self>) {
        let ok = self.load().await.is_ok() && self.leases().await.is_ok();
        if !ok {
            self.degrade();
        }
    }

    /// Loads the latest entry of every key not loaded yet.
    async fn load(self: &Arc<Self>) -> Result<(), Error> {
        let keys: Vec<String> = {
            let state = self.lock();
            state
                .keys
                .iter()
                .filter(|(_, k)| k.cursor.is_none())
                .map(|(key, _)| key.clone())
                .collect()
        };
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.add_command(latest_cmd(&self.stream_key(key)));
        }
        let mut conn = self.conn.clone();
        let replies: Vec<StreamRangeReply> =
            timed(self.config.timeout, pipe.query_async(&mut conn)).await?;
        {
            let mut state = self.lock();
            for (key, reply) in keys.iter().zip(replies) {
                let Some(k) = state.keys.get_mut(key) else {
                    continue;
                };
                if k.cursor.is_some() {
                    continue;
                }
                // A late joiner gets the newest status it can read, and
                // reading goes on after the newest entry, whatever it is.
                let (newest_id, entry) = newest::<S>(&reply);
                match entry {
                    Some(entry) if entry.event.is_final() => {
                        after_end(k, entry.id, entry.term.unwrap_or(0), entry.n.unwrap_or(0));
                    }
                    Some(entry) => deliver_entry(k, entry),
                    None => {}
                }
                k.cursor = k.cursor.max(newest_id).or(Some(EntryId::default()));
                // Read once from there: a note of a change made meanwhile
                // may have come before the key was loaded.
                state.dirty.insert(key.clone());
            }
        }
        self.unblock_reader();
        Ok(())
    }

    /// Interrupts the reader's blocking read, so that it reads new keys too.
    fn unblock_reader(self: &Arc<Self>) {
        self.wake_reader.notify_one();
        let Some(id) = self.lock().reader_id else {
            return;
        };
        let mut conn = self.conn.clone();
        let timeout = self.config.timeout;
        tokio::spawn(async move {
            let mut unblock = redis::cmd("CLIENT");
            unblock.arg("UNBLOCK").arg(id);
            let _ = timed(timeout, unblock.query_async::<i64>(&mut conn)).await;
        });
    }

    /// Renews held leases and takes wanted ones, in one script call.
    async fn leases(self: &Arc<Self>) -> Result<(), Error> {
        // Held: keys polled under the lease. Wanted: keys with waiters here
        // and no holder here (a local poller included).
        let (held, wanted) = {
            let state = self.lock();
            let releasing = lock(&self.releasing);
            let mut held = Vec::new();
            let mut wanted = Vec::new();
            for (key, k) in &state.keys {
                if k.ended || k.cursor.is_none() {
                    continue;
                }
                match &k.run {
                    Some(run) if run.holder.load(Ordering::Relaxed) => held.push(key.clone()),
                    _ if releasing.contains_key(key) => {}
                    _ => wanted.push(key.clone()),
                }
            }
            (held, wanted)
        };
        if held.is_empty() && wanted.is_empty() {
            return Ok(());
        }
        // The streams' expiry is refreshed twice per retention time.
        let retain = self.config.retain.max(self.config.lease);
        let every = (retain.as_millis() / 2 / self.config.tick().as_millis().max(1)).max(1);
        let ticks = self.ticks.fetch_add(1, Ordering::Relaxed);
        let refresh = if u128::from(ticks) % every == 0 {
            millis(retain)
        } else {
            0
        };
        // A few hundred keys per call, so that Redis serves other clients
        // between the calls (a budget's reservations) at any number of keys.
        let keys: Vec<(&String, bool)> = held
            .iter()
            .map(|k| (k, true))
            .chain(wanted.iter().map(|k| (k, false)))
            .collect();
        let mut ours: Vec<i64> = Vec::with_capacity(keys.len());
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(LEASES_PER_CALL) {
            let mut call = LEASE.prepare_invoke();
            for (key, _) in chunk {
                call.key(self.lease_key(key));
            }
            for (key, _) in chunk {
                call.key(self.stream_key(key));
            }
            call.arg(&self.token)
                .arg(millis(self.config.lease))
                .arg(chunk.iter().filter(|(_, held)| *held).count())
                .arg(refresh);
            let answer: Vec<i64> = timed(self.config.timeout, call.invoke_async(&mut conn)).await?;
            ours.extend(answer);
        }
        self.lock().degraded = false;

        let mut taken = Vec::new();
        {
            let mut state = self.lock();
            for (key, ours) in held.iter().chain(&wanted).zip(&ours) {
                let Some(k) = state.keys.get_mut(key) else {
                    continue;
                };
                let holder = k
                    .run
                    .as_ref()
                    .is_some_and(|r| r.holder.load(Ordering::Relaxed));
                match (*ours == 1, &k.run) {
                    // Lost (expired while we stalled) or held by another
                    // instance: stop our poller, read the stream instead.
                    (false, Some(run)) => {
                        run.abort.abort();
                        k.run = None;
                    }
                    (false, None) => {}
                    // Ours, and our local poller (degraded mode) was
                    // running: a holder's poller starts from the stream's
                    // latest entry, so that the waiters of every instance
                    // get what this one saw only locally.
                    (true, Some(run)) if !holder => {
                        run.abort.abort();
                        k.run = None;
                        taken.push((key.clone(), k.id));
                    }
                    (true, Some(_)) => {}
                    (true, None) => taken.push((key.clone(), k.id)),
                }
            }
        }
        if !taken.is_empty() {
            self.take(taken).await?;
        }
        Ok(())
    }

    /// Starts the pollers of keys just taken, from the latest entry of their
    /// streams (the previous holder may have published since we read).
    async fn take(self: &Arc<Self>, keys: Vec<(String, u64)>) -> Result<(), Error> {
        // Per key: what this instance has not read yet (delivered first, so
        // that the holder's own entries never jump the reader's cursor past
        // them), and the latest entries (where the history goes on from).
        let mut pipe = redis::pipe();
        {
            let state = self.lock();
            for (key, _) in &keys {
                let stream = self.stream_key(key);
                let cursor = state
                    .keys
                    .get(key)
                    .and_then(|k| k.cursor)
                    .unwrap_or_default();
                pipe.add_command(after_cmd(&stream, cursor, self.config.max_len));
                pipe.add_command(latest_cmd(&stream));
            }
        }
        let mut conn = self.conn.clone();
        let replies: Vec<StreamRangeReply> =
            timed(self.config.timeout, pipe.query_async(&mut conn)).await?;
        // The new holders' term: the Redis server's clock, one clock for the
        // whole fleet that goes on when Redis loses data (a counter in Redis
        // would go back with it). Above the stream's latest entry's term, so
        // that a term is never taken twice for a key.
        let (secs, micros): (u64, u64) = timed(
            self.config.timeout,
            redis::cmd("TIME").query_async(&mut conn),
        )
        .await?;
        let now = secs.saturating_mul(1_000_000).saturating_add(micros);
        let mut ended = Vec::new();
        {
            let mut state = self.lock();
            for ((key, watch), replies) in keys.iter().zip(replies.chunks(2)) {
                let Some(k) = state.keys.get_mut(key).filter(|k| k.id == *watch) else {
                    // Its waiters left meanwhile (new ones make another
                    // watch, which takes the key once this give-up is done).
                    ended.push(key.clone());
                    continue;
                };
                let [unread, latest] = replies else {
                    continue;
                };
                for raw in &unread.ids {
                    match wire::decode::<S>(raw) {
                        Some(entry) => deliver_entry(k, entry),
                        None => skip_entry(k, &raw.id),
                    }
                }
                // The fleet's history goes on from the stream's latest
                // status, even when this instance saw newer ones on its own
                // (those come again, and its waiters skip them).
                let mut from = k.last.clone();
                let mut term = now;
                if let (_, Some(entry)) = newest::<S>(latest) {
                    term = term.max(entry.term.unwrap_or(0).saturating_add(1));
                    if let (Event::Status(status), Some(n)) = (entry.event, entry.n) {
                        from = Last {
                            status: Some(status),
                            checkpoint: entry.checkpoint,
                            n,
                        };
                    }
                }
                if k.ended || k.run.is_some() {
                    ended.push(key.clone());
                    continue;
                }
                self.taken.fetch_add(1, Ordering::Relaxed);
                self.start(key, k, from, Some(term));
            }
        }
        if !ended.is_empty() {
            tokio::spawn(self.release(ended).give_up());
        }
        Ok(())
    }

    /// Starts this instance's poller of `key`, under the lease (with the
    /// holder's `term`) or on its own (degraded mode: `None`).
    fn start(self: &Arc<Self>, key: &str, k: &mut Key<S>, last: Last<S>, term: Option<u64>) {
        let skip = last
            .status
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok());
        // `make` is the user's code: it runs under the state lock, so it
        // must not watch through this hub (documented on `watch`).
        let poller = (k.make)(&last);
        let holder = Arc::new(AtomicBool::new(term.is_some()));
        let task = tokio::spawn(run(
            Arc::downgrade(self),
            key.to_owned(),
            Place {
                entry: k.id,
                term: term.unwrap_or(0),
                n: last.n,
            },
            poller,
            Arc::clone(&holder),
            skip,
        ));
        k.run = Some(Run {
            id: k.id,
            abort: task.abort_handle(),
            holder,
        });
    }

    /// Redis does not answer: every key with waiters here gets a local
    /// poller, and holders stop publishing.
    fn degrade(self: &Arc<Self>) {
        let mut state = self.lock();
        state.degraded = true;
        let keys: Vec<String> = state
            .keys
            .iter()
            .filter(|(_, k)| !k.ended && k.run.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            if let Some(k) = state.keys.get_mut(&key) {
                let last = k.last.clone();
                self.start(&key, k, last, None);
            }
        }
    }

    /// Publishes one event under the lease: its entry id, or `None` when the
    /// lease is no longer ours.
    async fn publish(
        &self,
        key: &str,
        (term, n): (u64, u64),
        event: &Event<S>,
        status_json: Option<&str>,
        checkpoint: Option<&str>,
    ) -> Result<Option<EntryId>, Error> {
        let mut call = PUBLISH.key(self.lease_key(key));
        call.key(self.stream_key(key))
            .key(self.changes_key())
            .arg(&self.token)
            .arg(self.config.max_len)
            .arg(millis(self.config.retain.max(self.config.lease)))
            .arg(key);
        match event {
            Event::Status(_) => {
                call.arg(wire::STATUS).arg(status_json.unwrap_or("null"));
            }
            Event::Error(e) => {
                let e = serde_json::to_string(&WireError::from_error(e))?;
                call.arg(wire::ERROR).arg(e);
            }
            Event::End => {
                call.arg(wire::END).arg("1");
            }
        }
        if let Some(checkpoint) = checkpoint {
            call.arg(wire::CHECKPOINT).arg(checkpoint);
        }
        call.arg(wire::SEQ).arg(n).arg(wire::TERM).arg(term);
        let mut conn = self.conn.clone();
        let id: Option<String> = timed(self.config.timeout, call.invoke_async(&mut conn)).await?;
        match id {
            None => Ok(None),
            Some(id) => id
                .parse()
                .map(Some)
                .map_err(|()| Error::Reply(format!("not a stream id: {id}"))),
        }
    }
}

/// Where a poller publishes: its key's entry here, its holder's term (0
/// for a local poller), and the place in the sequence it goes on from.
struct Place {
    entry: u64,
    term: u64,
    n: u64,
}

/// One poller of this instance: polls, publishes under the lease (or hands
/// statuses over directly in degraded mode), and ends with the poller.
async fn run<S>(
    weak: Weak<Inner<S>>,
    key: String,
    place: Place,
    mut poller: Box<dyn Running<S>>,
    holder: Arc<AtomicBool>,
    mut skip: Option<String>,
) where
    S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let Place { entry, term, mut n } = place;
    loop {
        let item = std::future::poll_fn(|cx| poller.poll_item(cx)).await;
        let checkpoint = poller.checkpoint();
        let event = match item {
            Some(Ok(status)) => Event::Status(status),
            Some(Err(e)) => Event::Error(e.into_error()),
            None => Event::End,
        };
        let mut status_json = match &event {
            Event::Status(s) => serde_json::to_string(s).ok(),
            _ => None,
        };
        let max = weak
            .upgrade()
            .map_or(usize::MAX, |inner| inner.config.max_status);
        let event = match status_json.as_ref().map(String::len) {
            // Too large to share: the key ends with an error that says so.
            Some(len) if len > max => {
                status_json = None;
                Event::Error(pollkit::Error::Failed(RemoteError::new(format!(
                    "a status of {len} bytes is over the hub's max_status of {max} bytes"
                ))))
            }
            _ => event,
        };
        // A new holder's first status repeats the last one published (a
        // short poll resumes by asking again): not news, not published.
        if let Some(skip) = skip.take() {
            if status_json.as_deref() == Some(skip.as_str()) {
                continue;
            }
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        n += 1;
        let done = event.is_final();
        // The holder gives the lease up at the end: marked before the end
        // is published (the reader may hand it to the waiters before the
        // publish returns here).
        let release =
            (done && holder.load(Ordering::Relaxed)).then(|| inner.release(vec![key.clone()]));
        let mut id = None;
        if holder.load(Ordering::Relaxed) {
            let published = inner
                .publish(
                    &key,
                    (term, n),
                    &event,
                    status_json.as_deref(),
                    checkpoint.as_deref(),
                )
                .await;
            match published {
                Ok(Some(entry_id)) => {
                    inner.published.fetch_add(1, Ordering::Relaxed);
                    id = Some(entry_id);
                }
                Ok(None) => {
                    // The lease went to another instance: it resumes from
                    // our last published checkpoint, so this status is not
                    // lost; stop here.
                    let mut state = inner.lock();
                    if let Some(k) = state.keys.get_mut(&key) {
                        if k.run.as_ref().is_some_and(|r| r.id == entry) {
                            k.run = None;
                        }
                    }
                    return;
                }
                Err(_) => {
                    // Redis trouble: go on locally; the next tick degrades
                    // the other keys, and takes the lease back later.
                    holder.store(false, Ordering::Relaxed);
                    inner.lock().degraded = true;
                }
            }
        }
        {
            let mut state = inner.lock();
            if let Some(k) = state.keys.get_mut(&key).filter(|k| k.id == entry) {
                deliver_to(k, id.map(|id| (id, term)), n, event, checkpoint);
                if done {
                    k.run = None;
                }
            }
        }
        if done {
            drop(inner);
            if let Some(release) = release {
                release.give_up().await;
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::feed::Feed;
    use super::*;

    /// A key with nothing delivered; it never starts a poller.
    fn key() -> Key<u64> {
        Key {
            id: 0,
            waiters: 1,
            feed: Arc::new(Feed::new(100)),
            cursor: None,
            n: 0,
            read: (0, 0),
            replay: None,
            last: Last {
                status: None,
                checkpoint: None,
                n: 0,
            },
            make: Arc::new(|_| unreachable!("no poller in this test")),
            run: None,
            ended: false,
        }
    }

    /// Reads stream entry `ms` of `term` at place `n`, status `status`.
    fn read(k: &mut Key<u64>, ms: u64, term: u64, n: u64, status: u64) {
        let id = format!("{ms}-0").parse().unwrap();
        deliver_to(k, Some((id, term)), n, Event::Status(status), None);
    }

    /// What the key's waiters got, in order.
    fn got(k: &Key<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(d) = k.feed.after(at) {
            at = d.at;
            if let Event::Status(s) = d.event {
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn replays_after_two_losses_in_a_row_are_skipped_and_news_delivered() {
        let mut k = key();
        // Term 1 publishes places 1..=6 (statuses 11..=16).
        for n in 1..=6 {
            read(&mut k, n, 1, n, 10 + n);
        }
        // Redis comes back from a snapshot at place 2: term 2 replays 3, 4.
        read(&mut k, 10, 2, 3, 13);
        read(&mut k, 11, 2, 4, 14);
        // Again, from a snapshot at place 3, before term 2 got past 6:
        // term 3 replays 4, 5 and 6 (not news: they came before term 2),
        // then has news.
        for n in 4..=8 {
            read(&mut k, 20 + n, 3, n, 10 + n);
        }
        assert_eq!(got(&k), [11, 12, 13, 14, 15, 16, 17, 18]);
    }

    #[test]
    fn a_new_sequence_from_nothing_is_news_from_its_first_change() {
        let mut k = key();
        for n in 1..=5 {
            read(&mut k, n, 1, n, 10 + n);
        }
        // The stream was lost; a new holder starts afresh at place 1 with
        // the state it finds (15: no news), then 16.
        read(&mut k, 10, 2, 1, 15);
        read(&mut k, 11, 2, 2, 16);
        // A stale read of an entry already read changes nothing.
        read(&mut k, 5, 1, 5, 15);
        assert_eq!(got(&k), [11, 12, 13, 14, 15, 16]);
    }

    #[test]
    fn a_sequence_starts_over_only_at_a_new_term_that_does_not_go_past_the_last_read() {
        // Term 7 read up to place 5.
        let read = (7, 5);
        // The same holder goes on (or its entries come again): not over.
        assert!(!starts_over(read, 7, 6));
        assert!(!starts_over(read, 7, 5));
        // A new holder that went on from the last entry read, or from a
        // later one: not over (places it shares with a local poller here
        // came already).
        assert!(!starts_over(read, 9, 6));
        assert!(!starts_over(read, 9, 12));
        // A new holder after Redis lost the stream (from nothing) or came
        // back from an older snapshot (from place 2): over.
        assert!(starts_over(read, 9, 1));
        assert!(starts_over(read, 9, 3));
        assert!(starts_over(read, 9, 5));
        // Nothing read yet: nothing to start over from.
        assert!(!starts_over((0, 0), 9, 1));
    }
}
