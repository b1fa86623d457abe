//! Throughput of `pollkit::sse::Parser` against `eventsource-stream` and against
//! a bare CR/LF scan with `memchr2` (the physical limit of any line splitter).
//!
//! Groups: small events in 16 KiB chunks, 64 KiB events in 16 KiB chunks, and
//! the small events again in 7-byte chunks (every line split across chunks).

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use pollkit::sse::Parser;

/// About `total` bytes of job-progress events, the typical SSE payload.
fn small_events(total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + 128);
    let mut i = 0u64;
    while out.len() < total {
        let event = format!(
            "id: {i}\ndata: {{\"jobId\":\"job-{:08}\",\"percent\":{}}}\n\n",
            i / 100,
            i % 101
        );
        out.extend_from_slice(event.as_bytes());
        i += 1;
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

fn chunked(input: &[u8], size: usize) -> Vec<Bytes> {
    input.chunks(size).map(Bytes::copy_from_slice).collect()
}

/// Feeds every chunk and drains the events; returns the data bytes seen.
fn pollkit(chunks: &[Bytes]) -> usize {
    let mut parser = Parser::new();
    let mut seen = 0;
    for chunk in chunks {
        if parser.feed(chunk).is_err() {
            panic!("bench input within limits");
        }
        while let Some(event) = parser.next_event() {
            seen += event.data().len();
            black_box(event);
        }
    }
    parser.finish();
    seen
}

fn eventsource_stream(chunks: &[Bytes]) -> usize {
    futures::executor::block_on(async {
        let mut events = futures::stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>))
            .eventsource();
        let mut seen = 0;
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    seen += event.data.len();
                    black_box(event);
                }
                Err(error) => panic!("bench input is valid: {error}"),
            }
        }
        seen
    })
}

fn memchr_scan(chunks: &[Bytes]) -> usize {
    chunks
        .iter()
        .map(|chunk| memchr::memchr2_iter(b'\r', b'\n', chunk).count())
        .sum()
}

fn group(c: &mut Criterion, name: &str, input: &[u8], chunk_size: usize) {
    let chunks = chunked(input, chunk_size);
    // The two parsers must agree before their speed is compared.
    assert_eq!(pollkit(&chunks), eventsource_stream(&chunks), "{name}");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("pollkit", |b| b.iter(|| pollkit(black_box(&chunks))));
    group.bench_function("eventsource-stream", |b| {
        b.iter(|| eventsource_stream(black_box(&chunks)))
    });
    group.bench_function("memchr2-scan", |b| {
        b.iter(|| memchr_scan(black_box(&chunks)))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let small = small_events(1 << 20);
    group(c, "small-events-16KiB-chunks", &small, 16 * 1024);
    group(c, "64KiB-events-16KiB-chunks", &large_events(64), 16 * 1024);
    group(c, "small-events-7B-chunks", &small, 7);
}

criterion_group!(sse_parse, benches);
criterion_main!(sse_parse);
