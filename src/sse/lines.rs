//! From chunks of bytes to lines: the BOM (R2, R3), line terminators (R4–R7) and
//! the line length bound, independent of where the chunks were split (R26).

use super::buf::reserve_vec;

/// The UTF-8 encoding of U+FEFF.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// A `data` field's name and colon.
const DATA: &[u8] = b"data:";

/// The length from which a `data` line that spans chunks is streamed to the
/// interpreter rather than joined in the line buffer.
const STREAM_FROM: usize = 256;

/// What the splitter hands to the interpreter, in stream order.
///
/// `'c` is the chunk being split: slices with it stay valid for the whole
/// [`LineSplitter::split`] call, so the interpreter may keep them until then
/// without copying. `'b` slices point into the splitter's own buffer and are
/// valid only during the call that receives them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'c, 'b> {
    /// A complete line that lies inside the chunk, without its terminator.
    Chunk(&'c [u8]),
    /// A complete line joined from several chunks, without its terminator.
    Joined(&'b [u8]),
    /// The start of the value of a `data` line that goes on in the next chunk
    /// (the name, colon and one leading space removed). The value is streamed
    /// to the interpreter, never held by the splitter: it is copied once, into
    /// the event's data.
    DataOpen(&'b [u8]),
    /// More of the value of the `data` line opened by [`Line::DataOpen`].
    DataMore(&'c [u8]),
    /// The last bytes of the value of that `data` line: it ends here.
    DataEnd(&'c [u8]),
    /// A line longer than the limit. The slice holds its first bytes (at least
    /// one); the rest of the line is discarded without being buffered and
    /// nothing more follows for it.
    TooLong(&'b [u8]),
}

/// The bytes scanned a word at a time before `memchr2` takes over.
const SHORT_LINE: usize = 32;

/// Each byte of a word set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The index of the first CR or LF among the 8 bytes of `word` (in memory
/// order), if any.
///
/// The classic zero-byte test: `x - 0x01..` borrows into the high bit of
/// every byte of `x` that is zero, and `& !x` drops bytes that had their high
/// bit set already. A borrow can also flag a byte above a zero byte, never one
/// below the first, so the lowest flag is exact.
#[inline]
fn first_cr_lf(word: [u8; 8]) -> Option<usize> {
    let word = u64::from_le_bytes(word);
    let zero_at = |x: u64| x.wrapping_sub(splat(0x01)) & !x & splat(0x80);
    let flags = zero_at(word ^ splat(b'\n')) | zero_at(word ^ splat(b'\r'));
    // At most 63 / 8: the cast cannot truncate.
    (flags != 0).then(|| (flags.trailing_zeros() / 8) as usize)
}

/// The position of the first CR or LF in `rest`, the start of a line.
///
/// `memchr2` is the fastest scan of a long line, but a call costs more than
/// the whole of a short one, and short lines are most of an event: the blank
/// line, `id`, `event`, `retry`, a small `data`. So the first bytes of a line
/// are scanned 8 at a time in a register (safe code, no SIMD), and `memchr2`
/// takes over only for a line longer than that.
#[inline]
fn find_line_end(rest: &[u8]) -> Option<usize> {
    match rest.first() {
        None => return None,
        Some(b'\n' | b'\r') => return Some(0),
        Some(_) => {}
    }
    let head = &rest[..rest.len().min(SHORT_LINE)];
    let mut words = head.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        if let Some(end) = first_cr_lf(bytes) {
            return Some(at + end);
        }
        at += 8;
    }
    if let Some(end) = words
        .remainder()
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
    {
        return Some(at + end);
    }
    match &rest[head.len()..] {
        // A small chunk's end: no call for nothing.
        [] => None,
        tail => memchr::memchr2(b'\r', b'\n', tail).map(|end| head.len() + end),
    }
}

/// The line that the previous chunk left unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// None, or its first bytes are held in the buffer.
    Held,
    /// A `data` line streamed to the interpreter: `len` raw bytes so far, and
    /// whether its value has not started yet, so that a space opening the next
    /// chunk is the one space to remove (R11).
    Data { len: usize, before_value: bool },
    /// A line already reported as [`Line::TooLong`]: drop bytes up to its end.
    Discarding,
}

/// Splits a byte stream into lines, across chunk boundaries.
///
/// A line that lies entirely inside one chunk is handed out straight from the
/// chunk. A line that spans chunks is copied once: into a reused buffer, or,
/// for a `data` line, straight into the event's data. Every byte is scanned
/// once (`memchr2`), so the cost is linear in the input whatever the chunk
/// sizes.
#[derive(Debug, Clone)]
pub(crate) struct LineSplitter {
    /// `Some(n)`: still at stream start, the first `n` bytes of the BOM have been
    /// seen and are held back (R2). `None`: past the start.
    bom: Option<u8>,
    /// The previous chunk ended with a CR, so an LF at the start of the next
    /// non-empty chunk belongs to it (R5).
    after_cr: bool,
    /// The start of a line that has no terminator yet (never more than the limit).
    line: Vec<u8>,
    /// What the unfinished line is.
    open: Open,
}

impl LineSplitter {
    /// A splitter at the start of a stream.
    pub(crate) const fn new() -> Self {
        Self {
            bom: Some(0),
            after_cr: false,
            line: Vec::new(),
            open: Open::Held,
        }
    }

    /// Forgets the unfinished line (R7) and starts a new stream, keeping the
    /// buffer's capacity.
    pub(crate) fn reset(&mut self) {
        self.bom = Some(0);
        self.after_cr = false;
        self.line.clear();
        self.open = Open::Held;
    }

    /// Bytes of heap memory held.
    pub(crate) fn capacity(&self) -> usize {
        self.line.capacity()
    }

    /// Splits `chunk`, calling `emit` for every line it completes, in order.
    ///
    /// A line longer than `max` bytes (terminator excluded) is reported as
    /// [`Line::TooLong`] as soon as that is known, and is never buffered whole.
    pub(crate) fn split<'c, F>(&mut self, chunk: &'c [u8], max: usize, mut emit: F)
    where
        F: FnMut(Line<'c, '_>),
    {
        let mut rest = self.strip_bom(chunk);
        if rest.is_empty() {
            // Empty chunks change nothing: not the stream start, not a pending CR
            // (chunking.md, case 10).
            return;
        }
        if self.after_cr {
            self.after_cr = false;
            if rest[0] == b'\n' {
                // R5: the LF completes the CR LF that the previous chunk began.
                rest = &rest[1..];
                if rest.is_empty() {
                    return;
                }
            }
        }
        if !self.line.is_empty() || self.open != Open::Held {
            // The line the previous chunk left unfinished.
            let Some(end) = find_line_end(rest) else {
                self.more(rest, max, &mut emit);
                return;
            };
            self.end_line(&rest[..end], max, &mut emit);
            rest = &rest[self.after_terminator(rest, end)..];
        }
        // The hot loop: whole lines inside the chunk, handed out in place.
        while let Some(end) = find_line_end(rest) {
            let line = &rest[..end];
            if line.len() > max {
                emit(Line::TooLong(line));
            } else {
                emit(Line::Chunk(line));
            }
            rest = &rest[self.after_terminator(rest, end)..];
        }
        if !rest.is_empty() {
            self.start(rest, max, &mut emit);
        }
    }

    /// Where the line after the terminator at `rest[end]` starts.
    fn after_terminator(&mut self, rest: &[u8], end: usize) -> usize {
        let next = end + 1;
        if rest[end] == b'\r' {
            match rest.get(next) {
                // R4: CR LF is one terminator.
                Some(b'\n') => return next + 1,
                Some(_) => {}
                // R5: the LF may still come; the line ends now regardless, so
                // a blank line dispatches without waiting for the next chunk
                // or for the end of the stream.
                None => self.after_cr = true,
            }
        }
        next
    }

    /// Removes a leading BOM split across any number of chunks (R2), only at the
    /// stream start (R3). Held bytes that turn out not to be a BOM become the
    /// start of the first line.
    fn strip_bom<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        let Some(seen) = self.bom else {
            return chunk;
        };
        let mut seen = usize::from(seen);
        let mut at = 0;
        while let Some(&wanted) = BOM.get(seen) {
            match chunk.get(at) {
                None => {
                    // Not decided yet: keep holding (at most 2 bytes).
                    self.bom = u8::try_from(seen).ok();
                    return &[];
                }
                Some(&byte) if byte == wanted => {
                    seen += 1;
                    at += 1;
                }
                Some(_) => {
                    self.line.extend_from_slice(&BOM[..seen]);
                    break;
                }
            }
        }
        self.bom = None;
        &chunk[at..]
    }

    /// Completes the unfinished line with `tail`, its last bytes.
    fn end_line<'c, F>(&mut self, tail: &'c [u8], max: usize, emit: &mut F)
    where
        F: FnMut(Line<'c, '_>),
    {
        match std::mem::replace(&mut self.open, Open::Held) {
            // The rest of a line already reported as too long.
            Open::Discarding => {}
            Open::Data { len, before_value } => {
                if len.saturating_add(tail.len()) > max {
                    emit(Line::TooLong(DATA));
                } else if before_value {
                    emit(Line::DataEnd(tail.strip_prefix(b" ").unwrap_or(tail)));
                } else {
                    emit(Line::DataEnd(tail));
                }
            }
            Open::Held if self.line.len().saturating_add(tail.len()) > max => {
                emit(Line::TooLong(&self.line));
                self.line.clear();
            }
            Open::Held => {
                reserve_vec(&mut self.line, tail.len(), max);
                self.line.extend_from_slice(tail);
                emit(Line::Joined(&self.line));
                self.line.clear();
            }
        }
    }

    /// Continues the unfinished line with `part`, all of a chunk without a
    /// terminator.
    fn more<'c, F>(&mut self, part: &'c [u8], max: usize, emit: &mut F)
    where
        F: FnMut(Line<'c, '_>),
    {
        match self.open {
            Open::Discarding => {}
            Open::Data { len, before_value } => {
                let len = len.saturating_add(part.len());
                if len > max {
                    emit(Line::TooLong(DATA));
                    self.open = Open::Discarding;
                    return;
                }
                let value = if before_value {
                    part.strip_prefix(b" ").unwrap_or(part)
                } else {
                    part
                };
                self.open = Open::Data {
                    len,
                    before_value: false,
                };
                emit(Line::DataMore(value));
            }
            Open::Held => {
                if self.line.len().saturating_add(part.len()) > max {
                    // Refuse before copying, so memory stays bounded by `max`
                    // whatever the input (a line without end, for instance).
                    emit(Line::TooLong(&self.line));
                    self.line.clear();
                    self.open = Open::Discarding;
                    return;
                }
                reserve_vec(&mut self.line, part.len(), max);
                self.line.extend_from_slice(part);
                self.stream_long_data(emit);
            }
        }
    }

    /// Turns the held line into a streamed `data` value once it is long
    /// enough for that to pay: from then on its parts go straight to the
    /// interpreter, each copied once, instead of into the line buffer first.
    /// (A short value is cheaper joined here and handed over whole.)
    fn stream_long_data<'c, F>(&mut self, emit: &mut F)
    where
        F: FnMut(Line<'c, '_>),
    {
        if self.line.len() < STREAM_FROM || !self.line.starts_with(DATA) {
            return;
        }
        let value = &self.line[DATA.len()..];
        self.open = Open::Data {
            len: self.line.len(),
            before_value: value.is_empty(),
        };
        emit(Line::DataOpen(value.strip_prefix(b" ").unwrap_or(value)));
        self.line.clear();
    }

    /// Starts a line with `part`, the end of a chunk without a terminator.
    fn start<'c, F>(&mut self, part: &'c [u8], max: usize, emit: &mut F)
    where
        F: FnMut(Line<'c, '_>),
    {
        if part.len() > max {
            emit(Line::TooLong(part));
            self.open = Open::Discarding;
        } else if part.len() >= STREAM_FROM && part.starts_with(DATA) {
            // A long `data` line: its value streams from the chunk, not
            // through the line buffer (one copy, not two).
            let value = &part[DATA.len()..];
            self.open = Open::Data {
                len: part.len(),
                before_value: value.is_empty(),
            };
            emit(Line::DataOpen(value.strip_prefix(b" ").unwrap_or(value)));
        } else {
            reserve_vec(&mut self.line, part.len(), max);
            self.line.extend_from_slice(part);
            self.stream_long_data(emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Line, LineSplitter};

    /// Lines as owned strings: `!` prefixes a too-long report, `<` a data
    /// value opened, `+` more of it, `>` its end.
    fn lines(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut splitter = LineSplitter::new();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.split(chunk, max, |line| {
                let (mark, bytes) = match line {
                    Line::Chunk(l) | Line::Joined(l) => ("", l),
                    Line::TooLong(l) => ("!", l),
                    Line::DataOpen(l) => ("<", l),
                    Line::DataMore(l) => ("+", l),
                    Line::DataEnd(l) => (">", l),
                };
                out.push(format!("{mark}{}", String::from_utf8_lossy(bytes)));
            });
        }
        out
    }

    #[test]
    fn line_ends_are_found_at_every_offset_and_byte_value() {
        // Every position in and around the word-at-a-time head, with every
        // other byte value before it (high bits, bytes next to CR and LF).
        for len in 0..80 {
            for filler in [
                0u8, b'\t', 0x0B, 0x0C, 0x0E, b'a', 0x7F, 0x80, 0x8A, 0x8D, 0xFF,
            ] {
                for end in [b'\n', b'\r'] {
                    let mut line = vec![filler; len];
                    line.push(end);
                    line.extend_from_slice(b"x\ny");
                    assert_eq!(super::find_line_end(&line), Some(len), "{len} {filler:#x}");
                }
                assert_eq!(super::find_line_end(&vec![filler; len]), None);
            }
        }
        // A borrow from a byte below must not hide the first end.
        assert_eq!(super::find_line_end(b"\x01\x0b\x0a"), Some(2));
        assert_eq!(super::find_line_end(b"\x0e\x0d"), Some(1));
    }

    #[test]
    fn terminators() {
        assert_eq!(lines(&[b"a\r\nb\rc\nd"], 99), ["a", "b", "c"]);
        assert_eq!(lines(&[b"a\n\r"], 99), ["a", ""]);
        assert_eq!(lines(&[b"a\r", b"", b"\nb\n"], 99), ["a", "b"]);
        assert_eq!(lines(&[b"a\r", b"\r"], 99), ["a", ""]);
    }

    #[test]
    fn partial_lines_join() {
        assert_eq!(lines(&[b"ev", b"", b"ent: x", b"\n"], 99), ["event: x"]);
    }

    #[test]
    fn long_data_values_stream_without_the_line_buffer() {
        let long = "v".repeat(300);
        let opened = format!("data: {long}");
        assert_eq!(
            lines(&[opened.as_bytes(), b"cd", b"e\n"], 999),
            [format!("<{long}"), "+cd".into(), ">e".into()]
        );
        // The name completes in the buffer, then the value streams.
        assert_eq!(
            lines(&[b"da", &opened.as_bytes()[2..], b"y\n"], 999),
            [format!("<{long}"), ">y".into()]
        );
        // One space removed, even when the value starts in the next part.
        let spaces = format!("data:{}", " ".repeat(300));
        assert_eq!(
            lines(&[spaces.as_bytes(), b" x\n"], 999),
            [format!("<{}", " ".repeat(299)), "> x".into()]
        );
    }

    #[test]
    fn a_long_data_line_that_opens_in_a_chunk_never_enters_the_line_buffer() {
        let mut splitter = LineSplitter::new();
        let opened = format!("data: {}", "v".repeat(300));
        let mut parts = Vec::new();
        splitter.split(opened.as_bytes(), 999, |line| {
            parts.push(line == Line::DataOpen(&opened.as_bytes()[6..]))
        });
        assert_eq!(parts, [true]);
        assert_eq!(
            splitter.capacity(),
            0,
            "copied once, into the data, not twice"
        );
    }

    #[test]
    fn short_data_values_are_joined() {
        assert_eq!(lines(&[b"data: ab", b"cd", b"e\n"], 99), ["data: abcde"]);
        assert_eq!(
            lines(&[b"dat", b"\n", b"datum: 1", b"\n"], 99),
            ["dat", "datum: 1"]
        );
    }

    #[test]
    fn bom_once_even_split() {
        assert_eq!(
            lines(&[b"\xEF", b"", b"\xBB", b"\xBFx\n\xEF\xBB\xBFy\n"], 99),
            ["x", "\u{FEFF}y"]
        );
        assert_eq!(lines(&[b"\xEF\xBB", b"x\n"], 99), ["\u{FFFD}x"]);
    }

    #[test]
    fn too_long_is_reported_once_and_skipped() {
        assert_eq!(lines(&[b"abcdef\nok\n"], 3), ["!abcdef", "ok"]);
        assert_eq!(lines(&[b"ab", b"cd", b"ef", b"\nok\n"], 3), ["!ab", "ok"]);
        assert_eq!(lines(&[b"abcd", b"ef\r", b"\nok\n"], 3), ["!abcd", "ok"]);
        assert_eq!(
            lines(&[b"data:a", b"bcdef", b"g\nok\n"], 8),
            ["!data:a", "ok"]
        );
        let long = "v".repeat(300);
        let opened = format!("data:{long}");
        assert_eq!(
            lines(&[opened.as_bytes(), b"bcdef", b"g\nok\n"], 308),
            [format!("<{long}"), "!data:".into(), "ok".into()]
        );
        assert_eq!(
            lines(&[opened.as_bytes(), b"bcd\nok\n"], 307),
            [format!("<{long}"), "!data:".into(), "ok".into()]
        );
    }
}
