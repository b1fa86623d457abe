//! One dispatched server-sent event.

use std::fmt;

use super::field::push_lossy;

/// A server-sent event: its type, data and last event ID (R22).
///
/// An `Event` owns exactly one heap allocation: the three strings are stored
/// back to back in one buffer, so dispatching an event costs one allocation,
/// reading [`data`](Self::data), [`event_type`](Self::event_type) or
/// [`last_event_id`](Self::last_event_id) is a slice of it (no decoding, no
/// copy), and the value is small (a `String` and two offsets).
///
/// An event never borrows the chunk it was parsed from, so holding one, past
/// the next chunk or for as long as you like, keeps its own bytes alive and
/// nothing else. The buffer is of exact size, except for an event larger than
/// 4 KiB whose data spanned chunks: that event keeps the buffer its data was
/// decoded into (instead of a copy), with at most 1/16 of its size spare.
///
/// The type `"message"` and the empty type are the same event type (R22): both
/// read back as `"message"` and compare equal.
///
/// # Examples
///
/// ```
/// use pollkit::sse::{Event, Parser};
///
/// let mut parser = Parser::new();
/// parser.feed(b"event: progress\nid: 7\ndata: {\"percent\":40}\n\n")?;
/// let event = parser.next_event().expect("one event");
/// assert_eq!(event.event_type(), "progress");
/// assert_eq!(event.data(), r#"{"percent":40}"#);
/// assert_eq!(event.last_event_id(), "7");
/// assert_eq!(event, Event::new("progress", r#"{"percent":40}"#, "7"));
///
/// // No `event` field: the type is "message".
/// assert_eq!(Event::new("", "x", "").event_type(), "message");
/// assert_eq!(Event::new("", "x", ""), Event::new("message", "x", ""));
/// # Ok::<(), pollkit::sse::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// `data`, then the event type (empty for "message"), then the id.
    buf: String,
    /// End of the data in `buf`.
    data_end: usize,
    /// End of the event type in `buf`; the id runs from here to the end.
    type_end: usize,
}

impl Event {
    /// Creates an event, for example to compare with a parsed one in tests.
    ///
    /// An empty `event_type` means `"message"` (R22). `id` is the last event ID
    /// the event carries, `""` for none.
    ///
    /// # Examples
    ///
    /// ```
    /// use pollkit::sse::Event;
    ///
    /// let event = Event::new("update", "line 1\nline 2", "42");
    /// assert_eq!(event.data().lines().count(), 2);
    /// ```
    pub fn new(event_type: &str, data: &str, id: &str) -> Self {
        // Normalise so that derived equality and hashing agree with
        // `event_type()`, which reports an empty type as "message".
        let event_type = if event_type == "message" {
            ""
        } else {
            event_type
        };
        let data_end = data.len();
        let type_end = data_end.saturating_add(event_type.len());
        let mut buf = String::with_capacity(type_end.saturating_add(id.len()));
        buf.push_str(data);
        buf.push_str(event_type);
        buf.push_str(id);
        Self {
            buf,
            data_end,
            type_end,
        }
    }

    /// An event from the raw bytes of its parts, each decoded as UTF-8 with
    /// every maximal invalid sequence replaced by U+FFFD (R1).
    ///
    /// The one allocation of a dispatched event: the parts are copied into a
    /// buffer of exact size, which is validated once, as a whole.
    pub(crate) fn from_raw(data: &[u8], event_type: &[u8], id: &[u8]) -> Self {
        let event_type = if event_type == b"message" {
            &[]
        } else {
            event_type
        };
        let data_end = data.len();
        let type_end = data_end.saturating_add(event_type.len());
        let mut buf = Vec::with_capacity(type_end.saturating_add(id.len()));
        buf.extend_from_slice(data);
        buf.extend_from_slice(event_type);
        buf.extend_from_slice(id);
        match String::from_utf8(buf) {
            // Valid as a whole and cut at character boundaries: each part is
            // valid on its own, so nothing was to be replaced.
            Ok(buf) if buf.is_char_boundary(data_end) && buf.is_char_boundary(type_end) => Self {
                buf,
                data_end,
                type_end,
            },
            // Invalid input, the rare case: decode each part on its own.
            _ => Self::new(
                &String::from_utf8_lossy(event_type),
                &String::from_utf8_lossy(data),
                &String::from_utf8_lossy(id),
            ),
        }
    }

    /// An event that takes over `data`, the decoded data buffer, as its own
    /// buffer: the type and ID are appended, decoded. A buffer with more than
    /// 1/16 of its size spare is trimmed (a realloc), so the event never
    /// holds much more than its bytes.
    pub(crate) fn from_data(mut data: String, event_type: &[u8], id: &[u8]) -> Self {
        let data_end = data.len();
        if event_type != b"message" {
            push_lossy(&mut data, event_type);
        }
        let type_end = data.len();
        push_lossy(&mut data, id);
        if data.capacity() - data.len() > data.len() / 16 {
            data.shrink_to_fit();
        }
        Self {
            buf: data,
            data_end,
            type_end,
        }
    }

    /// Bytes held: data, type and ID.
    pub(crate) fn size(&self) -> usize {
        self.buf.len()
    }

    /// Heap memory the event holds. For tests of what an event keeps alive.
    #[doc(hidden)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The event type: the last `event` field of the block, or `"message"` when
    /// there was none or it was empty (R15, R22).
    #[inline]
    pub fn event_type(&self) -> &str {
        match &self.buf[self.data_end..self.type_end] {
            "" => "message",
            event_type => event_type,
        }
    }

    /// The data: the `data` fields of the block joined by `\n` (R16, R21).
    #[inline]
    pub fn data(&self) -> &str {
        &self.buf[..self.data_end]
    }

    /// The last event ID when the event was dispatched (R22, R23), `""` if none
    /// was set. This is the ID to resume from once this event is handled.
    #[inline]
    pub fn last_event_id(&self) -> &str {
        &self.buf[self.type_end..]
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("event_type", &self.event_type())
            .field("data", &self.data())
            .field("last_event_id", &self.last_event_id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn parts_round_trip() {
        let event = Event::new("t", "d", "i");
        assert_eq!(
            (event.event_type(), event.data(), event.last_event_id()),
            ("t", "d", "i")
        );
        let event = Event::new("", "", "");
        assert_eq!(
            (event.event_type(), event.data(), event.last_event_id()),
            ("message", "", "")
        );
    }

    #[test]
    fn debug_shows_the_fields() {
        assert_eq!(
            format!("{:?}", Event::new("", "d", "7")),
            r#"Event { event_type: "message", data: "d", last_event_id: "7" }"#
        );
    }

    #[test]
    fn stays_small() {
        assert!(size_of::<Event>() <= 5 * size_of::<usize>());
    }
}
