//! Coverage-guided fuzzing of `pollkit::sse::Parser` against a plain reference
//! model written from `/work/shared/sse/RULES.md`.
//!
//! The input is `[limit, mode, cut bytes..., stream...]`:
//! - `limit`: the low 2 bits pick the parser's `max_event_size`: `0` the
//!   default (1 MiB, never reached by fuzz inputs), otherwise `limit >> 2`
//!   bytes (0..=63), so the size limit and the memory bound are fuzzed too
//!   (the model knows the limit, so every event is still checked);
//! - `mode`: how the stream is cut into chunks (by cut offsets taken from the
//!   input, one byte at a time, or in fixed-size pieces);
//! - the rest is the event stream.
//!
//! For every input the parser is run on the whole stream and on the chunked
//! stream, then continued on a second stream (a reconnect, after `finish`),
//! and a fresh parser seeded with the resume ID reads it too. At every chunk
//! boundary the events dispatched so far, `retry()` and `last_event_id()`
//! must equal the model's at that byte offset (R26: any chunking gives the
//! same result, and nothing waits for the next chunk), and with a small limit
//! the parser's buffers must stay within a bound linear in the limit whatever
//! the input length. A panic, an overflow (the fuzz build has overflow checks
//! on) or a failed assertion is a crash.
//!
//! ```text
//! cd fuzz
//! RUSTC_BOOTSTRAP=1 cargo fuzz run sse_parser -- -jobs=1 -runs=10000000 -max_len=4096
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use pollkit::sse::{Event, Parser};

/// The parser's default `max_event_size`.
const DEFAULT_LIMIT: usize = 1 << 20;
/// The UTF-8 encoding of U+FEFF.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `(type, data, id)` of one event.
type Triple = (String, String, String);

fuzz_target!(|input: &[u8]| check(input));

fn check(input: &[u8]) {
    let (limit, chunks, stream) = layout(input);
    let expected = model(stream, limit, "", None);
    let (whole, whole_refused) = run(
        Parser::new().max_event_size(limit),
        &[stream],
        &expected,
        limit,
    );
    let (chunked, chunked_refused) = run(
        Parser::new().max_event_size(limit),
        &chunks,
        &expected,
        limit,
    );
    assert_eq!(
        whole_refused, chunked_refused,
        "refusal depends on chunking"
    );
    assert_eq!(
        whole_refused, expected.refused,
        "refusal differs from the model"
    );
    assert_eq!(whole.last_event_id(), chunked.last_event_id());
    assert_eq!(whole.retry(), chunked.retry());

    // A reconnect: the same parser, after `finish`, reads a new stream whose
    // ID buffer starts from the committed ID (decision 7). Chunking was
    // checked above; one byte at a time is fed whole here, to save time.
    let id = chunked.last_event_id().to_owned();
    let retry = chunked.retry().map(|d| d.as_millis());
    let expected = model(stream, limit, &id, retry);
    let again = if chunks.len() > 64 {
        vec![stream]
    } else {
        chunks
    };
    let (_, refused) = run(chunked, &again, &expected, limit);
    assert_eq!(refused, expected.refused);
    if !id.is_empty() {
        // A fresh parser seeded with the same ID reads it the same way.
        let expected = model(stream, limit, &id, None);
        let seeded = Parser::new().max_event_size(limit).with_last_event_id(id);
        run(seeded, &[stream], &expected, limit);
    }
}

/// Splits the fuzz input into the small limit, the chunks and the stream.
fn layout(input: &[u8]) -> (usize, Vec<&[u8]>, &[u8]) {
    let (&limit, rest) = input.split_first().unwrap_or((&0, &[]));
    let (&mode, rest) = rest.split_first().unwrap_or((&0, &[]));
    let limit = if limit & 3 == 0 {
        DEFAULT_LIMIT
    } else {
        usize::from(limit >> 2)
    };
    let (stream, cuts) = match mode & 3 {
        0 => {
            // Up to 31 cut offsets, two bytes each, taken from the input.
            let n = usize::from(mode >> 2).min(rest.len() / 2);
            let (raw, stream) = rest.split_at(2 * n);
            let mut cuts: Vec<usize> = raw
                .chunks_exact(2)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])) % (stream.len() + 1))
                .collect();
            // Repeated cuts make empty chunks, which must change nothing.
            cuts.sort_unstable();
            (stream, cuts)
        }
        1 => (rest, (1..rest.len()).collect()),
        _ => {
            let size = usize::from(mode >> 2) + 1;
            (rest, (size..rest.len()).step_by(size).collect())
        }
    };
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        chunks.push(&stream[start..cut]);
        start = cut;
    }
    chunks.push(&stream[start..]);
    (limit, chunks, stream)
}

/// The upper bound on the parser's buffers for a limit `l`: one line of `l`
/// raw bytes, data of `l` bytes (plus one invalid-UTF-8 overshoot of up to 3×
/// before it is refused), an event type and two ids of up to `3l` bytes
/// each after U+FFFD replacement, with amortised doubling and 64-byte
/// minimum growth. Linear in `l`, independent of the input length.
fn memory_bound(l: usize) -> usize {
    16 * l + 5 * 64
}

/// Feeds `chunks` to `parser` and checks it against `expected` after every
/// chunk and after `finish`. Returns the parser and whether any feed refused
/// an event.
fn run(mut parser: Parser, chunks: &[&[u8]], expected: &Expected, limit: usize) -> (Parser, bool) {
    let mut offset = 0;
    let mut taken = 0;
    let mut refused = false;
    for chunk in chunks {
        refused |= parser.feed(chunk).is_err();
        offset += chunk.len();
        while let Some(event) = parser.next_event() {
            let (at, want) = expected
                .events
                .get(taken)
                .unwrap_or_else(|| panic!("an extra event {event:?}"));
            assert!(
                *at <= offset,
                "event {taken} dispatched before its blank line"
            );
            assert_eq!(&triple(&event), want, "event {taken}");
            taken += 1;
        }
        assert_eq!(
            taken,
            expected.events_by(offset),
            "an event waits at offset {offset}"
        );
        assert_eq!(
            parser.retry().map(|d| d.as_millis()),
            expected.retry_at(offset)
        );
        assert_eq!(parser.last_event_id(), expected.id_at(offset));
        if limit < DEFAULT_LIMIT {
            let held = parser.buffered_capacity();
            assert!(
                held <= memory_bound(limit),
                "{held} bytes held for a limit of {limit}"
            );
        }
    }
    parser.finish();
    assert!(parser.next_event().is_none(), "finish dispatched an event");
    assert_eq!(taken, expected.events.len());
    assert_eq!(
        parser.retry().map(|d| d.as_millis()),
        expected.retry_at(usize::MAX)
    );
    assert_eq!(parser.last_event_id(), expected.id_at(usize::MAX));
    (parser, refused)
}

fn triple(event: &Event) -> Triple {
    (
        event.event_type().to_owned(),
        event.data().to_owned(),
        event.last_event_id().to_owned(),
    )
}

// ---------------------------------------------------------------------------
// The reference model, written plainly from RULES.md
// ---------------------------------------------------------------------------

/// What the model says happens, each with the byte offset of the input by
/// which it has happened.
struct Expected {
    events: Vec<(usize, Triple)>,
    retries: Vec<(usize, u128)>,
    commits: Vec<(usize, String)>,
    initial_id: String,
    initial_retry: Option<u128>,
    /// Whether a line or event went past the limit.
    refused: bool,
}

impl Expected {
    fn events_by(&self, offset: usize) -> usize {
        self.events.partition_point(|(at, _)| *at <= offset)
    }

    fn retry_at(&self, offset: usize) -> Option<u128> {
        let n = self.retries.partition_point(|(at, _)| *at <= offset);
        n.checked_sub(1)
            .map(|i| self.retries[i].1)
            .or(self.initial_retry)
    }

    fn id_at(&self, offset: usize) -> &str {
        let n = self.commits.partition_point(|(at, _)| *at <= offset);
        n.checked_sub(1)
            .map_or(self.initial_id.as_str(), |i| self.commits[i].1.as_str())
    }
}

/// One line of the decoded stream.
struct Line {
    text: String,
    /// Its length in input bytes, without the terminator.
    raw_len: usize,
    /// The input offset just past its terminator's first byte: the line is
    /// complete once that byte has arrived (a CR ends a line at once, R5).
    done_at: usize,
}

/// The reference: decode the whole input, split lines, interpret them.
///
/// `limit` is `max_event_size` as documented on `Parser::max_event_size`: a
/// line longer than `limit` raw bytes (comments excepted), or data longer
/// than `limit` decoded bytes (without its final LF), refuses the block: it is
/// dropped as at the end of the stream (R24) and every line up to its blank
/// line is ignored. `start_id` and `start_retry` are what a previous
/// connection left (decision 7).
fn model(input: &[u8], limit: usize, start_id: &str, start_retry: Option<u128>) -> Expected {
    // R2: one leading BOM.
    let skip = if input.starts_with(BOM) { BOM.len() } else { 0 };
    // R1: decode everything, one U+FFFD per maximal invalid sequence; keep the
    // input span of each character.
    let mut chars: Vec<(char, usize)> = Vec::new();
    let mut at = skip;
    for chunk in input[skip..].utf8_chunks() {
        for c in chunk.valid().chars() {
            chars.push((c, at));
            at += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            chars.push((char::REPLACEMENT_CHARACTER, at));
            at += chunk.invalid().len();
        }
    }

    // R4, R5, R6: CRLF, LF or CR end a line; R7: text after the last
    // terminator is not a line.
    let mut lines = Vec::new();
    let mut text = String::new();
    let mut start = skip;
    let mut i = 0;
    while i < chars.len() {
        let (c, pos) = chars[i];
        i += 1;
        if c != '\r' && c != '\n' {
            text.push(c);
            continue;
        }
        if c == '\r' && chars.get(i).is_some_and(|&(next, _)| next == '\n') {
            i += 1;
        }
        lines.push(Line {
            text: std::mem::take(&mut text),
            raw_len: pos - start,
            done_at: pos + 1,
        });
        start = chars.get(i).map_or(input.len(), |&(_, p)| p);
    }
    let tail_len = input.len() - start;

    let mut expected = Expected {
        events: Vec::new(),
        retries: Vec::new(),
        commits: Vec::new(),
        initial_id: start_id.to_owned(),
        initial_retry: start_retry,
        refused: false,
    };
    let mut data = String::new();
    let mut event_type = String::new();
    let mut id_buffer = start_id.to_owned();
    let mut last_id = start_id.to_owned();
    let mut skipping = false;

    for line in &lines {
        if skipping {
            // Inside a refused block: skip up to its blank line.
            skipping = !line.text.is_empty();
            continue;
        }
        let mut refuse = line.raw_len > limit && !line.text.starts_with(':');
        if line.raw_len > limit && !refuse {
            continue; // An over-long comment is harmless (R9).
        }
        if !refuse {
            if line.text.is_empty() {
                // R19: commit the ID, every time.
                last_id.clone_from(&id_buffer);
                expected.commits.push((line.done_at, last_id.clone()));
                // R20, R21, R22.
                if let Some(d) = data.strip_suffix('\n') {
                    let kind = if event_type.is_empty() {
                        "message"
                    } else {
                        &event_type
                    };
                    expected.events.push((
                        line.done_at,
                        (kind.to_owned(), d.to_owned(), last_id.clone()),
                    ));
                }
                data.clear();
                event_type.clear();
                continue;
            }
            if line.text.starts_with(':') {
                continue; // R9
            }
            // R10, R11, R12.
            let (name, value) = match line.text.find(':') {
                Some(colon) => {
                    let value = &line.text[colon + 1..];
                    (
                        &line.text[..colon],
                        value.strip_prefix(' ').unwrap_or(value),
                    )
                }
                None => (line.text.as_str(), ""),
            };
            // R13, R14: exact names; R15 .. R18.
            match name {
                "event" => event_type = value.to_owned(),
                "data" if data.len() + value.len() > limit => refuse = true,
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => id_buffer = value.to_owned(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    // Decision 2: a value past u64 is ignored.
                    if let Ok(ms) = value.parse::<u64>() {
                        expected.retries.push((line.done_at, u128::from(ms)));
                    }
                }
                _ => {}
            }
        }
        if refuse {
            // The block is dropped like one cut by the end of the stream.
            expected.refused = true;
            skipping = true;
            data.clear();
            event_type.clear();
            id_buffer.clone_from(&last_id);
        }
    }
    // An unfinished last line is refused as soon as it is known to be too
    // long, except for the up to two bytes held while the parser cannot yet
    // tell whether they start a BOM.
    let bom_pending = input.len() < BOM.len() && BOM.starts_with(input);
    let tail_text: String = chars
        .iter()
        .filter(|&&(_, p)| p >= start)
        .map(|&(c, _)| c)
        .collect();
    if !skipping && tail_len > limit && !tail_text.starts_with(':') && !bom_pending {
        expected.refused = true;
    }
    // R24: the pending block is dropped.
    expected
}
