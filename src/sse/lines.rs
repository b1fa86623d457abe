//! From chunks of bytes to lines: the BOM (R2, R3), line terminators (R4–R7) and
//! the line length bound, independent of where the chunks were split (R26).

use super::buf::reserve_vec;

/// The UTF-8 encoding of U+FEFF.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One line handed to the interpreter.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A complete line, without its terminator.
    Complete(&'a [u8]),
    /// A line longer than the limit. The slice holds its first bytes (at least
    /// one); the rest of the line is discarded without being buffered and no
    /// `Complete` follows for it.
    TooLong(&'a [u8]),
}

/// Splits a byte stream into lines, across chunk boundaries.
///
/// A line that lies entirely inside one chunk is handed out straight from the
/// chunk; only a line that spans chunks is copied, once, into a reused buffer.
/// Every byte is scanned once (`memchr2`), so the cost is linear in the input
/// whatever the chunk sizes.
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
    /// Inside a line already reported as [`Line::TooLong`]: drop bytes up to its
    /// terminator.
    discarding: bool,
}

impl LineSplitter {
    /// A splitter at the start of a stream.
    pub(crate) const fn new() -> Self {
        Self {
            bom: Some(0),
            after_cr: false,
            line: Vec::new(),
            discarding: false,
        }
    }

    /// Forgets the unfinished line (R7) and starts a new stream, keeping the
    /// buffer's capacity.
    pub(crate) fn reset(&mut self) {
        self.bom = Some(0);
        self.after_cr = false;
        self.line.clear();
        self.discarding = false;
    }

    /// Bytes of heap memory held.
    pub(crate) fn capacity(&self) -> usize {
        self.line.capacity()
    }

    /// Splits `chunk`, calling `emit` for every line it completes, in order.
    ///
    /// A line longer than `max` bytes (terminator excluded) is reported as
    /// [`Line::TooLong`] as soon as that is known, and is never buffered whole.
    pub(crate) fn split<F>(&mut self, chunk: &[u8], max: usize, mut emit: F)
    where
        F: FnMut(Line<'_>),
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
            }
        }
        while let Some(end) = memchr::memchr2(b'\r', b'\n', rest) {
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    // R4: CR LF is one terminator.
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // R5: the LF may still come; the line ends now regardless, so
                    // a blank line dispatches without waiting for the next chunk
                    // or for the end of the stream.
                    None => self.after_cr = true,
                }
            }
            self.end_line(&rest[..end], max, &mut emit);
            rest = &rest[next..];
        }
        if !rest.is_empty() {
            self.hold(rest, max, &mut emit);
        }
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

    /// Completes the current line with `tail`, its last bytes.
    fn end_line<F>(&mut self, tail: &[u8], max: usize, emit: &mut F)
    where
        F: FnMut(Line<'_>),
    {
        if self.discarding {
            // The rest of a line already reported as too long.
            self.discarding = false;
        } else if self.line.is_empty() {
            // The common case: the whole line is in this chunk, no copy.
            if tail.len() > max {
                emit(Line::TooLong(tail));
            } else {
                emit(Line::Complete(tail));
            }
        } else if self.line.len() + tail.len() > max {
            emit(Line::TooLong(&self.line));
            self.line.clear();
        } else {
            reserve_vec(&mut self.line, tail.len(), max);
            self.line.extend_from_slice(tail);
            emit(Line::Complete(&self.line));
            self.line.clear();
        }
    }

    /// Keeps `partial`, a line start without terminator, for the next chunk.
    fn hold<F>(&mut self, partial: &[u8], max: usize, emit: &mut F)
    where
        F: FnMut(Line<'_>),
    {
        if self.discarding {
            return;
        }
        if self.line.len() + partial.len() > max {
            // Refuse before copying, so memory stays bounded by `max` whatever
            // the input (a line without end, for instance).
            let prefix = if self.line.is_empty() {
                partial
            } else {
                &self.line
            };
            emit(Line::TooLong(prefix));
            self.line.clear();
            self.discarding = true;
        } else {
            reserve_vec(&mut self.line, partial.len(), max);
            self.line.extend_from_slice(partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Line, LineSplitter};

    /// Lines as owned strings, `!` prefixing a too-long report.
    fn lines(chunks: &[&[u8]], max: usize) -> Vec<String> {
        let mut splitter = LineSplitter::new();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.split(chunk, max, |line| {
                out.push(match line {
                    Line::Complete(l) => String::from_utf8_lossy(l).into_owned(),
                    Line::TooLong(l) => format!("!{}", String::from_utf8_lossy(l)),
                });
            });
        }
        out
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
        assert_eq!(lines(&[b"da", b"", b"ta: x", b"\n"], 99), ["data: x"]);
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
    }
}
