//! pollkit beyond one process: a fleet-wide request budget and one poller per
//! resource across all instances of a service, on Redis (or Valkey).
//!
//! - [`FleetBudget`]: a GCRA token bucket in one atomic Lua script, a
//!   [`pollkit::Admission`] for any poller.
//! - [`FleetHub`]: any number of waiters on any number of instances share one
//!   poller per key; the holder of an expiring lease polls and publishes to a
//!   Redis Stream, another instance takes over when it dies.
//!
//! Both keep watches going when Redis is down or slow (each instance polls on
//! its own, at a local share of the budget) and go back to sharing when it
//! returns. The README has the guide and the measured costs.
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod budget;
mod conn;
mod error;
mod hub;

pub use budget::{FleetBudget, FleetBudgetStats};
pub use conn::connect;
pub use error::{Error, RemoteError};
pub use hub::{Checkpointed, FleetHub, FleetWatch, HubConfig, HubStats, Item, Resume, Stateless};

/// Runs the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
