//! Server-Sent Events.
//!
//! [`Parser`] is an incremental, sans-IO parser for the WHATWG "event stream"
//! format (`text/event-stream`): feed it the bytes of a response body in chunks
//! of any size, take complete [`Event`]s out. It never performs I/O and never
//! blocks, so any transport can drive it.
//!
//! # Examples
//!
//! ```
//! use pollkit::sse::Parser;
//!
//! let mut parser = Parser::new();
//! parser.feed(b"id: 1\ndata: hel")?;
//! assert!(parser.next_event().is_none()); // the block is not finished yet
//! parser.feed(b"lo\n\n")?;
//! let event = parser.next_event().expect("one event");
//! assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("message", "hello", "1"));
//! # Ok::<(), pollkit::sse::Error>(())
//! ```

mod buf;
mod cut;
mod error;
mod event;
mod field;
mod lines;
mod parser;
mod reconnect;
mod signal;
mod stream;
mod utf8;

pub use error::Error;
pub use event::Event;
pub use parser::Parser;
pub use reconnect::Reconnect;
pub use signal::{Cause, Signal};
pub use stream::SseStream;
