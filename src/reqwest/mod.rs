//! Turnkey HTTP over reqwest 0.13 (feature `reqwest`): every strategy with
//! HTTP's rules already wired in.
//!
//! | helper | gives | for |
//! |---|---|---|
//! | [`short`] | a [`ShortPoll`](crate::ShortPoll) of JSON statuses | `GET /jobs/{id}` every interval |
//! | [`long_index`] | a [`LongPoll`](crate::LongPoll) | `?index=N&wait=30s` (Consul, Nomad, etcd v2, your own) |
//! | [`long_etag`] | a [`LongPoll`](crate::LongPoll) | `If-None-Match` + `Prefer: wait=N` |
//! | [`sse`] | an [`SseStream`](crate::SseStream) | `text/event-stream`, GET or POST |
//! | [`short_answer`] | a [`ShortPoll`](crate::ShortPoll) of [`Answer`]s: status code, headers and body | a long-running operation: `202` + `Location` + `Retry-After` |
//! | [`json`] | one request as a future | a fetch closure of your own |
//! | [`json_answer`] | one request as a future, with its [`Answer`] | starting a long-running operation |
//! | [`event_json`] | an event's data decoded | `sse(..).try_map_status(event_json::<T>)` |
//!
//! Each takes a [`reqwest::RequestBuilder`] (with
//! your client, headers, auth and body) and sends a clone of it per attempt.
//! Failures are an [`HttpError`], classified transient or permanent by
//! [`HttpError::is_transient`], with the server's `Retry-After` honoured; the
//! helpers return the pollers themselves, so every setter still applies.
//!
//! pollkit depends on reqwest without default features, so TLS is whatever
//! your own reqwest dependency enables (`rustls`, `native-tls`...).
//!
//! Without the feature, the same watch is a closure of your own: the
//! README's "Without the `reqwest` feature" section shows one, and
//! [`pollkit::http`](crate::http) gives the `Retry-After` parser and the
//! status table to any client.

mod answer;
mod config;
mod deleted;
mod error;
mod future;
mod json;
mod long;
mod short;
mod sse;
mod template;

pub use answer::Answer;
pub use config::{Config, DEFAULT_MAX_BODY};
pub use deleted::{deleted, is_gone, recreated};
pub use error::{ErrorKind, HttpError};
pub use future::HttpFuture;
pub use json::{json, json_answer};
pub use long::{IndexQuery, index_header, long_etag, long_index};
pub use short::{short, short_answer};
pub use sse::{EventBody, event_json, sse};
