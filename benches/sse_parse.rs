//! Throughput of `pollkit::sse::Parser` side by side with the SSE parsers users
//! pick today (sse-stream, sse-core, sseer, eventsource-stream), and a bare
//! CR/LF scan with `memchr2`: the ceiling of any line splitter.
//!
//! One criterion group per input (issue 24):
//! - 100k small events (`id` + one JSON `data` line) in 16 KiB chunks,
//! - the same in 1,460-byte chunks (one TCP segment),
//! - the same in 7-byte chunks (nearly every line split across chunks),
//! - 1,000 events of 64 KiB of data in 16 KiB chunks,
//! - 100k three-line CRLF events (`event`, `id`, `data`) in 16 KiB chunks.
//!
//! Before anything is timed, every parser reads every input once and must
//! produce the same events: the count and a checksum of each event's type,
//! data and ID agree, or the bench panics. `cargo test --benches` runs that
//! check on its own (criterion's test mode runs each routine once).

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

/// The number of small and of CRLF events.
const SMALL_EVENTS: usize = 100_000;
/// The number of 64 KiB events.
const LARGE_EVENTS: usize = 1_000;

/// `count` job-progress events, the typical SSE payload.
fn small_events(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let event = format!(
            "id: {i}\ndata: {{\"jobId\":\"job-{:08}\",\"percent\":{}}}\n\n",
            i / 100,
            i % 101
        );
        out.extend_from_slice(event.as_bytes());
    }
    out
}

/// `count` events of 64 KiB of data each, one `data` line per event.
fn large_events(count: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..64 * 1024).map(|i| b"{\"k\":[1,2,3]}"[i % 13]).collect();
    let mut out = Vec::new();
    for i in 0..count {
        out.extend_from_slice(format!("id: {i}\ndata: ").as_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"\n\n");
    }
    out
}

/// `count` events of three lines each, ended by CR LF as some servers do.
fn crlf_events(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        let event = format!(
            "event: progress\r\nid: {i}\r\ndata: {{\"jobId\":\"job-{:08}\",\"percent\":{}}}\r\n\r\n",
            i / 100,
            i % 101
        );
        out.extend_from_slice(event.as_bytes());
    }
    out
}

fn chunked(input: &[u8], size: usize) -> Vec<Bytes> {
    input.chunks(size).map(Bytes::copy_from_slice).collect()
}

/// What a parser hands over for one event: type, data, last event ID.
trait Sink {
    fn event(&mut self, event_type: &str, data: &str, id: &str);
}

/// The timed sink: as little work as reading the three fields.
#[derive(Default)]
struct Touch(usize);

impl Sink for Touch {
    fn event(&mut self, event_type: &str, data: &str, id: &str) {
        self.0 += black_box(event_type).len() + black_box(data).len() + black_box(id).len();
    }
}

/// The correctness sink: event count and an FNV-1a checksum of every field.
struct Checksum {
    events: usize,
    hash: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self {
            events: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Checksum {
    fn mix(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().chain(&[0xff]) {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Sink for Checksum {
    fn event(&mut self, event_type: &str, data: &str, id: &str) {
        self.events += 1;
        // An empty type and "message" are the same event type.
        let event_type = if event_type.is_empty() {
            "message"
        } else {
            event_type
        };
        self.mix(event_type.as_bytes());
        self.mix(data.as_bytes());
        self.mix(id.as_bytes());
    }
}

fn pollkit<S: Sink>(chunks: &[Bytes], sink: &mut S) {
    let mut parser = pollkit::sse::Parser::new();
    for chunk in chunks {
        if parser.feed(chunk).is_err() {
            panic!("bench input within limits");
        }
        while let Some(event) = parser.next_event() {
            sink.event(event.event_type(), event.data(), event.last_event_id());
        }
    }
    parser.finish();
}

fn byte_stream(chunks: &[Bytes]) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + '_ {
    futures::stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>))
}

fn sse_stream<S: Sink>(chunks: &[Bytes], sink: &mut S) {
    futures::executor::block_on(async {
        let mut events = sse_stream::SseByteStream::new(byte_stream(chunks));
        while let Some(event) = events.next().await {
            match event {
                // Raw blocks: every event of the inputs carries its own `id`,
                // so a block's `id` is the last event ID.
                Ok(block) => {
                    if let Some(data) = &block.data {
                        sink.event(
                            block.event.as_deref().unwrap_or("message"),
                            data,
                            block.id.as_deref().unwrap_or(""),
                        );
                    }
                }
                Err(error) => panic!("bench input is valid: {error}"),
            }
        }
    });
}

fn sse_core<S: Sink>(chunks: &[Bytes], sink: &mut S) {
    let mut decoder =
        sse_core::SseDecoder::with_limit(std::num::NonZeroUsize::MIN.saturating_add((1 << 20) - 1));
    for chunk in chunks {
        let mut chunk = chunk.clone();
        while let Some(event) = decoder.next(&mut chunk) {
            match event {
                Ok(sse_core::SseEvent::Message(event)) => sink.event(
                    &event.event,
                    &event.data,
                    event.last_event_id.as_deref().unwrap_or(""),
                ),
                Ok(sse_core::SseEvent::Retry(_)) => {}
                Err(error) => panic!("bench input within limits: {error}"),
            }
        }
    }
}

fn sseer<S: Sink>(chunks: &[Bytes], sink: &mut S) {
    futures::executor::block_on(async {
        let mut events = sseer::event_stream::EventStream::new(byte_stream(chunks));
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => sink.event(&event.event, &event.data, &event.id),
                Err(error) => panic!("bench input is valid: {error}"),
            }
        }
    });
}

fn eventsource_stream<S: Sink>(chunks: &[Bytes], sink: &mut S) {
    use eventsource_stream::Eventsource;
    futures::executor::block_on(async {
        let mut events = byte_stream(chunks).eventsource();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => sink.event(&event.event, &event.data, &event.id),
                Err(error) => panic!("bench input is valid: {error}"),
            }
        }
    });
}

fn memchr_scan(chunks: &[Bytes]) -> usize {
    chunks
        .iter()
        .map(|chunk| memchr::memchr2_iter(b'\r', b'\n', chunk).count())
        .sum()
}

/// A parser under test: its name and how to run it over the chunks.
type Run<S> = fn(&[Bytes], &mut S);

/// The parsers in the order they are timed.
fn parsers<S: Sink>() -> [(&'static str, Run<S>); 5] {
    [
        ("pollkit", pollkit::<S>),
        ("sse-stream", sse_stream::<S>),
        ("sse-core", sse_core::<S>),
        ("sseer", sseer::<S>),
        ("eventsource-stream", eventsource_stream::<S>),
    ]
}

/// Panics unless every parser produced the same `events` events.
fn check_agreement(name: &str, chunks: &[Bytes], events: usize) {
    let mut reference = None;
    for (parser, run) in parsers::<Checksum>() {
        let mut sum = Checksum::default();
        run(chunks, &mut sum);
        assert_eq!(sum.events, events, "{name}: {parser} event count");
        let reference = *reference.get_or_insert(sum.hash);
        assert_eq!(sum.hash, reference, "{name}: {parser} differs from pollkit");
    }
}

fn group(c: &mut Criterion, name: &str, input: &[u8], events: usize, chunk_size: usize) {
    let chunks = chunked(input, chunk_size);
    check_agreement(name, &chunks, events);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(input.len() as u64));
    if input.len() > 16 << 20 {
        // One pass over 64 MiB takes tens of milliseconds.
        group.sample_size(10);
    }
    for (parser, run) in parsers::<Touch>() {
        group.bench_function(parser, |b| {
            b.iter(|| {
                let mut touch = Touch::default();
                run(black_box(&chunks), &mut touch);
                touch.0
            })
        });
    }
    group.bench_function("memchr2-scan", |b| {
        b.iter(|| memchr_scan(black_box(&chunks)))
    });
    group.finish();
}

/// The five inputs: name, bytes, events, chunk size.
fn inputs() -> Vec<(&'static str, Vec<u8>, usize, usize)> {
    let small = small_events(SMALL_EVENTS);
    vec![
        ("small-16KiB", small.clone(), SMALL_EVENTS, 16 * 1024),
        ("small-1460B", small.clone(), SMALL_EVENTS, 1460),
        ("small-7B", small, SMALL_EVENTS, 7),
        (
            "64KiB-events-16KiB",
            large_events(LARGE_EVENTS),
            LARGE_EVENTS,
            16 * 1024,
        ),
        (
            "crlf-3-line-16KiB",
            crlf_events(SMALL_EVENTS),
            SMALL_EVENTS,
            16 * 1024,
        ),
    ]
}

/// `SSE_PARSE_ROUNDS=n cargo bench --bench sse_parse`: instead of criterion,
/// `n` rounds in which every parser reads the input once, in an order that
/// rotates from round to round, so that a shared machine's load falls on all
/// parsers alike. Prints each parser's median time and its ratio to
/// pollkit's (above 1: pollkit is faster).
fn rounds(n: usize, name: &str, chunks: &[Bytes]) {
    let parsers = parsers::<Touch>();
    // The parsers, then the bare scan: the ceiling.
    let runs = parsers.len() + 1;
    let mut times = vec![Vec::with_capacity(n); runs];
    for round in 0..n {
        for k in 0..runs {
            let i = (round + k) % runs;
            let start = std::time::Instant::now();
            match parsers.get(i) {
                Some((_, run)) => {
                    let mut touch = Touch::default();
                    run(black_box(chunks), &mut touch);
                    black_box(touch.0);
                }
                None => {
                    black_box(memchr_scan(black_box(chunks)));
                }
            }
            times[i].push(start.elapsed());
        }
    }
    let median = |t: &mut Vec<std::time::Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let medians: Vec<_> = times.iter_mut().map(median).collect();
    let line: Vec<String> = parsers
        .iter()
        .map(|(parser, _)| *parser)
        .chain(["memchr2-scan"])
        .zip(&medians)
        .map(|(parser, m)| {
            let ratio = m.as_secs_f64() / medians[0].as_secs_f64();
            format!("{parser} {:.2} ms ({ratio:.2})", m.as_secs_f64() * 1e3)
        })
        .collect();
    println!("{name}: {}", line.join(", "));
}

/// `SSE_PARSE_ONLY=input/parser SSE_PARSE_REPEAT=n cargo bench --bench
/// sse_parse`: that one parser reads that one input `n` times and nothing else
/// runs (no agreement check, no criterion), for a profiler or `perf stat`: the
/// difference between two values of `n`, divided, is the cost of one read,
/// whatever else the machine runs.
fn profile_only(only: &str, repeat: usize) {
    let Some((input_name, parser_name)) = only.split_once('/') else {
        panic!("SSE_PARSE_ONLY is input/parser");
    };
    let Some((_, input, _, chunk_size)) = inputs().into_iter().find(|i| i.0 == input_name) else {
        panic!("no input {input_name}");
    };
    let Some((_, run)) = parsers::<Touch>().into_iter().find(|p| p.0 == parser_name) else {
        panic!("no parser {parser_name}");
    };
    let chunks = chunked(&input, chunk_size);
    let mut touch = Touch::default();
    for _ in 0..repeat {
        run(black_box(&chunks), &mut touch);
    }
    black_box(touch.0);
}

fn benches(c: &mut Criterion) {
    if let Ok(only) = std::env::var("SSE_PARSE_ONLY") {
        let repeat = std::env::var("SSE_PARSE_REPEAT")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1);
        profile_only(&only, repeat);
        return;
    }
    let rounds_asked = std::env::var("SSE_PARSE_ROUNDS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    for (name, input, events, chunk_size) in inputs() {
        match rounds_asked {
            Some(n) => {
                let chunks = chunked(&input, chunk_size);
                check_agreement(name, &chunks, events);
                rounds(n.max(1), name, &chunks);
            }
            None => group(c, name, &input, events, chunk_size),
        }
    }
}

criterion_group!(sse_parse, benches);
criterion_main!(sse_parse);
