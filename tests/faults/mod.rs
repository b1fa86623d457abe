//! A fault-injecting HTTP server over loopback for the reliability tests.
//!
//! An axum app on `127.0.0.1:0` behind a listener that counts open TCP
//! connections. At seeded random points it resets connections, cuts them
//! mid-response, stalls (never answers, or stops mid-body), answers
//! `500`/`503` with and without `Retry-After` (including absurd values),
//! lies about `Content-Length`, and sends garbage: invalid JSON, invalid
//! UTF-8, an HTML error page, noise in an event stream.
//!
//! - `GET /jobs/{id}`: a job's status, `{"step": n, "state": ".."}`; each
//!   answer that is not a fault moves the job one step on, and it completes
//!   after `Config::steps`.
//! - `GET /watch/{id}?index=N&wait=MS`: a blocking query on the same kind
//!   of job: held until the job moves past `N` (answered `200` with
//!   `X-Index`) or the wait ends (`304`).
//! - `GET /events/{id}`: an event stream of `Config::events` events, resumed
//!   after `Last-Event-ID`; each connection delivers a few events, then ends,
//!   or fails in one of the ways above.
//! - `GET /hang`: never answers. `GET /forever`: an event every 10 ms, forever.
//!
//! Faults are drawn from one random sequence per job or stream, seeded by
//! `(Config::seed, id)`: the same seed injects the same faults at the same
//! points whatever the interleaving of concurrent clients. The server runs
//! on the test's runtime and stops with it (or when [`Server`] drops).
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{StreamExt, stream};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// SplitMix64: small, seedable, good enough to pick faults.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Every kind of fault the server injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The connection is closed before any of the response.
    Reset,
    /// Part of the body, then the connection is closed.
    CutBody,
    /// The handler never answers.
    Stall,
    /// Headers and part of the body, then nothing, ever.
    StallBody,
    /// `500 Internal Server Error`, with one of the `Retry-After` values.
    Status500,
    /// `503 Service Unavailable`, with one of the `Retry-After` values.
    Status503,
    /// `Content-Length` larger than the body: the connection ends early.
    Truncated,
    /// `200` with a body cut in the middle of the JSON (framing intact).
    BadJson,
    /// `200` with bytes that are neither JSON nor UTF-8, or an HTML page.
    Garbage,
    /// Events, then half an event, then the connection is closed.
    SseCut,
    /// Events, then half an event, then a clean end of the body.
    SseTruncated,
    /// Events, then half an event, then silence (the idle timeout's job).
    SseStall,
    /// Events with noise between them: invalid UTF-8 in comments and unknown
    /// fields, absurd `retry` values, an 8 KiB comment.
    SseNoise,
    /// `200` with an HTML error page instead of an event stream.
    SseHtml,
}

pub const KINDS: [Fault; 14] = [
    Fault::Reset,
    Fault::CutBody,
    Fault::Stall,
    Fault::StallBody,
    Fault::Status500,
    Fault::Status503,
    Fault::Truncated,
    Fault::BadJson,
    Fault::Garbage,
    Fault::SseCut,
    Fault::SseTruncated,
    Fault::SseStall,
    Fault::SseNoise,
    Fault::SseHtml,
];

/// The faults of a request/response endpoint.
const HTTP_FAULTS: [Fault; 9] = [
    Fault::Reset,
    Fault::CutBody,
    Fault::Stall,
    Fault::StallBody,
    Fault::Status500,
    Fault::Status503,
    Fault::Truncated,
    Fault::BadJson,
    Fault::Garbage,
];

/// The faults of an event stream.
const SSE_FAULTS: [Fault; 10] = [
    Fault::Reset,
    Fault::Stall,
    Fault::Status500,
    Fault::Status503,
    Fault::SseCut,
    Fault::SseTruncated,
    Fault::SseStall,
    Fault::SseNoise,
    Fault::SseNoise,
    Fault::SseHtml,
];

/// `Retry-After` values sent with a 5xx (`None`: no header).
const RETRY_AFTER: [Option<&str>; 8] = [
    None,
    None,
    Some("0"),
    Some("1"),
    Some("99999999"),
    Some("-1"),
    Some("soon"),
    Some("18446744073709551616"),
];

impl Fault {
    fn index(self) -> usize {
        KINDS.iter().position(|&k| k == self).expect("listed")
    }
}

/// What the server was told to do.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// The chance that a request (or a connection) meets a fault.
    pub rate: f64,
    /// Steps until a job completes.
    pub steps: u64,
    /// Events in each event stream.
    pub events: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            rate: 0.5,
            steps: 8,
            events: 50,
        }
    }
}

/// What the server counted.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    faults: [AtomicU64; KINDS.len()],
    /// TCP connections open right now, and ever accepted.
    pub open: AtomicUsize,
    pub accepted: AtomicU64,
    /// Stalled handlers and bodies that were dropped because the client went
    /// away (a stall that is never released would be a leaked connection).
    pub stalls_released: AtomicU64,
    pub hang_started: AtomicU64,
    pub hang_dropped: AtomicU64,
    pub forever_started: AtomicU64,
    pub forever_dropped: AtomicU64,
}

impl Counters {
    pub fn faults(&self, kind: Fault) -> u64 {
        self.faults[kind.index()].load(Ordering::SeqCst)
    }

    pub fn total_faults(&self) -> u64 {
        KINDS.iter().map(|&k| self.faults(k)).sum()
    }

    fn count(&self, kind: Fault) {
        self.faults[kind.index()].fetch_add(1, Ordering::SeqCst);
    }

    /// "kind n, kind n, ..." for the kinds that occurred.
    pub fn by_kind(&self) -> String {
        KINDS
            .iter()
            .filter(|&&k| self.faults(k) > 0)
            .map(|&k| format!("{k:?} {}", self.faults(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Job {
    rng: Rng,
    step: u64,
}

struct Shared {
    config: Config,
    counters: Arc<Counters>,
    jobs: Mutex<HashMap<u64, Job>>,
    streams: Mutex<HashMap<u64, Rng>>,
}

impl Shared {
    fn rng_for(&self, salt: u64, id: u64) -> Rng {
        let mut rng = Rng::new(self.config.seed ^ salt ^ id.wrapping_mul(0xA24B_AED4_963E_E407));
        rng.next_u64();
        rng
    }
}

/// A running server; it stops when dropped (and with the test's runtime).
pub struct Server {
    pub base: String,
    pub counters: Arc<Counters>,
    _stop: oneshot::Sender<()>,
}

impl Server {
    pub fn open_connections(&self) -> usize {
        self.counters.open.load(Ordering::SeqCst)
    }

    /// Waits (real time, up to 5 s) until no connection is open.
    pub async fn all_connections_closed(&self) -> bool {
        for _ in 0..500 {
            if self.open_connections() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

/// Starts the server on `127.0.0.1:0`.
pub async fn spawn(config: Config) -> Server {
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        config,
        counters: counters.clone(),
        jobs: Mutex::default(),
        streams: Mutex::default(),
    });
    let app = Router::new()
        .route("/jobs/{id}", get(job))
        .route("/watch/{id}", get(watch))
        .route("/events/{id}", get(events))
        .route("/hang", get(hang))
        .route("/forever", get(forever))
        .with_state(shared);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let listener = CountingListener {
        inner: listener,
        counters: counters.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Server {
        base,
        counters,
        _stop: stop,
    }
}

// ---------------------------------------------------------------------------
// Jobs: short and long polling
// ---------------------------------------------------------------------------

/// A job's status as JSON.
fn job_json(step: u64, steps: u64) -> Vec<u8> {
    let state = if step >= steps {
        "completed"
    } else {
        "running"
    };
    format!(r#"{{"step":{step},"state":"{state}"}}"#).into_bytes()
}

fn ok_json(body: Vec<u8>, index: Option<u64>) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Some(index) = index {
        response
            .headers_mut()
            .insert("x-index", HeaderValue::from(index));
    }
    response
}

async fn job(State(s): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    s.counters.requests.fetch_add(1, Ordering::SeqCst);
    let (fault, body, mut rng) = {
        let mut jobs = s.jobs.lock().unwrap();
        let job = jobs.entry(id).or_insert_with(|| Job {
            rng: s.rng_for(0x5107, id),
            step: 0,
        });
        let fault = job
            .rng
            .chance(s.config.rate)
            .then(|| job.rng.pick(&HTTP_FAULTS));
        if fault.is_none() {
            job.step = (job.step + 1).min(s.config.steps);
        }
        let rng = Rng::new(job.rng.next_u64());
        (fault, job_json(job.step, s.config.steps), rng)
    };
    match fault {
        None => ok_json(body, None),
        Some(fault) => inject(&s.counters, fault, body, &mut rng).await,
    }
}

#[derive(Deserialize)]
struct WatchQuery {
    index: Option<u64>,
    wait: Option<u64>,
}

async fn watch(
    State(s): State<Arc<Shared>>,
    Path(id): Path<u64>,
    Query(q): Query<WatchQuery>,
) -> Response {
    s.counters.requests.fetch_add(1, Ordering::SeqCst);
    let (fault, now, mut rng) = {
        let mut jobs = s.jobs.lock().unwrap();
        let job = jobs.entry(id).or_insert_with(|| Job {
            rng: s.rng_for(0x1096, id),
            step: 0,
        });
        let fault = job
            .rng
            .chance(s.config.rate)
            .then(|| job.rng.pick(&HTTP_FAULTS));
        (fault, job.step, Rng::new(job.rng.next_u64()))
    };
    if let Some(fault) = fault {
        return inject(&s.counters, fault, job_json(now, s.config.steps), &mut rng).await;
    }
    let steps = s.config.steps;
    match q.index {
        Some(seen) if seen >= now && now < steps => {}
        // Something newer than the client's index (or no index): at once.
        _ => return ok_json(job_json(now, steps), Some(now)),
    }
    // Held: the job moves on after a while, or the wait ends with nothing.
    let wait = q.wait.unwrap_or(30);
    if rng.chance(0.25) {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        return StatusCode::NOT_MODIFIED.into_response();
    }
    tokio::time::sleep(Duration::from_millis(rng.below(wait + 1))).await;
    let step = {
        let mut jobs = s.jobs.lock().unwrap();
        let job = jobs.get_mut(&id).expect("created above");
        job.step = (job.step + 1).min(steps);
        job.step
    };
    ok_json(job_json(step, steps), Some(step))
}

/// Counts a stalled handler or body dropped because the client went away.
struct Released(Arc<Counters>);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.stalls_released.fetch_add(1, Ordering::SeqCst);
    }
}

type Chunk = Result<Bytes, io::Error>;

fn cut() -> Chunk {
    Err(io::Error::new(io::ErrorKind::ConnectionReset, "fault: cut"))
}

/// A body of `chunks`, then `tail`.
fn body_of(chunks: Vec<Chunk>, tail: impl futures::Stream<Item = Chunk> + Send + 'static) -> Body {
    Body::from_stream(stream::iter(chunks).chain(tail))
}

/// A body of `chunks`, then silence until the client goes away.
fn stalled_body(chunks: Vec<Chunk>, counters: &Arc<Counters>) -> Body {
    let released = Released(counters.clone());
    body_of(
        chunks,
        stream::pending::<Chunk>().map(move |c| {
            let _keep = &released;
            c
        }),
    )
}

fn status_with_retry_after(status: StatusCode, rng: &mut Rng) -> Response {
    let mut response = status.into_response();
    if let Some(value) = rng.pick(&RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(value));
    }
    response
}

/// Answers a request/response endpoint with `fault` instead of `body`.
async fn inject(counters: &Arc<Counters>, fault: Fault, body: Vec<u8>, rng: &mut Rng) -> Response {
    counters.count(fault);
    let half = body.len() / 2;
    let json = |b: Body| {
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(b)
            .expect("a response")
    };
    match fault {
        Fault::Reset => json(body_of(vec![cut()], stream::empty())),
        Fault::CutBody => json(body_of(
            vec![Ok(Bytes::copy_from_slice(&body[..half])), cut()],
            stream::empty(),
        )),
        Fault::Stall => {
            let _released = Released(counters.clone());
            std::future::pending::<Response>().await
        }
        Fault::StallBody => json(stalled_body(
            vec![Ok(Bytes::copy_from_slice(&body[..half]))],
            counters,
        )),
        Fault::Status500 => status_with_retry_after(StatusCode::INTERNAL_SERVER_ERROR, rng),
        Fault::Status503 => status_with_retry_after(StatusCode::SERVICE_UNAVAILABLE, rng),
        Fault::Truncated => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len() + 100)
            .body(body_of(vec![Ok(Bytes::from(body))], stream::empty()))
            .expect("a response"),
        Fault::BadJson => ok_json(body[..half].to_vec(), None),
        _ => {
            // Garbage: bytes that are not UTF-8, or a proxy's HTML page.
            if rng.chance(0.5) {
                let noise: Vec<u8> = (0..rng.below(64) + 1)
                    .map(|_| 0x80 | rng.next_u64() as u8)
                    .collect();
                ok_json(noise, None)
            } else {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
                )
                    .into_response()
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Event streams
// ---------------------------------------------------------------------------

/// The wire form of event `n`: some span two data lines, some carry invalid
/// UTF-8 in their data.
pub fn sse_event(n: u64) -> Vec<u8> {
    let mut e = format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n").into_bytes();
    if n % 3 == 0 {
        e.extend_from_slice(b"data: second line\n");
    }
    if n % 5 == 0 {
        e.extend_from_slice(b"data: bytes \xFF\xFE and \xE2\x82 end\n");
    }
    e.push(b'\n');
    e
}

/// The data a client must see for event `n` (invalid UTF-8 as U+FFFD).
pub fn sse_data(n: u64) -> String {
    let mut d = format!("{{\"n\":{n}}}");
    if n % 3 == 0 {
        d += "\nsecond line";
    }
    if n % 5 == 0 {
        d += &String::from_utf8_lossy(b"\nbytes \xFF\xFE and \xE2\x82 end");
    }
    d
}

/// Lines that change nothing a client sees between two events.
const NOISE: [&[u8]; 9] = [
    b": \xFF\xFE\xFD a comment that is not UTF-8\n",
    b"x-unknown: \xC3\x28 \xA0\xA1\n",
    b"\xFF\xFE\n",
    b"retry: 18446744073709551616\n",
    b"retry: 99999999999\n",
    b"retry: -5\n",
    b"retry: 1e3\n",
    b"event: ignored\n\n",
    b"\n",
];

/// Splits `bytes` into chunks of 1..=64 bytes at random points.
fn random_chunks(bytes: &[u8], rng: &mut Rng) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = (rng.below(64) as usize + 1).min(rest.len());
        chunks.push(Ok(Bytes::copy_from_slice(&rest[..n])));
        rest = &rest[n..];
    }
    chunks
}

async fn events(State(s): State<Arc<Shared>>, Path(id): Path<u64>, headers: HeaderMap) -> Response {
    s.counters.requests.fetch_add(1, Ordering::SeqCst);
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map_or(1, |n| n + 1);
    let mut rng = {
        let mut streams = s.streams.lock().unwrap();
        let rng = streams.entry(id).or_insert_with(|| s.rng_for(0x55E0, id));
        Rng::new(rng.next_u64())
    };
    let fault = rng.chance(s.config.rate).then(|| rng.pick(&SSE_FAULTS));
    let last = s.config.events;
    let count = if fault.is_some() {
        rng.below(4)
    } else {
        rng.below(8) + 1
    };
    let end = (from + count).min(last + 1);
    let mut text = Vec::new();
    if rng.chance(0.3) {
        text.extend_from_slice(format!("retry: {}\n", rng.below(5)).as_bytes());
    }
    text.extend_from_slice(b": hello\n\n");
    for n in from..end {
        if fault == Some(Fault::SseNoise) {
            for _ in 0..rng.below(3) {
                text.extend_from_slice(rng.pick(&NOISE));
            }
            if rng.chance(0.2) {
                // Eight times the client's max_event_size: comments are never stored.
                text.push(b':');
                text.extend(std::iter::repeat_n(b'x', 8 * 1024));
                text.push(b'\n');
            }
        }
        text.extend_from_slice(&sse_event(n));
    }
    let sse = |body: Body| {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(body)
            .expect("a response")
    };
    let Some(fault) = fault else {
        return sse(body_of(random_chunks(&text, &mut rng), stream::empty()));
    };
    s.counters.count(fault);
    let half_event = || {
        let e = sse_event(end);
        Ok(Bytes::copy_from_slice(&e[..e.len() / 2]))
    };
    match fault {
        Fault::Reset => sse(body_of(vec![cut()], stream::empty())),
        Fault::Stall => {
            let _released = Released(s.counters.clone());
            std::future::pending::<Response>().await
        }
        Fault::Status500 => status_with_retry_after(StatusCode::INTERNAL_SERVER_ERROR, &mut rng),
        Fault::Status503 => status_with_retry_after(StatusCode::SERVICE_UNAVAILABLE, &mut rng),
        Fault::SseCut => {
            let mut chunks = random_chunks(&text, &mut rng);
            chunks.push(half_event());
            chunks.push(cut());
            sse(body_of(chunks, stream::empty()))
        }
        Fault::SseTruncated => {
            let mut chunks = random_chunks(&text, &mut rng);
            chunks.push(half_event());
            sse(body_of(chunks, stream::empty()))
        }
        Fault::SseStall => {
            let mut chunks = random_chunks(&text, &mut rng);
            chunks.push(half_event());
            sse(stalled_body(chunks, &s.counters))
        }
        Fault::SseNoise => sse(body_of(random_chunks(&text, &mut rng), stream::empty())),
        _ => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>upstream</body>\n</html>\n",
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------------------
// Endpoints for cancellation tests
// ---------------------------------------------------------------------------

struct OnDrop(Arc<Counters>, fn(&Counters) -> &AtomicU64);

impl Drop for OnDrop {
    fn drop(&mut self) {
        (self.1)(&self.0).fetch_add(1, Ordering::SeqCst);
    }
}

async fn hang(State(s): State<Arc<Shared>>) -> Response {
    s.counters.hang_started.fetch_add(1, Ordering::SeqCst);
    let _dropped = OnDrop(s.counters.clone(), |c| &c.hang_dropped);
    std::future::pending().await
}

async fn forever(State(s): State<Arc<Shared>>) -> Response {
    s.counters.forever_started.fetch_add(1, Ordering::SeqCst);
    let dropped = OnDrop(s.counters.clone(), |c| &c.forever_dropped);
    let ticks = stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let event = format!("id: {n}\ndata: tick {n}\n\n");
        Some((Ok::<_, io::Error>(Bytes::from(event)), n + 1))
    });
    let body = ticks.map(move |c| {
        let _keep = &dropped;
        c
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(body))
        .expect("a response")
}

// ---------------------------------------------------------------------------
// Counting open connections
// ---------------------------------------------------------------------------

struct CountingListener {
    inner: TcpListener,
    counters: Arc<Counters>,
}

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    self.counters.open.fetch_add(1, Ordering::SeqCst);
                    self.counters.accepted.fetch_add(1, Ordering::SeqCst);
                    let io = Counted {
                        inner: stream,
                        counters: self.counters.clone(),
                    };
                    return (io, addr);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A server-side connection that counts itself closed when dropped.
struct Counted {
    inner: TcpStream,
    counters: Arc<Counters>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
