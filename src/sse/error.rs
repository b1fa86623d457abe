//! Placeholder until the parser lands.
/// An SSE error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Too large.
    #[error("event too large (limit {limit} bytes)")]
    EventTooLarge {
        /// The limit.
        limit: usize,
    },
}
