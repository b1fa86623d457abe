//! Errors reported by the SSE [`Parser`](super::Parser).

/// An error reported by [`Parser::feed`](super::Parser::feed).
///
/// The parser stays usable after any of these: see the variant docs for what was
/// discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line, or the data of one event, grew past the configured maximum
    /// ([`Parser::max_event_size`](super::Parser::max_event_size)).
    ///
    /// The block (event) that contained it was discarded, its `id` was not
    /// committed, and the parser skipped ahead to the next blank line.
    #[error(
        "server-sent event larger than the limit of {limit} bytes; it was discarded and parsing continues with the next event"
    )]
    EventTooLarge {
        /// The limit in bytes that was exceeded.
        limit: usize,
    },
}
