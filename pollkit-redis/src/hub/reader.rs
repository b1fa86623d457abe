//! The reader behind a [`FleetHub`](super::FleetHub): one blocking `XREAD`
//! of the hub's changes stream, then the keys that changed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::streams::{StreamRangeReply, StreamReadReply};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use super::Inner;
use super::driver::{READ_COUNT, after_cmd, deliver, millis, skip, timed};
use super::wire::{self, EntryId};
use crate::Error;

/// The reader. The holder of a key publishes, with each entry, a note of
/// the key in the hub's changes stream; the reader blocks on that one
/// stream (`XREAD BLOCK`) and reads only the keys it has waiters for whose
/// notes came (`XRANGE` from each key's cursor, pipelined). So a change
/// costs Redis the same whatever the number of keys. Keys just loaded are
/// read once too (a note may have come before they were), and every key
/// now and then and after any trouble (a note may have been missed).
pub(crate) async fn read<S>(weak: Weak<Inner<S>>, wake: Arc<Notify>)
where
    S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    // Where this instance is in the changes stream; `None` at the start and
    // after trouble: read every key, then go on from the newest note.
    let mut notes: Option<EntryId> = None;
    let mut swept = tokio::time::Instant::now();
    loop {
        let notified = wake.notified();
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let (block, timeout) = (inner.config.block, inner.config.timeout);
        let sweep_every = block * SWEEP_BLOCKS;
        if notes.is_none() || swept.elapsed() > sweep_every {
            match newest_note(&inner).await {
                Ok(newest) => {
                    notes = notes.max(Some(newest));
                    inner.lock().sweep();
                    swept = tokio::time::Instant::now();
                }
                Err(_) => {
                    drop(inner);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        // The keys to read now (which watch of them), from their cursors.
        let dirty: Vec<(String, u64, EntryId)> = {
            let mut state = inner.lock();
            let dirty = std::mem::take(&mut state.dirty);
            dirty
                .into_iter()
                .filter_map(|key| {
                    let k = state.keys.get(&key).filter(|k| !k.ended)?;
                    Some((key, k.id, k.cursor?))
                })
                .collect()
        };
        if !dirty.is_empty() {
            if read_keys(&inner, &dirty).await.is_err() {
                notes = None;
                drop(inner);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        }
        if !inner
            .lock()
            .keys
            .values()
            .any(|k| k.cursor.is_some() && !k.ended)
        {
            drop(inner);
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(block) => {}
            }
            continue;
        }
        // Block for notes; the driver interrupts this (`CLIENT UNBLOCK`)
        // when it loads keys, so that they are read at once.
        let mut reader = inner.reader.clone();
        let id = timed(
            timeout,
            redis::cmd("CLIENT")
                .arg("ID")
                .query_async::<i64>(&mut reader),
        )
        .await;
        let Ok(id) = id else {
            // Redis trouble: the driver notices it too and degrades.
            notes = None;
            drop(inner);
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        inner.lock().reader_id = Some(id);
        let changes = inner.changes_key();
        let from = notes.unwrap_or_default();
        drop(inner);
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(NOTES_COUNT)
            .arg("BLOCK")
            .arg(millis(block))
            .arg("STREAMS")
            .arg(&changes)
            .arg(from.to_string());
        let sent = tokio::time::Instant::now();
        let reply = timed(
            block + timeout,
            cmd.query_async::<Option<StreamReadReply>>(&mut reader),
        )
        .await;
        let Some(inner) = weak.upgrade() else {
            return;
        };
        // Away far longer than a read blocks (paused, starved): notes may
        // have been trimmed meanwhile; read every key.
        if sent.elapsed() > block + timeout * 2 {
            notes = None;
        }
        let trouble = {
            let mut state = inner.lock();
            state.reader_id = None;
            match reply {
                Ok(Some(reply)) => {
                    for note in reply.keys.iter().flat_map(|stream| &stream.ids) {
                        if let Ok(id) = note.id.parse::<EntryId>() {
                            notes = notes.max(Some(id));
                        }
                        if let Some(key) = note.get::<String>(wire::NOTE) {
                            if state.keys.contains_key(&key) {
                                state.dirty.insert(key);
                            }
                        }
                    }
                    false
                }
                // The block ran out, or the driver interrupted it.
                Ok(None) => false,
                Err(_) => true,
            }
        };
        if trouble {
            notes = None;
            drop(inner);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How many blocking reads' worth of time between two reads of every key.
const SWEEP_BLOCKS: u32 = 10;
/// The most notes one read takes.
const NOTES_COUNT: usize = 1_000;
/// The most keys one pipelined read asks for.
const KEYS_PER_ROUND_TRIP: usize = 1_000;

/// The id of the newest note in the hub's changes stream (`0-0` if none).
async fn newest_note<S>(inner: &Inner<S>) -> Result<EntryId, Error> {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(inner.changes_key())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1);
    let mut conn = inner.conn.clone();
    let reply: StreamRangeReply = timed(inner.config.timeout, cmd.query_async(&mut conn)).await?;
    Ok(reply
        .ids
        .first()
        .and_then(|e| e.id.parse().ok())
        .unwrap_or_default())
}

/// Reads `keys` from their cursors (pipelined) and hands the entries over
/// to the same watch of each key (a key whose waiters left and came back
/// meanwhile is another watch, loaded afresh: it is not handed the old
/// one's entries, its end among them); a key with more to read is read
/// again at the next turn.
async fn read_keys<S>(inner: &Arc<Inner<S>>, keys: &[(String, u64, EntryId)]) -> Result<(), Error>
where
    S: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    for chunk in keys.chunks(KEYS_PER_ROUND_TRIP) {
        let mut pipe = redis::pipe();
        for (key, _, cursor) in chunk {
            pipe.add_command(after_cmd(&inner.stream_key(key), *cursor, READ_COUNT));
        }
        let mut reader = inner.reader.clone();
        let replies: Vec<StreamRangeReply> =
            timed(inner.config.timeout, pipe.query_async(&mut reader)).await?;
        let mut state = inner.lock();
        for ((key, watch, _), reply) in chunk.iter().zip(replies) {
            for raw in &reply.ids {
                inner.read.fetch_add(1, Ordering::Relaxed);
                match wire::decode::<S>(raw) {
                    Some(entry) => deliver(&mut state, key, *watch, entry),
                    // An entry this crate cannot read (not ours, or a
                    // status that no longer decodes during a rolling
                    // deploy): skip it, or the next read returns it again.
                    None => skip(&mut state, key, *watch, &raw.id),
                }
            }
            if reply.ids.len() >= READ_COUNT {
                state.dirty.insert(key.clone());
            }
        }
    }
    Ok(())
}
