//! [`Feed`]: what one key's waiters on this instance read — the key's last
//! `max_len` statuses in sequence order, each waiter at its own position.
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
/// the key's sequence (`n`, from 1): a waiter never gets an `n` at or below
/// one it got, so it never steps back.
#[derive(Clone, Debug)]
pub(crate) struct Delivery<S> {
    pub(crate) n: u64,
    pub(crate) event: Event<S>,
}

/// A key's recent deliveries and a signal that wakes its waiters.
#[derive(Debug)]
pub(crate) struct Feed<S> {
    log: Mutex<VecDeque<Delivery<S>>>,
    cap: usize,
    /// Bumped after every push.
    pushed: watch::Sender<u64>,
}

impl<S: Clone> Feed<S> {
    /// An empty feed that keeps the last `cap` deliveries (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        Feed {
            log: Mutex::new(VecDeque::new()),
            cap: cap.max(1),
            pushed: watch::channel(0).0,
        }
    }

    /// Appends a delivery whose `n` is above every one kept (others are
    /// dropped: the caller orders them), and wakes the waiters.
    pub(crate) fn push(&self, delivery: Delivery<S>) {
        {
            let mut log = lock(&self.log);
            if log.back().is_some_and(|last| last.n >= delivery.n) {
                return;
            }
            log.push_back(delivery);
            while log.len() > self.cap {
                log.pop_front();
            }
        }
        self.pushed.send_modify(|count| *count += 1);
    }

    /// The first delivery after `n`, if any is kept.
    pub(crate) fn after(&self, n: u64) -> Option<Delivery<S>> {
        let log = lock(&self.log);
        let at = log.partition_point(|d| d.n <= n);
        log.get(at).cloned()
    }

    /// The newest delivery's `n`.
    pub(crate) fn newest(&self) -> Option<u64> {
        lock(&self.log).back().map(|d| d.n)
    }

    /// A receiver that changes after every push.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.pushed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(n: u64) -> Delivery<u64> {
        Delivery {
            n,
            event: Event::Status(n),
        }
    }

    #[test]
    fn a_reader_goes_on_from_its_position_and_skips_only_past_the_cap() {
        let feed = Feed::new(3);
        for n in [1, 2, 2, 1, 3] {
            feed.push(status(n));
        }
        assert_eq!(feed.after(0).map(|d| d.n), Some(1));
        assert_eq!(feed.after(1).map(|d| d.n), Some(2));
        assert!(feed.after(3).is_none());
        feed.push(status(5));
        // 1 is gone (cap 3): a reader at 0 goes on from the oldest kept.
        assert_eq!(feed.after(0).map(|d| d.n), Some(2));
        assert_eq!(feed.after(3).map(|d| d.n), Some(5));
        assert_eq!(feed.newest(), Some(5));
    }
}
