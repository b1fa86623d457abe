//! The integration tests, one binary: a module per topic, the shared helpers
//! declared once here. One binary links once against axum, reqwest and tokio.
//! (Tests that install a counting global allocator of their own stay in files
//! of their own: `tests/alloc.rs`, `tests/reliability_faults.rs`,
//! `tests/sse_parser.rs`.)

mod common;
#[cfg(feature = "reqwest")]
#[path = "../../examples/common/mod.rs"]
mod example_common;
#[path = "../faults/mod.rs"]
mod faults;
mod loopback;
mod support;
mod world;

mod acceptors;
mod adaptive;
mod api;
mod auto_traits;
mod budget;
mod budget_slots;
mod checkpoint;
mod clock_reads;
#[cfg(feature = "reqwest")]
mod demo;
mod e2e_backlog;
mod e2e_fallback;
mod e2e_long;
mod e2e_short;
mod e2e_sse;
mod e2e_sse_proxies;
mod error_chain;
mod etcd_real;
mod expired_cursor;
mod fallback_life;
mod fallback_limits;
mod hints_honest;
mod http_retry_after;
mod hub;
mod long_poll;
mod path_lessons;
mod real_paths;
mod regressions;
mod reliability_cancel;
mod reliability_config;
mod reliability_herd;
mod reliability_paths;
mod reliability_props;
mod reqwest_answer;
mod reqwest_cuts;
mod reqwest_deleted;
mod reqwest_durations;
mod reqwest_error;
mod reqwest_limits;
mod reqwest_long;
mod reqwest_marker;
mod reqwest_short;
mod reqwest_sse;
mod reqwest_sse_resume;
mod settings;
mod short_poll;
mod sse_proxies;
mod sse_stream;
mod stable;
mod tracing;
mod world_sim;
