//! Helpers shared by the paused-clock tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Records the instant of every request, relative to when it was made.
#[derive(Clone)]
pub struct Log {
    start: Instant,
    at: Arc<Mutex<Vec<Duration>>>,
}

impl Log {
    pub fn new() -> Self {
        Log {
            start: Instant::now(),
            at: Arc::default(),
        }
    }

    /// Records "a request now" and returns its number, from 1.
    pub fn hit(&self) -> usize {
        let mut at = self.at.lock().unwrap();
        at.push(self.start.elapsed());
        at.len()
    }

    pub fn times(&self) -> Vec<Duration> {
        self.at.lock().unwrap().clone()
    }

    /// Request instants in whole milliseconds.
    pub fn millis(&self) -> Vec<u128> {
        self.times().iter().map(|d| d.as_millis()).collect()
    }

    pub fn secs(&self) -> Vec<u64> {
        self.times().iter().map(|d| d.as_secs()).collect()
    }

    pub fn count(&self) -> usize {
        self.at.lock().unwrap().len()
    }
}

/// Sets a flag when dropped: proves that a request future was cancelled.
pub struct DropFlag(pub Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A user's error type with a transient/permanent split and a retry hint.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Unavailable { retry_after: Option<Duration> },
    NotFound,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unavailable { .. } => f.write_str("503 service unavailable"),
            ApiError::NotFound => f.write_str("404 not found"),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Unavailable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Unavailable { retry_after } => *retry_after,
            ApiError::NotFound => None,
        }
    }
}
