//! Polling strategies as streams: short polling, long polling and Server-Sent
//! Events, over any transport you supply.
//!
//! You write one request (a closure around reqwest, hyper, gRPC, a database
//! query); pollkit turns it into a [`futures_core::Stream`] of status updates
//! with deadlines, jitter, backoff, server hints and cancellation by drop, or
//! into a single awaited result with [`Poller::until`].
//!
//! ```
//! use std::time::Duration;
//! use pollkit::{Poller, ShortPoll};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let mut polls = 0;
//! let status = ShortPoll::new(move || {
//!         polls += 1;
//!         async move { Ok::<_, std::io::Error>(if polls < 3 { "running" } else { "completed" }) }
//!     })
//!     .interval(Duration::from_secs(5))
//!     .timeout(Duration::from_secs(600))
//!     .until(|s| *s == "completed")
//!     .await
//!     .unwrap();
//! assert_eq!(status, "completed");
//! # }
//! ```
//!
//! | strategy | use when |
//! |---|---|
//! | [`ShortPoll`] | the server answers at once; ask every interval |
//! | [`LongPoll`] | the server can hold a request until a change (a cursor and a wait) |
//! | [`SseStream`] | the server streams `text/event-stream` |
//!
//! Beyond one poller: [`Poller::until_result`] for waits that decide on
//! errors too ("until deleted") with a [`Verdict`], `.with_last_status()` for
//! the last status on a failed wait ([`Failed`]),
//! [`Poller::until_stable`] and [`Poller::until_held`] for
//! conditions that must hold steadily, [`ShortPoll::adaptive`] and
//! [`ShortPoll::eta`] for pacing by change and progress, [`Fallback`] to move
//! between transports, a shared request [`Budget`], [`Stats`] counters,
//! [`Checkpoint`]s to survive a restart, [`BoxPoller`] and [`Fetch`] to choose
//! a transport at run time, [`DynShortPoll`] and its siblings to keep a poller
//! in a struct field, [`Admission`] for a budget shared beyond one process
//! (the `pollkit-redis` crate), [`heartbeat`] for a transport of your own under
//! [`Fallback`], and (feature `hub`) a `Hub` where many waiters share one
//! poller per resource. Features `http` and `reqwest` add `Retry-After`
//! parsing, status classification and ready-made reqwest helpers.
//!
//! The README has the guide; every item below has its own examples.
//!
//! # Design
//! Each strategy is a small state machine that asks its schedule one
//! question after every answer from the server: when does the next request
//! start, and why (or does polling stop)? The schedule answers from small
//! policies, one rule each, that no strategy reaches into:
//!
//! | policy | rule |
//! |---|---|
//! | pacing | the interval after a success (fixed delay or fixed rate, adaptive, the status's ETA), or at once for long polling |
//! | retry | the error streak: [`Backoff`] with its time bound and `max_retries`; server hints waited in full, spread above, counted toward time only |
//! | quiet answers | quick long-poll replies without progress and SSE connections without a byte back off, never ending polling |
//! | limits | the deadline (`timeout`), the attempt limit, the time and requests a [`Checkpoint`] carries |
//! | admission | the rate limit (`LongPoll::rate_limit`) and a shared [`Admission`] such as a [`Budget`] |
//! | jitter | how each delay is spread ([`Jitter`]) |
//! | path | `LongPoll`'s learned wait: a proxy's limit taught by consistent cuts, verified before it is trusted, probed again later ([`LongPoll::cut_if`], [`LongPoll::expired_if`]) |
//!
//! Everything before a request (the first poll, the wait or a yield,
//! admission, a stop) is one gate, and the loop around it one driver, that
//! every strategy shares: ShortPoll's and LongPoll's requests and
//! SseStream's connects go through the same code, and so do the rules of a
//! failing streak (its last error carried by the stop that ends the wait,
//! the deadline's grace, the retry it plans and the `on_retry` it tells).
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admission;
mod builder;
mod checkpoint;
mod driver;
mod erased;
mod error;
mod fallback;
mod gate;
mod hooks;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "hub")]
#[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
mod hub;
mod life;
pub mod long;
mod named;
mod observe;
mod poller;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
mod schedule;
mod short;
pub mod sse;
mod stats;
mod trace;

pub use admission::{Admission, Reservation};
pub use checkpoint::Checkpoint;
pub use erased::{BoxPoller, Fetch, FetchFuture};
pub use error::Error;
pub use fallback::Fallback;
#[cfg(feature = "hub")]
#[cfg_attr(docsrs, doc(cfg(feature = "hub")))]
pub use hub::{Hub, Watch};
pub use life::heartbeat;
pub use long::LongPoll;
pub use named::{
    BoxBody, BoxConnect, BoxFetch, BoxLongFetch, DynLongPoll, DynShortPoll, DynSseStream,
};
pub use observe::Retry;
pub use poller::{
    Changes, FailWith, Failed, ForgetLast, KeepLast, LastStatus, MapStatus, Poller, TryMapStatus,
    Until, UntilHeld, UntilResult, UntilStable, Verdict,
};
pub use schedule::{Backoff, Budget, Cadence, Jitter};
pub use short::ShortPoll;
pub use sse::SseStream;
pub use stats::Stats;

/// Runs the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
