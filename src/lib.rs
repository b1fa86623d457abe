#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod driver;
mod erased;
mod error;
mod hooks;
pub mod long;
mod poller;
mod schedule;
mod short;
pub mod sse;

pub use erased::{BoxPoller, Fetch, FetchFuture};
pub use error::Error;
pub use long::LongPoll;
pub use poller::{Changes, FailWith, MapStatus, Poller, Until};
pub use schedule::{Backoff, Cadence, Jitter};
pub use short::ShortPoll;
