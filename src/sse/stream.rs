//! [`SseStream`]: one long response of Server-Sent Events, reconnected and
//! resumed without loss.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::{Stream, TryFuture};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::{Event, Parser};
use crate::builder::shared_setters;
use crate::gate::{Gate, Gated};
use crate::hooks::Hooks;
use crate::schedule::{Config, Disconnect, Pacing, Schedule, later};
use crate::{Checkpoint, Error, Jitter};

/// Default reconnection time until the server sends `retry` (as browsers).
const RECONNECT: Duration = Duration::from_secs(3);

pin_project! {
    /// The timer, the connect future and the body, pinned together in one
    /// allocation made on the first poll and reused across reconnects.
    struct Slot<Fut, B> {
        #[pin]
        timer: Sleep,
        #[pin]
        connecting: Option<Fut>,
        #[pin]
        body: Option<B>,
    }
}

/// The connection, once the gate has let a connect through.
#[derive(Clone, Copy, Debug)]
enum Conn {
    /// No connection: the gate decides when to connect.
    Idle,
    /// Connecting; `limit` is the connect timeout.
    Connecting { limit: Option<Duration> },
    /// Reading the body; `timer` is whether the timer is armed (deadline or
    /// idle timeout).
    Streaming { timer: bool },
}

/// Server-Sent Events as a [`Poller`](crate::Poller) of [`Event`]s: one long
/// response, reconnected when it ends or fails, resumed with `Last-Event-ID`.
///
/// `connect` makes one request and returns the response body as a stream of
/// byte chunks (`Stream<Item = Result<T, E>>` with `T: AsRef<[u8]>`, such as
/// reqwest's `bytes_stream()`; it need not be `Unpin`). It receives the last
/// event id to resume from (`None` at first, and while the server has sent no
/// id): send it as the `Last-Event-ID` header. Check the response's status in
/// `connect` and return an error for anything but `200`; [`retry_if`](Self::retry_if)
/// then says which errors are worth reconnecting for (a 503) and which end
/// the stream (a 204, a 401).
///
/// # Reconnecting
/// When the body ends or fails with a transient error, the stream connects
/// again after the reconnection time: the server's latest `retry` value,
/// clamped to [`hint_bounds`](Self::hint_bounds) (default 1 s ..= 10 min), or
/// [`reconnect_time`](Self::reconnect_time) (default 3 s), spread by the
/// jitter. While reconnects keep failing, the delay grows as the
/// [`backoff`](Self::backoff) does (never below the reconnection time), and
/// the backoff's retry limit ends the stream with the last error; a
/// connection that delivers events resets it. A connection that ends cleanly
/// without any event also backs off, but never ends the stream on its own.
///
/// The id sent on reconnect is the id of the last *complete* event, never an
/// `id` from a block the cut left unfinished, and the new connection's parser
/// starts from it, so a server that opens each response with `retry: 3000`
/// and a blank line cannot erase the resume position.
///
/// # Default
/// - reconnection time 3 s until the server sends `retry`; hints clamped to
///   1 s ..= 10 min; jitter [`Jitter::Proportional(0.2)`](Jitter::Proportional)
/// - backoff and error classification as [`ShortPoll`](crate::ShortPoll)
/// - maximum size of one event: 1 MiB ([`max_event_size`](Self::max_event_size));
///   a larger one is discarded and ends the stream with [`Error::Sse`], after
///   the complete events that arrived in the same chunk
/// - no idle timeout, no deadline, no connect timeout (`attempt_timeout`)
///
/// # Cancel safety
/// Dropping the stream drops the connection (the body) or the connect in
/// flight; nothing keeps running.
///
/// # Examples
/// ```
/// use std::convert::Infallible;
/// use pollkit::{Poller, SseStream};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// // A body that arrives in awkward pieces; a real one is reqwest's `bytes_stream()`.
/// let event = SseStream::new(|last_event_id: Option<String>| async move {
///         assert_eq!(last_event_id, None);
///         let chunks = ["id: 1\nda", "ta: {\"state\":\"running\"}\n\n",
///                       "id: 2\ndata: {\"state\":\"completed\"}\n\n"];
///         Ok::<_, Infallible>(futures::stream::iter(chunks.map(|c| Ok(c.as_bytes()))))
///     })
///     .until(|e| e.data().contains("completed"))
///     .await
///     .unwrap();
/// assert_eq!(event.last_event_id(), "2");
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct SseStream<F, Fut: TryFuture, B> {
    connect: F,
    schedule: Schedule,
    hooks: Hooks<Event, Fut::Error>,
    parser: Parser,
    slot: Option<Pin<Box<Slot<Fut, B>>>>,
    gate: Gate,
    conn: Conn,
    reconnect_time: Duration,
    idle_timeout: Option<Duration>,
    /// When the current connection last received bytes.
    last_bytes: Instant,
    /// Whether the current connection delivered an event.
    delivered: bool,
    /// An event refused for its size: yielded once the events queued before
    /// it are out, then the stream ends.
    refused: Option<super::Error>,
    /// The id of the last event handed to the caller (a reused buffer): the
    /// parser's committed id can be ahead of it while events wait in its queue.
    delivered_id: String,
    /// Whether this stream has opened a connection (to count reconnects).
    connected: bool,
}

// The connect function is only called through `&mut`; the futures and the
// body live in the stream's own pinned box.
impl<F, Fut: TryFuture, B> Unpin for SseStream<F, Fut, B> {}

impl<F, Fut: TryFuture, B> fmt::Debug for SseStream<F, Fut, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseStream")
            .field("connect", &std::any::type_name::<F>())
            .field("gate", &self.gate)
            .field("conn", &self.conn)
            .field("last_event_id", &self.parser.last_event_id())
            .field("retry", &self.parser.retry())
            .finish_non_exhaustive()
    }
}

impl<F, Fut, B, T, E> SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<B, E>>,
    B: Stream<Item = Result<T, E>>,
    T: AsRef<[u8]>,
{
    /// An event stream around `connect`, which opens one connection per call.
    pub fn new(connect: F) -> Self {
        let mut config = Config::new(Duration::ZERO, Pacing::Interval);
        config.jitter = Jitter::Proportional(0.2);
        SseStream {
            connect,
            schedule: Schedule::new(config),
            hooks: Hooks::default(),
            parser: Parser::new(),
            slot: None,
            gate: Gate::new("sse"),
            conn: Conn::Idle,
            reconnect_time: RECONNECT,
            idle_timeout: None,
            last_bytes: Instant::now(),
            delivered: false,
            refused: None,
            delivered_id: String::new(),
            connected: false,
        }
    }

    /// The reconnection time used until the server sends a `retry` field.
    /// Default: 3 s.
    pub fn reconnect_time(mut self, reconnect_time: Duration) -> Self {
        self.reconnect_time = reconnect_time;
        self
    }

    /// Reconnects when no bytes at all (comments count) arrive for this long,
    /// so a half-open connection cannot hang the client. At least 1 ms.
    /// Default: none.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = Some(idle_timeout.max(Duration::from_millis(1)));
        self
    }

    /// Which errors of `connect` mean "the server asked the client to stop"
    /// (the spec's HTTP 204 No Content): the stream then ends cleanly, with
    /// `None` and no error, and never reconnects. `until` on it resolves to
    /// [`Error::Ended`], as for any stream that ends. Checked before
    /// [`retry_if`](Self::retry_if). Default: none.
    ///
    /// # Examples
    /// ```
    /// use futures::StreamExt;
    /// use pollkit::SseStream;
    ///
    /// #[derive(Debug)]
    /// enum ConnectError { NoContent, Status(u16) }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let mut events = SseStream::new(|_id: Option<String>| async {
    ///         // A real connect maps a 204 answer to `NoContent`.
    ///         Err::<futures::stream::Empty<Result<&[u8], ConnectError>>, _>(ConnectError::NoContent)
    ///     })
    ///     .stop_if(|e| matches!(e, ConnectError::NoContent));
    /// assert!(events.next().await.is_none());
    /// # }
    /// ```
    pub fn stop_if(mut self, is_stop: impl FnMut(&E) -> bool + Send + 'static) -> Self {
        self.hooks.set_stop_if(is_stop);
        self
    }

    /// The maximum size of one event (and of one line). Default: 1 MiB.
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.parser = std::mem::take(&mut self.parser).max_event_size(bytes);
        self
    }

    /// Resumes after this event id: the first `connect` receives it, and
    /// events carry it until the server sends another.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.parser.set_last_event_id(id);
        self
    }

    /// Where this stream stands (connections made, time spent, the last
    /// event id), to [`resume`](Self::resume) it after a restart.
    pub fn checkpoint(&self) -> Checkpoint<String> {
        // With events still queued, resume after the last one handed out, not
        // after the last one parsed, or the queued ones would be lost.
        let cursor = if self.parser.has_events() {
            (!self.delivered_id.is_empty()).then(|| self.delivered_id.clone())
        } else {
            resume_id(&self.parser)
        };
        self.schedule.checkpoint(cursor)
    }

    /// Goes on from a [`Checkpoint`]: after its last event id, with the
    /// connections made and the time spent counting toward `max_attempts`
    /// and `timeout`.
    pub fn resume(mut self, checkpoint: Checkpoint<String>) -> Self {
        self.schedule
            .resume(checkpoint.attempts, checkpoint.elapsed);
        if let Some(id) = checkpoint.cursor {
            self.parser.set_last_event_id(id);
        }
        self
    }

    shared_setters!(Event, E);

    fn parts(&mut self) -> (&mut Config, &mut Hooks<Event, E>) {
        (&mut self.schedule.config, &mut self.hooks)
    }

    /// The reconnection time in force: the server's, clamped, or the default.
    fn reconnection_time(&self) -> Duration {
        self.parser
            .retry()
            .map_or(self.reconnect_time, |r| self.schedule.config.clamp_hint(r))
    }

    /// The connection ended (`None`), failed (`Some(Err)`), or timed out
    /// (`Some(Ok(timeout))`): plan the reconnect, or the error that ends it.
    fn disconnected(&mut self, why: Option<Result<Duration, E>>) -> Option<Error<E>> {
        self.parser.finish();
        self.conn = Conn::Idle;
        if let Some(slot) = self.slot.as_mut() {
            let mut slot = slot.as_mut().project();
            slot.connecting.set(None);
            slot.body.set(None);
        }
        let now = Instant::now();
        if let (Some(Ok(_)), Err(stop)) = (&why, self.schedule.check_deadline(now)) {
            // A connect cut by the deadline's grace: that is the deadline passing.
            self.gate.stop(stop);
            return None;
        }
        let base = self.reconnection_time();
        let (how, error) = match why {
            None if self.delivered => (Disconnect::Delivered, None),
            None => (Disconnect::Empty, None),
            Some(Ok(timeout)) => (
                Disconnect::Failed { hint: None },
                Some(Error::AttemptTimeout {
                    timeout,
                    attempts: self.schedule.attempts(),
                }),
            ),
            Some(Err(e)) => {
                if self.hooks.is_stop(&e) {
                    // The server asked us to stop (HTTP 204): end cleanly.
                    self.gate.finish();
                    return None;
                }
                if !self.hooks.is_transient(&e) {
                    self.gate.finish();
                    return Some(Error::Fetch(e));
                }
                let hint = self.hooks.retry_after(&e);
                (Disconnect::Failed { hint }, Some(Error::Fetch(e)))
            }
        };
        self.gate.trace.reconnect(&self.schedule, self.delivered);
        let Some(at) = self.schedule.after_disconnect(now, base, how) else {
            self.gate.finish();
            return error;
        };
        match self.slot.as_mut() {
            Some(slot) => {
                let timer = slot.as_mut().project().timer;
                self.gate.plan(&mut self.schedule, now, at, timer);
            }
            // Unreachable in practice: the slot exists once a connection ran.
            None => self.gate.finish(),
        }
        None
    }
}

impl<F, Fut, B, T, E> Stream for SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<B, E>>,
    B: Stream<Item = Result<T, E>>,
    T: AsRef<[u8]>,
{
    type Item = Result<Event, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let _entered = this.gate.trace.enter(&this.schedule);
        loop {
            if let Some(event) = this.parser.next_event() {
                if !this.delivered {
                    this.delivered = true;
                    this.schedule.delivered();
                }
                this.delivered_id.clear();
                this.delivered_id.push_str(event.last_event_id());
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(e) = this.refused.take() {
                return Poll::Ready(Some(Err(Error::Sse(e))));
            }
            let slot = this.slot.get_or_insert_with(|| {
                Box::pin(Slot {
                    timer: tokio::time::sleep_until(Instant::now()),
                    connecting: None,
                    body: None,
                })
            });
            let mut slot = slot.as_mut().project();
            match this.conn {
                Conn::Idle => {
                    let gated = this
                        .gate
                        .poll_open(cx, &mut this.schedule, slot.timer.as_mut());
                    let now = match ready!(gated) {
                        Gated::Go(now) => now,
                        Gated::Stop(stop) => return Poll::Ready(Some(Err(stop.into_error()))),
                        Gated::Done => return Poll::Ready(None),
                    };
                    if std::mem::replace(&mut this.connected, true) {
                        if let Some(stats) = &this.schedule.config.stats {
                            stats.reconnect();
                        }
                    }
                    let resume = resume_id(&this.parser);
                    let limit = this
                        .schedule
                        .request_limit(now, this.schedule.config.attempt_timeout);
                    slot.connecting.set(Some((this.connect)(resume)));
                    if let Some(limit) = limit {
                        slot.timer.reset(later(now, limit));
                    }
                    this.conn = Conn::Connecting { limit };
                }
                Conn::Connecting { limit } => {
                    let Some(connecting) = slot.connecting.as_mut().as_pin_mut() else {
                        this.conn = Conn::Idle;
                        continue;
                    };
                    let outcome = match connecting.poll(cx) {
                        Poll::Ready(Ok(body)) => Ok(body),
                        Poll::Ready(Err(e)) => Err(Some(Err(e))),
                        Poll::Pending => match limit {
                            Some(limit) if slot.timer.as_mut().poll(cx).is_ready() => {
                                Err(Some(Ok(limit)))
                            }
                            _ => return Poll::Pending,
                        },
                    };
                    match outcome {
                        Ok(body) => {
                            slot.connecting.set(None);
                            slot.body.set(Some(body));
                            let now = Instant::now();
                            this.last_bytes = now;
                            this.delivered = false;
                            let timer = stream_timer(
                                this.idle_timeout,
                                this.last_bytes,
                                &this.schedule,
                                slot.timer,
                                now,
                            );
                            this.conn = Conn::Streaming { timer };
                        }
                        Err(why) => {
                            if let Some(e) = this.disconnected(why) {
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                    }
                }
                Conn::Streaming { timer } => {
                    let Some(body) = slot.body.as_mut().as_pin_mut() else {
                        this.conn = Conn::Idle;
                        continue;
                    };
                    match body.poll_next(cx) {
                        Poll::Ready(Some(Ok(chunk))) => {
                            let chunk = chunk.as_ref();
                            if !chunk.is_empty() && this.idle_timeout.is_some() {
                                this.last_bytes = Instant::now();
                            }
                            if let Err(e) = this.parser.feed(chunk) {
                                // The events complete in this chunk still go
                                // out first; then the error ends the stream.
                                slot.body.set(None);
                                this.conn = Conn::Idle;
                                this.gate.finish();
                                this.refused = Some(e);
                            }
                        }
                        Poll::Ready(Some(Err(e))) => {
                            if let Some(e) = this.disconnected(Some(Err(e))) {
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        Poll::Ready(None) => {
                            if let Some(e) = this.disconnected(None) {
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        Poll::Pending => {
                            if !timer || slot.timer.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            let now = Instant::now();
                            if let Err(stop) = this.schedule.check_deadline(now) {
                                slot.body.set(None);
                                this.conn = Conn::Idle;
                                this.gate.finish();
                                return Poll::Ready(Some(Err(stop.into_error())));
                            }
                            let idle = this
                                .idle_timeout
                                .is_some_and(|d| now >= later(this.last_bytes, d));
                            if idle {
                                // A half-open connection: drop it and reconnect.
                                if let Some(e) = this.disconnected(None) {
                                    return Poll::Ready(Some(Err(e)));
                                }
                            } else {
                                let timer = stream_timer(
                                    this.idle_timeout,
                                    this.last_bytes,
                                    &this.schedule,
                                    slot.timer,
                                    now,
                                );
                                this.conn = Conn::Streaming { timer };
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Arms the timer for the nearer of the deadline and the idle check while a
/// body is read; returns whether it is armed.
fn stream_timer(
    idle_timeout: Option<Duration>,
    last_bytes: Instant,
    schedule: &Schedule,
    timer: Pin<&mut Sleep>,
    now: Instant,
) -> bool {
    let idle = idle_timeout.map(|d| later(last_bytes, d));
    let deadline = schedule.remaining(now).map(|left| later(now, left));
    let at = match (idle, deadline) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => match a.or(b) {
            Some(at) => at,
            None => return false,
        },
    };
    timer.reset(at);
    true
}

/// The id to resume from (the committed last event id), `None` while there is
/// none: the spec sends no `Last-Event-ID` for an empty id.
fn resume_id(parser: &Parser) -> Option<String> {
    let id = parser.last_event_id();
    (!id.is_empty()).then(|| id.to_owned())
}
