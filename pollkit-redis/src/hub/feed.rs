//! [`Feed`]: what one key's waiters on this instance read — the key's last
//! `max_len` deliveries in the order the instance took them, each waiter at
//! its own position.
//!
//! A waiter that falls behind (its task busy, its process paused) does not
//! lose what the stream still holds: it reads on from its position when it
//! polls again. Only past `max_len` does it skip to the oldest kept, as the
//! stream itself (`MAXLEN ~ max_len`) would.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::watch;

use super::lock;
use super::wire::Event;

/// One status (or the end) for this instance's waiters, with its place in
/// this feed (`at`, from 1) and in the key's sequence (`n`). The key orders
/// and sorts out what it pushes (by the holders' terms and the sequence);
/// the feed numbers it, so a waiter never gets an `at` at or below one it
/// got, and the numbers go on when Redis lost data and the key's sequence
/// started over.
#[derive(Clone, Debug)]
pub(crate) struct Delivery<S> {
    pub(crate) at: u64,
    pub(crate) n: u64,
    pub(crate) event: Event<S>,
}

/// A key's recent deliveries and a signal that wakes its waiters.
#[derive(Debug)]
pub(crate) struct Feed<S> {
    log: Mutex<Log<S>>,
    cap: usize,
    /// Bumped after every push.
    pushed: watch::Sender<u64>,
}

#[derive(Debug)]
struct Log<S> {
    kept: VecDeque<Delivery<S>>,
    /// The place of the last delivery pushed.
    last: u64,
}

impl<S: Clone> Feed<S> {
    /// An empty feed that keeps the last `cap` deliveries (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        Feed {
            log: Mutex::new(Log {
                kept: VecDeque::new(),
                last: 0,
            }),
            cap: cap.max(1),
            pushed: watch::channel(0).0,
        }
    }

    /// Appends an event, at place `n` in the key's sequence, after every
    /// one kept, and wakes the waiters.
    pub(crate) fn push(&self, n: u64, event: Event<S>) {
        {
            let mut log = lock(&self.log);
            log.last += 1;
            let at = log.last;
            log.kept.push_back(Delivery { at, n, event });
            while log.kept.len() > self.cap {
                log.kept.pop_front();
            }
        }
        self.pushed.send_modify(|count| *count += 1);
    }

    /// The first delivery after place `at`, if any is kept.
    pub(crate) fn after(&self, at: u64) -> Option<Delivery<S>> {
        let log = lock(&self.log);
        let i = log.kept.partition_point(|d| d.at <= at);
        log.kept.get(i).cloned()
    }

    /// Whether the newest status kept at place `n` of the sequence is one
    /// that `same` holds for.
    pub(crate) fn delivered(&self, n: u64, same: impl Fn(&S) -> bool) -> bool {
        let log = lock(&self.log);
        match log.kept.iter().rev().find(|d| d.n == n) {
            Some(Delivery {
                event: Event::Status(s),
                ..
            }) => same(s),
            _ => false,
        }
    }

    /// The newest delivery's place.
    pub(crate) fn newest(&self) -> Option<u64> {
        lock(&self.log).kept.back().map(|d| d.at)
    }

    /// A receiver that changes after every push.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.pushed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_goes_on_from_its_position_and_skips_only_past_the_cap() {
        let feed = Feed::new(3);
        for (n, status) in [(1, 10), (2, 20), (3, 30)] {
            feed.push(n, Event::Status(status));
        }
        assert_eq!(feed.after(0).map(|d| d.at), Some(1));
        assert_eq!(feed.after(1).map(|d| d.at), Some(2));
        assert!(feed.after(3).is_none());
        // The sequence started over at 2: the feed goes on at 4.
        feed.push(2, Event::Status(40));
        // 1 is gone (cap 3): a reader at 0 goes on from the oldest kept.
        assert_eq!(feed.after(0).map(|d| d.at), Some(2));
        assert!(matches!(
            feed.after(3).map(|d| d.event),
            Some(Event::Status(40))
        ));
        assert_eq!(feed.newest(), Some(4));
        // The newest status at a place of the sequence.
        assert!(feed.delivered(2, |&s| s == 40));
        assert!(!feed.delivered(2, |&s| s == 20));
        assert!(!feed.delivered(1, |_| true), "no longer kept");
    }
}
