//! When to ask next, and why.
//!
//! Every strategy asks one question of its [`Schedule`], after each answer
//! from the server ([`Answer`]: "a success", "an error with this hint", "a
//! connection ended like this"): when does the next request start
//! (`Schedule::next`), why (`reason`), or does polling stop (`plan`: the
//! deadline or the attempt limit)? The schedule answers by consulting small
//! policies, each one rule in one file, none of which a strategy reaches
//! into:
//!
//! | policy | file | rule |
//! |---|---|---|
//! | pacing | `pacing.rs`, `cadence.rs` | the interval after a success: fixed delay or fixed rate, adaptive, near the status's ETA, or at once |
//! | retry | `streak.rs`, `backoff.rs`, `retry.rs` | the error streak: backoff, its time bound and `max_retries`; hints count toward time only |
//! | quiet answers | `quiet.rs` | quick replies without progress and empty connections back off, never ending polling |
//! | hints | `config.rs`, `next.rs` | a server hint is clamped to the bounds, waited in full and spread above |
//! | limits | `limits.rs` | the deadline, the attempt limit, the time and requests spent (checkpoints) |
//! | admission | `admit.rs`, `asked.rs`, `bucket.rs`, `budget.rs` | the rate limit and the shared budget every start passes |
//! | jitter | `jitter.rs`, `rng.rs` | how a delay is spread |
//!
//! The schedule itself, which holds one of each:
//!
//! | file | what |
//! |---|---|
//! | `answer.rs` | [`Answer`], the question's input, and [`Disconnect`] |
//! | `next.rs` | `Schedule::next`: which policy answers which answer |
//! | `plan.rs` | [`Plan`] (go now, at an instant, or stop) and [`Reason`] (why) |
//! | `start.rs` | what the gate asks around a request's start: the clock, the limits, admission |
//! | `state.rs` | [`Schedule`]: the policies laid out for the cache, the knobs the builders set, the stats |
//! | `config.rs` | [`Config`]: the knobs that are no policy's own |
//! | `later.rs`, `nanos.rs` | instants and durations that never overflow |
//!
//! It is plain data and arithmetic on instants (no futures), so each rule is
//! tested on its own and every strategy gets the same behaviour.

mod admit;
mod answer;
mod asked;
mod backoff;
mod bucket;
mod budget;
mod cadence;
mod config;
mod jitter;
mod later;
mod limits;
mod nanos;
mod next;
mod pacing;
mod plan;
mod quiet;
mod retry;
mod rng;
mod start;
mod state;
mod streak;

pub(crate) use admit::Admit;
pub(crate) use answer::{Answer, Disconnect};
pub(crate) use asked::Asked;
pub use backoff::Backoff;
pub(crate) use bucket::TokenBucket;
pub use budget::Budget;
pub use cadence::Cadence;
pub(crate) use config::{Config, HINT_SPREAD};
pub use jitter::Jitter;
pub(crate) use later::{FAR, later};
pub(crate) use limits::Stop;
pub(crate) use nanos::Nanos;
pub(crate) use pacing::Pacing;
pub(crate) use plan::{Plan, Reason};
#[cfg(feature = "backoff")]
pub(crate) use retry::ExternalBackoff;
pub(crate) use retry::RetryPolicy;
pub(crate) use state::Schedule;
#[cfg(test)]
pub(crate) use state::hot_end;
