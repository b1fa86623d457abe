//! The incremental event-stream parser: lines in, events out (R8–R25).

use std::collections::VecDeque;
use std::time::Duration;

use super::buf::reserve_string;
use super::field::{parse_retry, push_lossy, split_field};
use super::lines::{Line, LineSplitter};
use super::utf8::Utf8Tail;
use super::{Error, Event};

/// The default for [`Parser::max_event_size`]: 1 MiB.
const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

/// From this size on, an event's data buffer becomes the event's own buffer
/// instead of being copied into it.
const HAND_OVER: usize = 4 << 10;

/// An incremental, sans-IO parser for the WHATWG "event stream" format.
///
/// Feed the body of a `text/event-stream` response with [`feed`](Self::feed), in
/// chunks split anywhere (inside a UTF-8 sequence, the BOM, a CR LF pair; empty
/// chunks are fine), and take complete events with
/// [`next_event`](Self::next_event). An event is available as soon as its blank
/// line has been fed. Call [`finish`](Self::finish) when the body ends.
///
/// The parser follows the WHATWG rules exactly, with the browser dispatch steps:
/// a block without `data` dispatches nothing, invalid UTF-8 becomes U+FFFD, a
/// block left unfinished at the end of the stream is dropped.
///
/// It never panics, whatever the bytes, and its memory stays bounded by
/// [`max_event_size`](Self::max_event_size).
///
/// # Performance
///
/// Each byte is scanned once for CR and LF: the first 32 bytes of a line 8 at
/// a time in a register, the rest of a long line with `memchr2` (SIMD). A line
/// inside one chunk is parsed in place, and the parts of an event that lie in
/// the chunk being fed (its one `data` line, its type, its ID) stay there
/// until the event is dispatched, so each is copied once:
///
/// - an event inside one chunk: from the chunk into the event, validated as
///   UTF-8 once, together with its type and ID;
/// - a `data` line of 256 bytes or more that spans chunks: each part,
///   validated (SIMD for long runs), straight into the data buffer (never into
///   a line buffer first). From 4 KiB on, that buffer becomes the event's own
///   (no second copy) and the next one starts at its size; below, it is
///   copied into the event and reused. A shorter line that spans chunks is
///   joined in a reused line buffer first, which costs less than handling
///   each tiny part.
///
/// The committed last event ID is copied once per chunk, not once per event.
/// Each dispatched event costs one allocation (a large event much smaller than
/// the large one before it also trims its buffer: a shrinking realloc); the
/// parser's buffers and queue are reused. No event borrows a chunk: see
/// [`Event`] for what it holds.
///
/// # Default
///
/// - maximum size of one line and of one event's data: 1 MiB
///   ([`max_event_size`](Self::max_event_size));
/// - last event ID: `""` ([`with_last_event_id`](Self::with_last_event_id));
/// - reconnection time: `None` until the server sends `retry`.
///
/// # Reconnecting
///
/// The committed [`last_event_id`](Self::last_event_id) is what to send as
/// `Last-Event-ID` on the next request. For the next connection either call
/// [`finish`](Self::finish) and keep feeding the same parser, or create a new
/// one with [`with_last_event_id`](Self::with_last_event_id). Either way the new
/// stream's ID buffer starts from that ID, as browsers do, so a response that
/// opens with `retry: 3000` and a blank line does not erase the resume position.
///
/// # Examples
///
/// ```
/// use pollkit::sse::{Event, Parser};
/// use std::time::Duration;
///
/// let mut parser = Parser::new();
/// for chunk in [&b"retry: 3000\nid: 1\nda"[..], b"ta: a\n", b"\n: keep-alive\n", b"id: 2\ndata: b\n"] {
///     parser.feed(chunk)?;
///     while let Some(event) = parser.next_event() {
///         assert_eq!(event, Event::new("message", "a", "1"));
///     }
/// }
/// parser.finish(); // the stream ended inside the second block: it is dropped
/// assert_eq!(parser.next_event(), None);
/// assert_eq!(parser.last_event_id(), "1"); // resume after "a"
/// assert_eq!(parser.retry(), Some(Duration::from_millis(3000)));
/// # Ok::<(), pollkit::sse::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Parser {
    lines: LineSplitter,
    interpreter: Interpreter,
}

/// Everything after line splitting: the spec's buffers and the event queue.
#[derive(Debug, Clone)]
struct Interpreter {
    /// Upper bound on one line and on one event's data, in bytes.
    max: usize,
    /// The data buffer (R16): every `data` value followed by LF, decoded.
    data: String,
    /// The unfinished UTF-8 sequence of a `data` value streamed in parts.
    tail: Utf8Tail,
    /// The capacity to give an empty data buffer that starts to grow: the
    /// size of the last buffer handed over to an event, so that a stream of
    /// large events grows each buffer once, not by doubling.
    hint: usize,
    /// The event type buffer (R15), raw like `data`.
    event_type: Vec<u8>,
    /// The last-event-ID buffer (R17), raw like `data`, while `id_set` (the
    /// current block has an `id` field); otherwise the spec's buffer is
    /// `last_id` itself. The ID is decoded once, with the event that carries it.
    id_buffer: Vec<u8>,
    /// See `id_buffer`.
    id_set: bool,
    /// The last event ID string: the buffer as committed at the last blank line
    /// (R19).
    last_id: String,
    /// The reconnection time (R18).
    retry: Option<Duration>,
    /// Inside a block that was refused for its size: ignore lines until the
    /// blank line that ends it.
    skipping: bool,
    /// A block was refused during the current `feed`.
    refused: bool,
    /// Dispatched events not yet taken.
    queue: VecDeque<Event>,
    /// Comments not yet taken, when an observer asked for them.
    comments: Option<VecDeque<String>>,
}

/// The parts of the current block (and the committed ID) that still lie in
/// the chunk being fed, not yet copied. Most events lie inside one chunk, with
/// one `data` line, and then each part is copied once, into the event; the
/// committed ID is copied once per chunk instead of once per event. Before
/// the chunk goes away (or a line joined from several chunks comes), they
/// move into the parser's own buffers ([`Interpreter::keep`]).
#[derive(Default)]
struct Held<'c> {
    /// The data buffer, when it is this one `data` value (and the buffer is
    /// empty).
    data: Option<&'c [u8]>,
    /// The event type buffer, when it is this value.
    event_type: Option<&'c [u8]>,
    /// The ID buffer, when it is this value (and `id_set`).
    id: Option<&'c [u8]>,
    /// The committed last event ID, raw, when it is this value.
    last_id: Option<&'c [u8]>,
}

impl Held<'_> {
    /// Whether nothing is held.
    #[inline]
    fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.event_type.is_none()
            && self.id.is_none()
            && self.last_id.is_none()
    }

    /// Drops the held parts of a block that is refused; the committed ID
    /// stays.
    fn forget_block(&mut self) {
        self.data = None;
        self.event_type = None;
        self.id = None;
    }
}

/// Comments kept for an observer between two takes, at most.
const MAX_KEPT_COMMENTS: usize = 16;

impl Parser {
    /// A parser at the start of a stream, with the [defaults](Self#default).
    pub const fn new() -> Self {
        Self {
            lines: LineSplitter::new(),
            interpreter: Interpreter {
                max: DEFAULT_MAX_EVENT_SIZE,
                data: String::new(),
                tail: Utf8Tail::new(),
                hint: 0,
                event_type: Vec::new(),
                id_buffer: Vec::new(),
                id_set: false,
                last_id: String::new(),
                retry: None,
                skipping: false,
                refused: false,
                queue: VecDeque::new(),
                comments: None,
            },
        }
    }

    /// Sets the maximum size, in bytes, of one line and of the data of one event.
    ///
    /// Default: 1 MiB. This bounds the parser's memory whatever the input (a line
    /// without end, a block of endless `data` lines): content beyond it is
    /// refused before it is copied, and [`feed`](Self::feed) returns
    /// [`Error::EventTooLarge`]. Lines are measured in raw bytes without their
    /// terminator, data after UTF-8 decoding without its final LF. Comment lines
    /// (`:` first) are never stored, so they may be of any length.
    ///
    /// # Examples
    ///
    /// ```
    /// use pollkit::sse::{Error, Parser};
    ///
    /// let mut parser = Parser::new().max_event_size(8);
    /// assert_eq!(parser.feed(b"data: 0123456789\n\n"), Err(Error::EventTooLarge { limit: 8 }));
    /// ```
    #[must_use]
    pub const fn max_event_size(mut self, bytes: usize) -> Self {
        self.interpreter.max = bytes;
        self
    }

    /// Seeds the last event ID, to resume a stream on a new connection.
    ///
    /// Sets both the committed [`last_event_id`](Self::last_event_id) and the
    /// ID buffer the stream starts with (decision 7), so events of the new stream
    /// carry this ID until the server sends another `id`. Use it on a parser that
    /// has not been fed yet; a parser reused through [`finish`](Self::finish)
    /// already carries its ID over.
    ///
    /// # Examples
    ///
    /// ```
    /// use pollkit::sse::Parser;
    ///
    /// let mut parser = Parser::new().with_last_event_id("41");
    /// parser.feed(b"retry: 3000\n\ndata: x\n\n")?;
    /// assert_eq!(parser.next_event().expect("one event").last_event_id(), "41");
    /// assert_eq!(parser.last_event_id(), "41");
    /// # Ok::<(), pollkit::sse::Error>(())
    /// ```
    #[must_use]
    pub fn with_last_event_id(mut self, id: impl Into<String>) -> Self {
        self.set_last_event_id(id);
        self
    }

    /// Sets the last event ID in place; see
    /// [`with_last_event_id`](Self::with_last_event_id).
    ///
    /// Meant for the start of a stream (before the first `feed`, or right after
    /// [`finish`](Self::finish)): called in the middle of a block it also replaces
    /// an `id` that block has set.
    pub fn set_last_event_id(&mut self, id: impl Into<String>) {
        let it = &mut self.interpreter;
        it.last_id = id.into();
        it.id_set = false;
    }

    /// Parses the next chunk of the stream.
    ///
    /// Every complete event in it is queued for [`next_event`](Self::next_event)
    /// at once, without waiting for the next chunk; a `retry` field takes effect
    /// as soon as its line ends. Any split of the stream into chunks gives the
    /// same events, IDs and retry values (R26).
    ///
    /// # Errors
    ///
    /// [`Error::EventTooLarge`] when a line or the data of an event grows past
    /// [`max_event_size`](Self::max_event_size). The chunk is still consumed in
    /// full and the parser stays usable: the refused block is discarded (no
    /// event, its `id` is not committed, like a block cut by the end of the
    /// stream), the rest of it is skipped up to its blank line, and parsing goes
    /// on with the next block. Events completed before and after the refused one,
    /// in this chunk too, are queued normally. One error is returned per call
    /// even if several blocks were refused in it.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Error> {
        let Self { lines, interpreter } = self;
        interpreter.refused = false;
        let mut held = Held::default();
        lines.split(chunk, interpreter.max, |line| {
            interpreter.line(line, &mut held);
        });
        interpreter.keep(&mut held);
        if interpreter.refused {
            Err(Error::EventTooLarge {
                limit: interpreter.max,
            })
        } else {
            Ok(())
        }
    }

    /// Ends the stream and makes the parser ready for the next connection.
    ///
    /// An unfinished line is never processed (R7) and an unfinished block is
    /// dropped, not dispatched, its `id` not committed (R24). A final blank line
    /// made of a lone CR has already dispatched its event, so nothing is lost.
    /// Already queued events stay queued.
    ///
    /// Afterwards the parser is at the start of a new stream (a BOM is stripped
    /// again) and keeps the committed [`last_event_id`](Self::last_event_id),
    /// which seeds the new stream's ID buffer (decision 7), and the
    /// [`retry`](Self::retry) value.
    pub fn finish(&mut self) {
        self.lines.reset();
        self.interpreter.drop_block();
        self.interpreter.skipping = false;
    }

    /// Takes the next dispatched event, oldest first.
    #[inline]
    pub fn next_event(&mut self) -> Option<Event> {
        self.interpreter.queue.pop_front()
    }

    /// Keeps comment lines for [`take_comment`](Self::take_comment) (at
    /// most 16 between two takes; older ones are dropped first).
    pub(crate) fn keep_comments(&mut self) {
        self.interpreter.comments.get_or_insert_with(VecDeque::new);
    }

    /// Takes the oldest comment kept, if any.
    pub(crate) fn take_comment(&mut self) -> Option<String> {
        self.interpreter.comments.as_mut()?.pop_front()
    }

    /// Whether dispatched events wait to be taken.
    pub(crate) fn has_events(&self) -> bool {
        !self.interpreter.queue.is_empty()
    }

    /// The last event ID string: the ID committed by the last blank line (R19),
    /// `""` if none. Send it as `Last-Event-ID` when reconnecting.
    ///
    /// An `id` in a block that has not ended yet does not count (decision 6).
    pub fn last_event_id(&self) -> &str {
        &self.interpreter.last_id
    }

    /// The last reconnection time the server set with `retry` (R18), `None` if it
    /// never did.
    ///
    /// A `retry` value too large for a `u64` of milliseconds is ignored, as
    /// Chromium does (decision 2): the previous value stays.
    pub fn retry(&self) -> Option<Duration> {
        self.interpreter.retry
    }

    /// Heap memory held by the parser's buffers, excluding queued events. For
    /// tests of the memory bound.
    #[doc(hidden)]
    pub fn buffered_capacity(&self) -> usize {
        let it = &self.interpreter;
        self.lines.capacity()
            + it.data.capacity()
            + it.event_type.capacity()
            + it.id_buffer.capacity()
            + it.last_id.capacity()
    }
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Interpreter {
    /// Processes one line from the splitter.
    #[inline]
    fn line<'c>(&mut self, line: Line<'c, '_>, held: &mut Held<'c>) {
        match line {
            Line::Chunk(line) => self.complete(line, Some(held)),
            Line::Joined(line) => {
                self.keep(held);
                self.complete(line, None);
            }
            // The value of a `data` line that spans chunks, streamed.
            Line::DataOpen(_) | Line::DataMore(_) | Line::DataEnd(_) if self.skipping => {}
            Line::DataOpen(value) => {
                self.keep(held);
                self.tail.clear();
                self.push_data(value);
            }
            Line::DataMore(value) => {
                self.push_data(value);
            }
            Line::DataEnd(value) => {
                if self.push_data(value) {
                    self.end_data_line();
                }
            }
            // Already refused: one error per block.
            Line::TooLong(_) if self.skipping => {}
            // A comment needs no memory, so its length is harmless.
            Line::TooLong([b':', ..]) => {}
            Line::TooLong(_) => self.refuse(held),
        }
    }

    /// Processes a complete line; `held` is `Some` when the line lies in the
    /// chunk being fed, so its value may wait there uncopied.
    #[inline]
    fn complete<'c>(&mut self, line: &'c [u8], held: Option<&mut Held<'c>>) {
        if self.skipping {
            // The blank line that ends a refused block ends the skipping;
            // it dispatches nothing, like the end of stream would not (R24).
            self.skipping = !line.is_empty();
            return;
        }
        match line {
            // R8: a blank line dispatches.
            [] => self.dispatch(held),
            // R9: a comment, whatever follows (kept only for an observer).
            [b':', comment @ ..] => self.comment(comment),
            // The common fields first, without a search for the colon (R10–R12).
            [b'd', b'a', b't', b'a', b':', b' ', value @ ..]
            | [b'd', b'a', b't', b'a', b':', value @ ..] => self.data(value, held),
            [b'i', b'd', b':', b' ', value @ ..] | [b'i', b'd', b':', value @ ..] => {
                self.field(b"id", value, held);
            }
            [b'e', b'v', b'e', b'n', b't', b':', b' ', value @ ..]
            | [b'e', b'v', b'e', b'n', b't', b':', value @ ..] => {
                self.field(b"event", value, held);
            }
            line => {
                let (name, value) = split_field(line);
                self.field(name, value, held);
            }
        }
    }

    /// Keeps a comment for [`Parser::take_comment`], when asked to: at most
    /// a few, and none longer than the event size limit.
    fn comment(&mut self, comment: &[u8]) {
        let Some(kept) = self.comments.as_mut() else {
            return;
        };
        if kept.len() >= MAX_KEPT_COMMENTS {
            kept.pop_front();
        }
        let comment = comment.strip_prefix(b" ").unwrap_or(comment);
        let comment = &comment[..comment.len().min(self.max)];
        kept.push_back(String::from_utf8_lossy(comment).into_owned());
    }

    /// Processes a field line (R10–R18).
    fn field<'c>(&mut self, name: &[u8], value: &'c [u8], held: Option<&mut Held<'c>>) {
        // R13, R14: exact names only; anything else changes nothing.
        match name {
            b"data" => self.data(value, held),
            // R15: the last one wins, empty allowed.
            b"event" => match held {
                Some(held) => held.event_type = Some(value),
                None => {
                    self.event_type.clear();
                    self.event_type.extend_from_slice(value);
                }
            },
            // R17: an id containing NUL is ignored as a whole. (A loop, not
            // `memchr`: IDs are short, and a call costs more than the scan.)
            b"id" if value.iter().all(|&b| b != 0) => {
                match held {
                    Some(held) => held.id = Some(value),
                    None => {
                        self.id_buffer.clear();
                        self.id_buffer.extend_from_slice(value);
                    }
                }
                self.id_set = true;
            }
            b"retry" => {
                // R18: applies at once, no dispatch needed.
                if let Some(millis) = parse_retry(value) {
                    self.retry = Some(Duration::from_millis(millis));
                }
            }
            _ => {}
        }
    }

    /// Appends a complete `data` value and LF (R16), within the size limit.
    fn data<'c>(&mut self, value: &'c [u8], held: Option<&mut Held<'c>>) {
        match held {
            // The block's first data line, inside the chunk: leave it there,
            // unless decoding might take it past the limit (U+FFFD is 3 bytes).
            Some(held)
                if held.data.is_none()
                    && self.data.is_empty()
                    && value.len().saturating_mul(3) <= self.max =>
            {
                held.data = Some(value);
            }
            mut held => {
                if let Some(held) = held.as_deref_mut() {
                    // A second data line: the first joins the buffer.
                    self.keep_data(held);
                }
                if self.push_data(value) {
                    self.end_data_line();
                }
                if let (true, Some(held)) = (self.skipping, held) {
                    // Refused for its size: the held parts go with the block.
                    held.forget_block();
                }
            }
        }
    }

    /// Appends `value`, (part of) a `data` value, decoded, unless the data
    /// would grow past the limit: then refuses the block. Returns whether it
    /// fit.
    fn push_data(&mut self, value: &[u8]) -> bool {
        // The data so far (with its LFs) plus this value is what would be
        // dispatched now (R21 drops the new LF). Decoding never shrinks bytes,
        // so refusing on the raw length first never copies what cannot fit.
        if self.data.len().saturating_add(value.len()) > self.max {
            self.refuse_block();
            return false;
        }
        if self.data.capacity() == 0 {
            self.data
                .reserve_exact(self.hint.min(self.max.saturating_add(1)));
        }
        reserve_string(&mut self.data, value.len(), self.max.saturating_add(1));
        self.tail.push(&mut self.data, value);
        if self.data.len() > self.max {
            // Invalid UTF-8 grew into U+FFFD past the limit.
            self.refuse_block();
            return false;
        }
        true
    }

    /// Ends a `data` line: an unfinished UTF-8 sequence, then its LF.
    fn end_data_line(&mut self) {
        self.tail.finish(&mut self.data);
        if self.data.len() > self.max {
            self.refuse_block();
            return;
        }
        reserve_string(&mut self.data, 1, self.max.saturating_add(1));
        self.data.push('\n');
    }

    /// Moves the held data line into the data buffer, before another data
    /// line follows it.
    fn keep_data(&mut self, held: &mut Held<'_>) {
        if let Some(value) = held.data.take() {
            // Within the limit: it was checked when it was held.
            if self.push_data(value) {
                self.end_data_line();
            }
        }
    }

    /// Moves everything held in the chunk into the parser's buffers, before
    /// the chunk goes away or a line joined from several chunks comes.
    #[inline]
    fn keep(&mut self, held: &mut Held<'_>) {
        if held.is_empty() {
            // Small chunks: most hold nothing.
            return;
        }
        self.keep_parts(held);
    }

    /// [`keep`](Self::keep) when something is held.
    fn keep_parts(&mut self, held: &mut Held<'_>) {
        self.keep_data(held);
        if let Some(event_type) = held.event_type.take() {
            self.event_type.clear();
            self.event_type.extend_from_slice(event_type);
        }
        if let Some(id) = held.id.take() {
            self.id_buffer.clear();
            self.id_buffer.extend_from_slice(id);
        }
        if let Some(id) = held.last_id.take() {
            self.last_id.clear();
            push_lossy(&mut self.last_id, id);
        }
    }

    /// Dispatches on a blank line (R19–R23).
    fn dispatch<'c>(&mut self, held: Option<&mut Held<'c>>) {
        let mut none = Held::default();
        let held = held.unwrap_or(&mut none);
        let event_type = held.event_type.take().unwrap_or(&self.event_type);
        // The ID an event carries: the block's, or the committed one.
        let id: &[u8] = match (self.id_set, held.id, held.last_id) {
            (true, Some(id), _) | (false, _, Some(id)) => id,
            (true, None, _) => &self.id_buffer,
            (false, _, None) => self.last_id.as_bytes(),
        };
        // R21: the data buffer is empty or ends with the LF of its last line.
        let event = match held.data.take() {
            // R22: the one allocation of this event.
            Some(value) => Some(Event::from_raw(value, event_type, id)),
            None if self.data.len() > HAND_OVER => {
                // A large event: its data buffer becomes the event's buffer,
                // not copied; the next one starts at this one's size.
                let mut data = std::mem::take(&mut self.data);
                data.pop();
                let event = Event::from_data(data, event_type, id);
                // Room for an event up to 1/32 larger, and no more spare
                // than an event keeps (1/16).
                self.hint = event.size().saturating_add(event.size() / 32);
                Some(event)
            }
            None => self
                .data
                .strip_suffix('\n')
                .map(|data| Event::from_raw(data.as_bytes(), event_type, id)),
        };
        if self.id_set {
            // R19: commit the ID, even when no event fires: still in the
            // chunk, it stays there (copied once, at the chunk's end).
            match held.id.take() {
                Some(id) => held.last_id = Some(id),
                None => {
                    held.last_id = None;
                    self.last_id.clear();
                    match &event {
                        // Decoded once, with the event.
                        Some(event) => self.last_id.push_str(event.last_event_id()),
                        None => push_lossy(&mut self.last_id, &self.id_buffer),
                    }
                }
            }
        }
        if let Some(event) = event {
            self.queue.push_back(event);
        }
        self.id_set = false;
        // R20, R22: clear data and type, but not the ID buffer.
        self.clear_data();
        self.event_type.clear();
    }

    /// Empties the data buffer.
    fn clear_data(&mut self) {
        self.data.clear();
        self.tail.clear();
    }

    /// Refuses the current block for its size: drop it and skip to its end.
    fn refuse(&mut self, held: &mut Held<'_>) {
        held.forget_block();
        self.refuse_block();
    }

    /// [`refuse`](Self::refuse) when nothing of the block is held.
    fn refuse_block(&mut self) {
        self.drop_block();
        self.skipping = true;
        self.refused = true;
    }

    /// Drops the pending block as at the end of a stream (R24): its `id` is not
    /// committed, so the ID buffer goes back to the committed ID (decision 7).
    fn drop_block(&mut self) {
        self.clear_data();
        self.event_type.clear();
        self.id_set = false;
    }
}
