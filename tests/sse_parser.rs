//! Conformance tests for `pollkit::sse::Parser`: the shared vectors under every
//! chunking (R26), cases of our own per rule, a whole-input reference parser for
//! property tests, and the memory bound.

use std::time::Duration;

use pollkit::sse::{Error, Event, Parser};
use proptest::prelude::*;
use serde::Deserialize;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// What a stream produced: `(type, data, id)` per event, the final `retry()`,
/// the committed last event ID after `finish()`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    events: Vec<(String, String, String)>,
    retry: Option<Duration>,
    last_event_id: String,
}

fn triple(event: &Event) -> (String, String, String) {
    (
        event.event_type().to_owned(),
        event.data().to_owned(),
        event.last_event_id().to_owned(),
    )
}

/// Feeds `chunks` to `parser`, then ends the stream. Returns the outcome and
/// whether any `feed` reported an error.
fn run_with<'a>(mut parser: Parser, chunks: impl IntoIterator<Item = &'a [u8]>) -> (Outcome, bool) {
    let mut events = Vec::new();
    let mut refused = false;
    for chunk in chunks {
        refused |= parser.feed(chunk).is_err();
        while let Some(event) = parser.next_event() {
            events.push(triple(&event));
        }
    }
    parser.finish();
    assert_eq!(parser.next_event(), None, "finish must not dispatch");
    let outcome = Outcome {
        events,
        retry: parser.retry(),
        last_event_id: parser.last_event_id().to_owned(),
    };
    (outcome, refused)
}

fn run<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let (outcome, refused) = run_with(Parser::new(), chunks);
    assert!(!refused, "unexpected size error");
    outcome
}

fn run_whole(input: &[u8]) -> Outcome {
    run([input])
}

/// Splits `input` at `cuts` (sorted, may repeat: that makes empty chunks).
fn split_at_cuts<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    chunks
}

/// The reconnection times set while the input is fed one byte at a time, as
/// seen through `retry()`. A byte completes at most one line, so every change
/// is seen; setting the same value twice in a row is not observable through
/// the public API, so callers compare with a list without consecutive repeats.
fn retry_changes(input: &[u8]) -> Vec<u64> {
    let mut parser = Parser::new();
    let mut seen = Vec::new();
    let mut last = None;
    for byte in input {
        let _ = parser.feed(std::slice::from_ref(byte));
        if parser.retry() != last {
            last = parser.retry();
            seen.extend(last.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        }
    }
    seen
}

fn dedup(mut values: Vec<u64>) -> Vec<u64> {
    values.dedup();
    values
}

/// splitmix64: a tiny seeded PRNG, so random chunkings are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n as u64)) as usize
    }
}

fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let count = rng.below(len + 3);
    let mut cuts: Vec<usize> = (0..count).map(|_| rng.below(len + 1)).collect();
    // Repeat some cuts so that empty chunks occur, including at both ends.
    if rng.below(2) == 0 {
        cuts.push(0);
        cuts.push(len);
        cuts.push(rng.below(len + 1));
    }
    cuts.sort_unstable();
    cuts
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("valid hex in vectors"))
        .collect()
}

// ---------------------------------------------------------------------------
// The shared vectors
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    input: String,
    input_hex: Option<String>,
    events: Vec<VectorEvent>,
    retry: Vec<u64>,
    last_event_id: String,
    chunks_hex: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct VectorEvent {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    id: String,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("data/sse_public.json")).expect("vectors parse")
}

impl Vector {
    fn bytes(&self) -> Vec<u8> {
        match &self.input_hex {
            Some(h) => hex(h),
            None => self.input.as_bytes().to_vec(),
        }
    }

    fn expected(&self) -> Outcome {
        Outcome {
            events: self
                .events
                .iter()
                .map(|e| (e.event_type.clone(), e.data.clone(), e.id.clone()))
                .collect(),
            retry: self.retry.last().map(|&ms| Duration::from_millis(ms)),
            last_event_id: self.last_event_id.clone(),
        }
    }
}

#[test]
fn vectors_load() {
    let all = vectors();
    assert_eq!(all.len(), 62);
    assert!(all.iter().any(|v| v.chunks_hex.is_some()));
}

#[test]
fn vectors_whole_input() {
    for v in vectors() {
        assert_eq!(run_whole(&v.bytes()), v.expected(), "{}", v.name);
    }
}

#[test]
fn vectors_retry_lists() {
    for v in vectors() {
        let bytes = v.bytes();
        assert_eq!(retry_changes(&bytes), dedup(v.retry.clone()), "{}", v.name);
        // The plain reference parser sees every set, repeats included.
        assert_eq!(reference(&bytes).retries, v.retry, "{} (reference)", v.name);
    }
}

#[test]
fn vectors_one_byte_chunks_dispatch_without_delay() {
    for v in vectors() {
        let bytes = v.bytes();
        let mut parser = Parser::new();
        let mut events = Vec::new();
        for (i, byte) in bytes.iter().enumerate() {
            parser
                .feed(std::slice::from_ref(byte))
                .expect("no size error");
            while let Some(event) = parser.next_event() {
                events.push(triple(&event));
            }
            // Every blank line received so far has dispatched already: nothing
            // waits for the next chunk, not even a final lone CR (R26).
            let by_now = reference(&bytes[..=i]).outcome.events;
            assert_eq!(events, by_now, "{} after byte {i}", v.name);
        }
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(chunks), v.expected(), "{}", v.name);
    }
}

#[test]
fn vectors_every_two_chunk_split() {
    for v in vectors() {
        let bytes = v.bytes();
        assert!(bytes.len() <= 600, "{} is small", v.name);
        for cut in 0..=bytes.len() {
            let chunks = split_at_cuts(&bytes, &[cut]);
            assert_eq!(run(chunks), v.expected(), "{} cut at {cut}", v.name);
        }
    }
}

#[test]
fn vectors_random_chunkings_with_empty_chunks() {
    let mut rng = Rng(0x5EED_55E0);
    for v in vectors() {
        let bytes = v.bytes();
        for round in 0..30 {
            let cuts = random_cuts(&mut rng, bytes.len());
            let chunks = split_at_cuts(&bytes, &cuts);
            assert_eq!(
                run(chunks),
                v.expected(),
                "{} round {round} cuts {cuts:?}",
                v.name
            );
        }
    }
}

#[test]
fn vectors_own_chunks() {
    let mut with_chunks = 0;
    for v in vectors() {
        let Some(chunks_hex) = &v.chunks_hex else {
            continue;
        };
        with_chunks += 1;
        let chunks: Vec<Vec<u8>> = chunks_hex.iter().map(|c| hex(c)).collect();
        assert_eq!(chunks.concat(), v.bytes(), "{}: chunks match input", v.name);
        assert_eq!(
            run(chunks.iter().map(Vec::as_slice)),
            v.expected(),
            "{}",
            v.name
        );
    }
    assert!(with_chunks > 0);
}

// ---------------------------------------------------------------------------
// Reference: a whole-input parser written plainly from RULES.md
// ---------------------------------------------------------------------------

struct Reference {
    outcome: Outcome,
    /// Every reconnection time set, in order.
    retries: Vec<u64>,
}

fn reference(input: &[u8]) -> Reference {
    // R2: one leading BOM; R1: decode everything with replacement.
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = String::from_utf8_lossy(input);

    // R4, R5: CRLF, LF or CR; R7: an unterminated last line is not a line.
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                lines.push(std::mem::take(&mut line));
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }

    let mut data = String::new();
    let mut event_type = String::new();
    let mut id_buffer = String::new();
    let mut last_id = String::new();
    let mut retries = Vec::new();
    let mut events = Vec::new();
    for line in lines {
        if line.is_empty() {
            // R19 .. R22
            last_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let kind = if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type.clone()
            };
            events.push((kind, data.clone(), last_id.clone()));
            data.clear();
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue; // R9
        }
        let (name, value) = match line.find(':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line.as_str(), ""),
        };
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            // Digits only (str::parse would also take "+5"); a value too large
            // for u64 is ignored.
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    retries.push(ms);
                }
            }
            _ => {}
        }
    }
    // R24: the pending block is dropped.
    Reference {
        outcome: Outcome {
            events,
            retry: retries.last().map(|&ms| Duration::from_millis(ms)),
            last_event_id: last_id,
        },
        retries,
    }
}

// ---------------------------------------------------------------------------
// Our own cases, one rule each
// ---------------------------------------------------------------------------

fn ev(event_type: &str, data: &str, id: &str) -> (String, String, String) {
    (event_type.to_owned(), data.to_owned(), id.to_owned())
}

fn events_of(chunks: &[&[u8]]) -> Vec<(String, String, String)> {
    run(chunks.iter().copied()).events
}

#[test]
fn r2_bom_split_over_empty_chunks_is_stripped() {
    assert_eq!(
        events_of(&[b"", b"\xEF", b"", b"\xBB", b"\xBF", b"data: x\n\n"]),
        [ev("message", "x", "")]
    );
}

#[test]
fn r2_bom_prefix_that_is_not_a_bom_is_text() {
    // EF BB then 'd': the held bytes are data, decoded as one U+FFFD (R1), so
    // the field name is not "data".
    assert_eq!(events_of(&[b"\xEF\xBB", b"data: x\n\n"]), []);
    assert_eq!(
        events_of(&[b"\xEF", b"\n\ndata: y\n\n"]),
        [ev("message", "y", "")]
    );
}

#[test]
fn r3_second_bom_kept_but_each_stream_strips_its_own() {
    assert_eq!(events_of(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"]), []);
    assert_eq!(
        events_of(&[b"data: a\n\n", b"\xEF\xBB\xBFdata: b\n\n"]),
        [ev("message", "a", "")]
    );
    // finish() starts a new stream, which may open with its own BOM.
    let mut parser = Parser::new();
    parser.feed(b"\xEF\xBB\xBFdata: a\n\n").unwrap();
    parser.finish();
    parser.feed(b"\xEF\xBB\xBFdata: b\n\n").unwrap();
    assert_eq!(parser.next_event().unwrap().data(), "a");
    assert_eq!(parser.next_event().unwrap().data(), "b");
}

#[test]
fn r4_cr_cr_is_a_blank_line() {
    assert_eq!(events_of(&[b"data: a\r\r"]), [ev("message", "a", "")]);
    assert_eq!(events_of(&[b"data: a\r", b"\r"]), [ev("message", "a", "")]);
}

#[test]
fn r5_lf_cr_is_two_terminators() {
    assert_eq!(
        events_of(&[b"data: a\n", b"\r", b"data: b\n\n"]),
        [ev("message", "a", ""), ev("message", "b", "")]
    );
}

#[test]
fn r5_crlf_split_across_empty_chunks_is_one_terminator() {
    assert_eq!(
        events_of(&[
            b"data: a\r",
            b"",
            b"",
            b"\ndata: b\r",
            b"\n",
            b"\r",
            b"",
            b"\n"
        ]),
        [ev("message", "a\nb", "")]
    );
}

#[test]
fn r7_unterminated_retry_has_no_effect() {
    assert_eq!(run_whole(b"retry: 5").retry, None);
    assert_eq!(
        run_whole(b"retry: 5\r").retry,
        Some(Duration::from_millis(5))
    );
}

#[test]
fn r8_event_dispatched_as_soon_as_its_blank_line_arrives() {
    let mut parser = Parser::new();
    parser.feed(b"data: x\n").unwrap();
    assert_eq!(parser.next_event(), None);
    parser.feed(b"\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("message", "x", "")));
}

#[test]
fn r8_lone_cr_at_end_dispatches_before_finish() {
    let mut parser = Parser::new();
    parser.feed(b"data: x\r\r").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "x", "")));
    // The LF that may follow belongs to that CR and adds no blank line.
    parser.feed(b"\ndata: y\n\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "y", "")));
    assert_eq!(parser.next_event(), None);
}

#[test]
fn r9_oversized_comment_is_ignored_without_error() {
    let mut parser = Parser::new().max_event_size(16);
    let comment = [b':'; 100];
    for chunk in [&b"data: a\n"[..], &comment, &comment, b"\n\n"] {
        parser.feed(chunk).unwrap();
    }
    assert_eq!(parser.next_event(), Some(Event::new("", "a", "")));
}

#[test]
fn r17_id_with_nul_is_ignored() {
    assert_eq!(
        run_whole(b"id: 1\nid: 2\0x\ndata: x\n\n").events,
        [ev("message", "x", "1")]
    );
}

#[test]
fn r18_retry_values() {
    let retry = |input: &[u8]| run_whole(input).retry.map(|d| d.as_millis());
    assert_eq!(retry(b"retry: 007\n"), Some(7));
    assert_eq!(retry(b"retry: +5\n"), None);
    assert_eq!(
        retry(b"retry:  5\n"),
        None,
        "second space stays in the value"
    );
    assert_eq!(retry(b"retry:\n"), None, "decision 1: empty is ignored");
    assert_eq!(retry(b"retry: 5 \n"), None);
    assert_eq!(
        retry(b"retry: 18446744073709551615\n"),
        Some(u128::from(u64::MAX))
    );
    // Decision 2: too large for u64 is ignored, the previous value stays.
    assert_eq!(retry(b"retry: 9\nretry: 18446744073709551616\n"), Some(9));
    assert_eq!(
        retry(b"retry: 99999999999999999999999999999999999999999\n"),
        None
    );
}

#[test]
fn r24_unfinished_block_dropped_at_finish() {
    let mut parser = Parser::new();
    parser
        .feed(b"id: 1\ndata: a\n\nid: 2\nevent: e\ndata: b\n")
        .unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "a", "1")));
    parser.finish();
    assert_eq!(parser.next_event(), None);
    assert_eq!(parser.last_event_id(), "1");
    // The dropped block's type and data do not leak into the next stream.
    parser.feed(b"data: c\n\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "c", "1")));
}

#[test]
fn r24_finish_keeps_queued_events_in_order() {
    let mut parser = Parser::new();
    parser.feed(b"data: 1\n\ndata: 2\n\ndata: 3").unwrap();
    parser.finish();
    assert_eq!(parser.next_event().unwrap().data(), "1");
    assert_eq!(parser.next_event().unwrap().data(), "2");
    assert_eq!(parser.next_event(), None);
}

#[test]
fn r25_nul_and_controls_in_data_kept() {
    assert_eq!(
        run_whole(b"data: a\0b\x0B\x0Cc\xC2\x85\n\n").events,
        [ev("message", "a\0b\x0B\x0Cc\u{85}", "")]
    );
}

#[test]
fn r1_split_inside_multibyte_sequence() {
    assert_eq!(
        events_of(&[b"data: \xF0\x9F", b"", b"\x98", b"\x80!\n\n"]),
        [ev("message", "\u{1F600}!", "")]
    );
    // A truncated sequence split across chunks is still one U+FFFD.
    assert_eq!(
        events_of(&[b"id: \xE2", b"\x82", b"\ndata: \xE2", b"(\n\n"]),
        [ev("message", "\u{FFFD}(", "\u{FFFD}")]
    );
}

#[test]
fn r22_message_type_is_the_default_type() {
    assert_eq!(
        run_whole(b"event: message\ndata: x\n\n").events,
        [ev("message", "x", "")]
    );
    let mut parser = Parser::new();
    parser.feed(b"event:\ndata: x\n\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("message", "x", "")));
}

#[test]
fn decision7_seeded_id_survives_a_retry_preamble() {
    let mut parser = Parser::new().with_last_event_id("41");
    assert_eq!(parser.last_event_id(), "41");
    parser.feed(b"retry: 3000\n\n").unwrap();
    assert_eq!(parser.last_event_id(), "41");
    assert_eq!(parser.retry(), Some(Duration::from_millis(3000)));
    parser.feed(b"data: x\n\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "x", "41")));
    // The server may still clear it explicitly.
    parser.feed(b"id\n\n").unwrap();
    assert_eq!(parser.last_event_id(), "");
}

#[test]
fn decision7_finish_carries_id_and_retry_to_the_next_stream() {
    let mut parser = Parser::new();
    parser
        .feed(b"retry: 10\nid: 5\ndata: a\n\nid: 6\ndata: cut")
        .unwrap();
    parser.finish();
    assert_eq!(parser.last_event_id(), "5");
    parser.feed(b"retry: 3000\n\ndata: b\n\n").unwrap();
    assert_eq!(parser.next_event().unwrap().last_event_id(), "5");
    assert_eq!(parser.next_event(), Some(Event::new("", "b", "5")));
    assert_eq!(parser.retry(), Some(Duration::from_millis(3000)));

    let mut parser = Parser::new();
    parser.set_last_event_id("x");
    parser.feed(b"\n").unwrap();
    assert_eq!(parser.last_event_id(), "x");
}

#[test]
fn size_limit_line_refused_and_parsing_resumes() {
    let mut parser = Parser::new().max_event_size(8);
    assert_eq!(parser.feed(b"data: ok\n\n"), Ok(()));
    let result =
        parser.feed(b"id: 7\ndata: 0123456789\ndata: more\nretry: 1\n\nid: 8\ndata: b\n\n");
    assert_eq!(result, Err(Error::EventTooLarge { limit: 8 }));
    // The event before, then the one after the refused block, in order.
    assert_eq!(parser.next_event(), Some(Event::new("", "ok", "")));
    assert_eq!(parser.next_event(), Some(Event::new("", "b", "8")));
    assert_eq!(parser.next_event(), None);
    // The refused block's lines after the long one were skipped.
    assert_eq!(parser.retry(), None);
    assert_eq!(parser.feed(b"data: c\n\n"), Ok(()));
    assert_eq!(parser.next_event(), Some(Event::new("", "c", "8")));
}

#[test]
fn size_limit_refused_block_does_not_commit_its_id() {
    let mut parser = Parser::new().max_event_size(8);
    parser.feed(b"id: 1\ndata: a\n\nid: 2\n").unwrap();
    assert!(parser.feed(b"data:012").is_ok(), "8 bytes fit");
    assert!(parser.feed(b"3456789").is_err());
    assert!(parser.feed(b"more and more").is_ok(), "one error per block");
    parser.feed(b"\n\ndata: z\n\n").unwrap();
    assert_eq!(parser.last_event_id(), "1");
    assert_eq!(parser.next_event(), Some(Event::new("", "a", "1")));
    assert_eq!(parser.next_event(), Some(Event::new("", "z", "1")));
}

/// Issue 24: the type and ID of a block still lying in the chunk (not yet
/// copied) go with the block when its data is refused, as the copied ones do:
/// the next block is of type "message" and the refused block's ID is never
/// committed, wherever the input is cut.
#[test]
fn size_limit_refused_block_takes_its_uncopied_type_and_id_along() {
    // Lines within the limit (10), data past it.
    let input = b"event:big\nid:9\ndata:12345\ndata:12345\n\ndata: ok\n\n";
    for cut in 0..=input.len() {
        let mut parser = Parser::new().max_event_size(10);
        let first = parser.feed(&input[..cut]);
        let second = parser.feed(&input[cut..]);
        assert!(first.is_err() || second.is_err(), "cut at {cut}: refused");
        assert_eq!(
            parser.next_event(),
            Some(Event::new("", "ok", "")),
            "cut at {cut}"
        );
        assert_eq!(parser.next_event(), None);
        assert_eq!(parser.last_event_id(), "", "cut at {cut}");
    }
}

#[test]
fn size_limit_many_small_data_lines() {
    let mut parser = Parser::new().max_event_size(1024);
    let mut first_error = None;
    for i in 0..1000 {
        if parser.feed(b"data: 0123456789\n").is_err() {
            first_error = Some(i);
            break;
        }
    }
    // Each line adds 11 bytes (10 + LF): the 94th would exceed 1024.
    assert_eq!(first_error, Some(93));
    assert!(parser.buffered_capacity() <= 2 * 1024);
    parser.feed(b"data: tail\n\ndata: next\n\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "next", "")));
    assert_eq!(parser.next_event(), None);
}

#[test]
fn size_limit_exact_boundaries() {
    let mut parser = Parser::new().max_event_size(10);
    // A line of exactly 10 bytes is accepted, data of exactly 10 bytes too.
    parser.feed(b"data: abcd\ndata:abcde\n\n").unwrap();
    assert_eq!(parser.next_event().unwrap().data(), "abcd\nabcde");
    assert!(parser.feed(b"data:abcdef\n\n").is_err());
    // Zero: every non-empty field line is refused, blank lines still work.
    let mut parser = Parser::new().max_event_size(0);
    assert!(parser.feed(b"id: 1\n\n\n").is_err());
    assert_eq!(parser.last_event_id(), "");
    parser.finish();
}

#[test]
fn size_limit_one_gib_line_memory_stays_bounded() {
    const LIMIT: usize = 1 << 20;
    const CHUNK: usize = 64 << 10;
    let chunk = vec![b'a'; CHUNK];
    let mut parser = Parser::new();
    let mut fed = 0usize;
    let mut refused_at = None;
    while fed < 1 << 30 {
        let result = parser.feed(&chunk);
        fed += CHUNK;
        assert!(parser.buffered_capacity() <= LIMIT, "memory bounded");
        if result.is_err() {
            refused_at = Some(fed);
            break;
        }
    }
    assert_eq!(
        refused_at,
        Some(LIMIT + CHUNK),
        "refused on the first chunk past the limit"
    );
    // Keep going: the rest of the line is skipped without errors or growth.
    for _ in 0..256 {
        parser.feed(&chunk).unwrap();
    }
    assert!(parser.buffered_capacity() <= LIMIT);
    parser.feed(b"\n\ndata: after\n\n").unwrap();
    assert_eq!(parser.next_event(), Some(Event::new("", "after", "")));
}

#[test]
fn size_limit_invalid_utf8_expansion_counts() {
    // 6 invalid bytes decode to 18 bytes of U+FFFD: past a limit of 10.
    let mut parser = Parser::new().max_event_size(10);
    assert!(parser.feed(b"data:\xFF\xFF\xFF\xFF\xFF\xFF\n\n").is_err());
    assert_eq!(parser.next_event(), None);
}

#[test]
fn public_types_are_send_sync_unpin() {
    fn check<T: Send + Sync + Unpin + 'static>() {}
    check::<Parser>();
    check::<Event>();
    check::<Error>();
}

#[test]
fn error_message_is_readable() {
    let message = Error::EventTooLarge { limit: 1024 }.to_string();
    assert!(message.contains("1024 bytes"), "{message}");
}

#[test]
fn event_equality_and_hash_agree() {
    use std::collections::HashSet;
    let set: HashSet<Event> = [Event::new("message", "d", "1"), Event::new("", "d", "1")].into();
    assert_eq!(set.len(), 1);
    assert_ne!(Event::new("a", "bc", ""), Event::new("ab", "c", ""));
}

// ---------------------------------------------------------------------------
// Allocations: one per dispatched event in steady state
// ---------------------------------------------------------------------------

/// Counts the allocations made by the current thread, so tests running in
/// parallel do not disturb each other.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_allocation() {
    // try_with: the thread-local may already be gone while a thread exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made while `parser` parses `input` in `chunk`-sized pieces, and
/// the number of events it dispatched.
fn allocations_per_pass(parser: &mut Parser, input: &[u8], chunk: usize) -> (usize, usize) {
    let before = ALLOCATIONS.with(std::cell::Cell::get);
    let mut events = 0;
    for piece in input.chunks(chunk) {
        parser.feed(piece).expect("within limits");
        while let Some(event) = parser.next_event() {
            events += 1;
            drop(event);
        }
    }
    parser.finish();
    (ALLOCATIONS.with(std::cell::Cell::get) - before, events)
}

#[test]
fn one_allocation_per_event_in_steady_state() {
    let mut small = Vec::new();
    for i in 0..2000 {
        small.extend_from_slice(
            format!(
                "id: {i}\r\nevent: progress\r\ndata: {{\"percent\":{}}}\r\n: ping\r\n\r\n",
                i % 101
            )
            .as_bytes(),
        );
    }
    let mut large = Vec::new();
    for i in 0..8 {
        large.extend_from_slice(format!("id: {i}\ndata: ").as_bytes());
        large.extend(std::iter::repeat_n(b'x', 64 * 1024));
        large.extend_from_slice(b"\n\n");
    }
    for (input, chunk) in [
        (&small, 16 * 1024),
        (&small, 7),
        (&small, 1),
        (&large, 16 * 1024),
    ] {
        let mut parser = Parser::new();
        // The first pass sizes the reused buffers and the queue.
        allocations_per_pass(&mut parser, input, chunk);
        let (allocations, events) = allocations_per_pass(&mut parser, input, chunk);
        assert!(events > 0);
        assert_eq!(allocations, events, "chunk size {chunk}");
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Pieces that make interesting event streams, plus any byte at all.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(b"data:".to_vec()),
        2 => Just(b"data: ".to_vec()),
        2 => Just(b"id:".to_vec()),
        1 => Just(b"id: ".to_vec()),
        1 => Just(b"event:".to_vec()),
        2 => Just(b"retry:".to_vec()),
        2 => Just(b":".to_vec()),
        4 => Just(b"\n".to_vec()),
        2 => Just(b"\r".to_vec()),
        2 => Just(b"\r\n".to_vec()),
        2 => Just(b" ".to_vec()),
        1 => Just(b"\xEF\xBB\xBF".to_vec()),
        1 => Just(b"\xEF".to_vec()),
        1 => Just(b"\xBB\xBF".to_vec()),
        1 => Just(b"\xFF".to_vec()),
        1 => Just(b"\xE2\x82".to_vec()),
        1 => Just("€".as_bytes().to_vec()),
        1 => Just(b"\0".to_vec()),
        2 => "[0-9]{1,3}".prop_map(String::into_bytes),
        1 => Just(b"18446744073709551616".to_vec()),
        2 => "[a-z+]{1,4}".prop_map(String::into_bytes),
        2 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn stream_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    prop::collection::vec(piece(), 0..60)
        .prop_map(|pieces| pieces.concat())
        .prop_flat_map(|bytes| {
            let len = bytes.len();
            let cuts = prop::collection::vec(0..=len, 0..16).prop_map(|mut cuts| {
                cuts.sort_unstable();
                cuts
            });
            (Just(bytes), cuts)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn chunked_matches_reference_and_whole((bytes, cuts) in stream_and_cuts()) {
        let expected = reference(&bytes);
        let whole = run_whole(&bytes);
        prop_assert_eq!(&whole, &expected.outcome);
        let chunked = run(split_at_cuts(&bytes, &cuts));
        prop_assert_eq!(&chunked, &expected.outcome);
        prop_assert_eq!(retry_changes(&bytes), dedup(expected.retries));
    }

    #[test]
    fn chunked_matches_whole_under_a_small_limit(
        (bytes, cuts) in stream_and_cuts(),
        limit in 0usize..24,
    ) {
        let (whole, whole_refused) = run_with(Parser::new().max_event_size(limit), [&bytes[..]]);
        let (chunked, chunked_refused) =
            run_with(Parser::new().max_event_size(limit), split_at_cuts(&bytes, &cuts));
        prop_assert_eq!(whole, chunked);
        prop_assert_eq!(whole_refused, chunked_refused);
    }

    #[test]
    fn never_panics_and_memory_stays_bounded(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..32),
        limit in 0usize..48,
    ) {
        let mut parser = Parser::new().max_event_size(limit);
        for chunk in &chunks {
            let _ = parser.feed(chunk);
            while parser.next_event().is_some() {}
            // Lines and data stay within the limit; U+FFFD may triple the
            // decoded type, id and data; growth starts at 64 bytes.
            prop_assert!(parser.buffered_capacity() <= 16 * limit + 5 * 64);
        }
        parser.finish();
    }
}

/// Issue 24: an event holds its own bytes, not the chunk it came from nor
/// the parser's buffers: exactly its size when it lay inside one chunk, at
/// most 1/16 more when a large one took over the buffer its data spanned
/// chunks in, whatever the sizes before it.
#[test]
fn an_event_holds_no_more_than_its_own_bytes() {
    let mut input = Vec::new();
    let sizes = [64 << 10, 64 << 10, 8 << 10, 100, 200 << 10, 5 << 10, 10];
    for (i, size) in sizes.iter().enumerate() {
        input.extend_from_slice(format!("id: {i}\nevent: e{i}\ndata: ").as_bytes());
        input.extend(std::iter::repeat_n(b'a' + i as u8, *size));
        input.extend_from_slice(b"\n\n");
    }
    for chunk in [16 << 10, 1460, 7] {
        let mut parser = Parser::new();
        let mut events = Vec::new();
        for piece in input.chunks(chunk) {
            parser.feed(piece).unwrap();
            // Held past the next chunk, and to the end.
            events.extend(std::iter::from_fn(|| parser.next_event()));
        }
        assert_eq!(events.len(), sizes.len());
        for (i, (event, size)) in events.iter().zip(sizes).enumerate() {
            assert_eq!(event.data().len(), size);
            assert_eq!(event.last_event_id(), i.to_string());
            let own = size + event.event_type().len() + event.last_event_id().len();
            assert!(
                event.capacity() <= own + own / 16,
                "event {i} in {chunk}-byte chunks holds {} bytes for {own}",
                event.capacity()
            );
        }
    }
    // One data line inside one chunk: the event is exactly its bytes.
    let mut parser = Parser::new();
    parser.feed(b"id: 7\nevent: e\ndata: hello\n\n").unwrap();
    let event = parser.next_event().unwrap();
    assert_eq!(event.capacity(), "helloe7".len());
}

/// Issue 24: a large event's data that spans chunks is decoded part by part
/// into the buffer the event takes over; a UTF-8 sequence cut by a chunk
/// boundary, and invalid bytes, decode as in one piece.
#[test]
fn large_event_split_inside_utf8_sequences_decodes_as_whole() {
    let mut value = Vec::new();
    for i in 0..3000u32 {
        value.extend_from_slice("é€😀".as_bytes());
        if i % 500 == 0 {
            value.extend_from_slice(b"\xF0\x9F\xFF\xE2\x82");
        }
    }
    let mut input = b"data: ".to_vec();
    input.extend_from_slice(&value);
    input.extend_from_slice(b"\n\n");
    let expected = String::from_utf8_lossy(&value).into_owned();
    for chunk in [1, 2, 3, 5, 7, 1460, 4096, 16 << 10] {
        let mut parser = Parser::new();
        for piece in input.chunks(chunk) {
            parser.feed(piece).unwrap();
        }
        let event = parser.next_event().expect("one event");
        assert!(event.data() == expected, "{chunk}-byte chunks");
    }
}
