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

use super::{Cause, Event, Parser, Reconnect, Signal};
use crate::builder::shared_setters;
use crate::gate::{Gate, Gated};
use crate::hooks::{Exclusive, Hooks};
use crate::schedule::{Disconnect, Pacing, Schedule, later};
use crate::{Checkpoint, Error, Jitter};

/// Default reconnection time until the server sends `retry` (as browsers).
const RECONNECT: Duration = Duration::from_secs(3);
/// Default bound on a connect: from sending the request to the response's
/// headers (a proxy that holds them back, a server that never answers).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The shortest reconnection time a user may set, or a server's `retry`
/// may give: zero would spin against a server that answers each connection
/// with one byte and closes it.
const MIN_RECONNECT: Duration = Duration::from_millis(100);

type Observe<E> = Box<dyn FnMut(&Signal<'_, E>) + Send>;

/// How a connection ended.
enum Cut<E> {
    /// The body ended cleanly.
    Ended,
    /// No bytes for the idle timeout.
    Idle(Duration),
    /// The connect did not answer within this limit.
    TimedOut(Duration),
    /// `connect` or the body failed.
    Failed(E),
}

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
    Connecting { limit: Duration },
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
/// When the body ends, fails with a transient error or goes quiet for the
/// [`idle_timeout`](Self::idle_timeout), the stream connects again after the
/// reconnection time: the server's latest `retry` value, clamped to
/// [`hint_bounds`](Self::hint_bounds) (default 1 s ..= 10 min) and never
/// under 100 ms, or [`reconnect_time`](Self::reconnect_time) (default 3 s), spread *above* by
/// the jitter (never sooner). A connection that opened and delivered bytes
/// (a comment counts) ends the error streak: a quiet stream that a proxy
/// cuts every minute reconnects forever, each time after the reconnection
/// time. While connects keep failing, the delay grows as the
/// [`backoff`](Self::backoff) does (never below the reconnection time), and
/// its time bound (5 min of failures by default) ends the stream with the
/// last error. A connection that ends cleanly (or goes idle) without any
/// byte also backs off, but never ends the stream on its own, and it ends
/// the error streak too: the server answered the connect. [`reconnect`](Self::reconnect)
/// chooses whether to reconnect at all ([`Reconnect`]): always for a feed,
/// only before the first event for a one-shot answer.
///
/// The id sent on reconnect is the id of the last *complete* event, never an
/// `id` from a block the cut left unfinished, and the new connection's parser
/// starts from it, so a server that opens each response with `retry: 3000`
/// and a blank line cannot erase the resume position.
///
/// # Timeouts
/// A connect that does not answer (no headers) within 30 s is abandoned and
/// retried ([`attempt_timeout`](Self::attempt_timeout) sets that bound). With
/// an [`idle_timeout`](Self::idle_timeout), the whole connection is covered:
/// from sending the request to the first byte of the body, then between any
/// two bytes, so a proxy that holds headers or buffers the body cannot hang
/// the client silently.
///
/// # Default
/// - reconnection time 3 s until the server sends `retry` (at least 100 ms);
///   hints clamped to 1 s ..= 10 min; jitter
///   [`Jitter::Proportional(0.2)`](Jitter::Proportional), applied above: a
///   reconnect comes 3 to 3.6 s after the end
/// - connect timeout 30 s; no idle timeout, no deadline
/// - reconnect policy [`Reconnect::Always`]
/// - backoff and error classification as [`ShortPoll`](crate::ShortPoll)
/// - maximum size of one event: 1 MiB ([`max_event_size`](Self::max_event_size));
///   a larger one is discarded and ends the stream with [`Error::Sse`], after
///   the complete events that arrived in the same chunk
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
    reconnect: Reconnect,
    /// When the current connection last received bytes (or, before its
    /// first byte, when its request was sent).
    last_bytes: Instant,
    /// Whether the current connection delivered bytes.
    alive: bool,
    /// Whether any event was handed out (for [`Reconnect::BeforeFirstEvent`]).
    events_seen: bool,
    /// The error of the last failed connection while connects are failing.
    last_error: Option<Fut::Error>,
    /// The user's observer of comments and connection state.
    on_signal: Option<Exclusive<Observe<Fut::Error>>>,
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
            // The id is the server's text (and may come from the caller's
            // `Last-Event-ID`): whether there is one, never its value.
            .field(
                "last_event_id",
                &format_args!(
                    "{}",
                    if self.parser.last_event_id().is_empty() {
                        "None"
                    } else {
                        "Some(..)"
                    }
                ),
            )
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
        let mut schedule = Schedule::new(Duration::ZERO, Pacing::Interval);
        schedule.config.jitter = Jitter::Proportional(0.2);
        SseStream {
            connect,
            schedule,
            hooks: Hooks::default(),
            parser: Parser::new(),
            slot: None,
            gate: Gate::new("sse"),
            conn: Conn::Idle,
            reconnect_time: RECONNECT,
            idle_timeout: None,
            reconnect: Reconnect::Always,
            last_bytes: Instant::now(),
            alive: false,
            events_seen: false,
            last_error: None,
            on_signal: None,
            refused: None,
            delivered_id: String::new(),
            connected: false,
        }
    }

    /// The reconnection time used until the server sends a `retry` field.
    /// At least 100 ms (a shorter one is taken as 100 ms). Default: 3 s.
    pub fn reconnect_time(mut self, reconnect_time: Duration) -> Self {
        self.reconnect_time = reconnect_time.max(MIN_RECONNECT);
        self
    }

    /// When to connect again ([`Reconnect`]): after every end (a feed, the
    /// default), only after errors, only before the first event (a one-shot
    /// answer), or never.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = policy;
        self
    }

    /// Calls `observe` with what happens besides events: comments
    /// (keep-alives), each connection that opens, and each reconnect about
    /// to be waited for with its cause ([`Signal`]). The stream's items do
    /// not change. Default: none.
    ///
    /// # Examples
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use futures::StreamExt;
    /// use pollkit::SseStream;
    /// use pollkit::sse::Signal;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let mut events = SseStream::new(|_id: Option<String>| async {
    ///         Ok::<_, std::io::Error>(futures::stream::iter([Ok(&b": ping\ndata: hi\n\n"[..])]))
    ///     })
    ///     .on_signal(move |signal: &Signal<'_, std::io::Error>| {
    ///         log.lock().unwrap().push(format!("{signal:?}"));
    ///     });
    /// assert_eq!(events.next().await.unwrap().unwrap().data(), "hi");
    /// assert_eq!(*seen.lock().unwrap(), ["Opened { attempt: 1 }", "Comment(\"ping\")"]);
    /// # }
    /// ```
    pub fn on_signal(mut self, observe: impl FnMut(&Signal<'_, E>) + Send + 'static) -> Self {
        self.parser.keep_comments();
        self.on_signal = Some(Exclusive::new(Box::new(observe)));
        self
    }

    /// Reconnects when no bytes at all (comments count) arrive for this
    /// long: from sending the request to the first byte of the body, then
    /// between any two bytes, so neither a half-open connection nor a proxy
    /// that holds the response back can hang the client. At least 1 ms.
    /// Default: none (the connect alone is bounded, by 30 s).
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

    /// Tells the observer, if there is one.
    fn signal(&mut self, signal: &Signal<'_, E>) {
        if let Some(observe) = self.on_signal.as_mut() {
            (observe.get_mut())(signal);
        }
    }

    fn parts(&mut self) -> (&mut Schedule, &mut Hooks<Event, E>) {
        (&mut self.schedule, &mut self.hooks)
    }

    /// The reconnection time in force: the server's, clamped (and never
    /// under 100 ms, whatever `hint_bounds` says: `retry: 0` must not
    /// spin), or the default.
    fn reconnection_time(&self) -> Duration {
        self.parser.retry().map_or(self.reconnect_time, |r| {
            self.schedule.clamp_hint(r).max(MIN_RECONNECT)
        })
    }

    /// The connection ended, went idle, timed out or failed: plan the
    /// reconnect, or the end (`None` from the stream, after the error this
    /// returns if there is one).
    fn disconnected(&mut self, cut: Cut<E>) -> Option<Error<E>> {
        self.parser.finish();
        self.conn = Conn::Idle;
        if let Some(slot) = self.slot.as_mut() {
            let mut slot = slot.as_mut().project();
            slot.connecting.set(None);
            slot.body.set(None);
        }
        let alive = std::mem::take(&mut self.alive);
        let now = Instant::now();
        if let (Cut::TimedOut(_), Err(stop)) = (&cut, self.schedule.check_deadline(now)) {
            // A connect cut by the deadline's grace: that is the deadline passing.
            self.gate.stop(stop);
            return None;
        }
        let allowed = match (self.reconnect, &cut) {
            (Reconnect::Always, _) => true,
            (Reconnect::AfterErrors, Cut::Ended) => false,
            (Reconnect::AfterErrors, _) => true,
            (Reconnect::BeforeFirstEvent, _) => !self.events_seen,
            (Reconnect::Never, _) => false,
        };
        let attempts = self.schedule.attempts();
        let mut pending = false;
        let how = match &cut {
            Cut::Ended | Cut::Idle(_) if alive => Disconnect::Delivered,
            Cut::Ended | Cut::Idle(_) => Disconnect::Empty,
            Cut::TimedOut(_) => {
                self.schedule.count_error();
                Disconnect::Failed { hint: None }
            }
            // An error that means "not yet" (`pending_if`): an answer, not a
            // failure, so reconnected to as after an empty connection.
            Cut::Failed(e) if self.hooks.is_pending(e) => {
                pending = true;
                // The server answered: a sign of life for a `Fallback` above,
                // and the end of a failing streak (its count and its time
                // bound), as after a success of the other strategies. The
                // quiet-connection backoff still paces repeated answers.
                crate::life::heartbeat();
                self.schedule.forgive();
                Disconnect::Empty
            }
            Cut::Failed(e) => {
                if self.hooks.is_stop(e) {
                    // The server asked us to stop (HTTP 204): end cleanly.
                    self.gate.finish();
                    return None;
                }
                self.schedule.count_error();
                if !self.hooks.is_transient(e) {
                    self.gate.finish();
                    return cut.into_error(attempts);
                }
                Disconnect::Failed {
                    hint: self.hooks.retry_after(e),
                }
            }
        };
        if !allowed {
            self.gate.finish();
            return cut.into_error(attempts);
        }
        self.gate.trace.reconnect(&self.schedule, alive);
        let base = self.reconnection_time();
        let Some(at) = self.schedule.after_disconnect(now, base, how) else {
            self.gate.finish();
            return cut.into_error(attempts);
        };
        let Some(slot) = self.slot.as_mut() else {
            // Unreachable in practice: the slot exists once a connection ran.
            self.gate.finish();
            return None;
        };
        let timer = slot.as_mut().project().timer;
        self.gate.plan(&mut self.schedule, now, at, timer);
        if self.gate.is_stopping() {
            // The deadline or the attempt limit ends it: no reconnect to
            // tell anyone about.
            if let Cut::Failed(e) = cut {
                self.last_error = (!pending).then_some(e);
            }
            return None;
        }
        let after = self.schedule.cap(at).saturating_duration_since(now);
        let cause = match &cut {
            Cut::Ended => Cause::Ended,
            Cut::Idle(_) => Cause::Idle,
            Cut::TimedOut(_) => Cause::TimedOut,
            Cut::Failed(e) => Cause::Failed(e),
        };
        if let Disconnect::Failed { hint } = how {
            let error = match &cut {
                Cut::Failed(e) => Some(e),
                _ => None,
            };
            self.hooks.retrying(&crate::Retry {
                error,
                hint,
                attempt: attempts,
                delay: after,
            });
        }
        self.signal(&Signal::Reconnecting { after, cause });
        if let Cut::Failed(e) = cut {
            self.last_error = (!pending).then_some(e);
        }
        None
    }
}

impl<E> Cut<E> {
    /// The error that ends the stream for this cut, if it is one.
    fn into_error(self, attempts: u32) -> Option<Error<E>> {
        match self {
            Cut::Ended => None,
            Cut::Idle(timeout) | Cut::TimedOut(timeout) => {
                Some(Error::AttemptTimeout { timeout, attempts })
            }
            Cut::Failed(e) => Some(Error::Fetch(e)),
        }
    }
}

impl<F, Fut, B, T, E> futures_core::FusedStream for SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<B, E>>,
    B: Stream<Item = Result<T, E>>,
    T: AsRef<[u8]>,
{
    fn is_terminated(&self) -> bool {
        self.gate.is_done() && !self.parser.has_events() && self.refused.is_none()
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
                this.events_seen = true;
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
                        Gated::Stop(stop) => {
                            let last = this.last_error.take();
                            return Poll::Ready(Some(Err(stop.into_error(last))));
                        }
                        Gated::Done => return Poll::Ready(None),
                    };
                    if std::mem::replace(&mut this.connected, true) {
                        if let Some(stats) = this.schedule.stats() {
                            stats.reconnect();
                        }
                    }
                    let resume = resume_id(&this.parser);
                    // The connect is bounded, and so is the wait for its
                    // first byte when there is an idle timeout.
                    let mut own = this.schedule.attempt_timeout().unwrap_or(CONNECT_TIMEOUT);
                    if let Some(idle) = this.idle_timeout {
                        own = own.min(idle);
                    }
                    let limit = this.schedule.request_limit(now, Some(own)).unwrap_or(own);
                    slot.connecting.set(Some((this.connect)(resume)));
                    slot.timer.reset(later(now, limit));
                    this.last_bytes = now;
                    this.conn = Conn::Connecting { limit };
                }
                Conn::Connecting { limit } => {
                    let Some(connecting) = slot.connecting.as_mut().as_pin_mut() else {
                        this.conn = Conn::Idle;
                        continue;
                    };
                    let cut = match connecting.poll(cx) {
                        Poll::Ready(Ok(body)) => {
                            slot.connecting.set(None);
                            slot.body.set(Some(body));
                            let timer = stream_timer(
                                this.idle_timeout,
                                this.last_bytes,
                                &this.schedule,
                                slot.timer,
                                Instant::now(),
                            );
                            this.conn = Conn::Streaming { timer };
                            let attempt = this.schedule.attempts();
                            this.signal(&Signal::Opened { attempt });
                            continue;
                        }
                        Poll::Ready(Err(e)) => Cut::Failed(e),
                        Poll::Pending => {
                            if slot.timer.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            Cut::TimedOut(limit)
                        }
                    };
                    if let Some(e) = this.disconnected(cut) {
                        return Poll::Ready(Some(Err(e)));
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
                            if !chunk.is_empty() {
                                // Bytes, comments included: the connection
                                // works, and a `Fallback` above may know it.
                                crate::life::heartbeat();
                                if !std::mem::replace(&mut this.alive, true) {
                                    this.schedule.alive();
                                    this.last_error = None;
                                }
                                if this.idle_timeout.is_some() {
                                    this.last_bytes = Instant::now();
                                }
                            }
                            if let Err(e) = this.parser.feed(chunk) {
                                // The events complete in this chunk still go
                                // out first; then the error ends the stream.
                                slot.body.set(None);
                                this.conn = Conn::Idle;
                                this.gate.finish();
                                this.refused = Some(e);
                            }
                            while let Some(comment) = this.parser.take_comment() {
                                this.signal(&Signal::Comment(&comment));
                            }
                        }
                        Poll::Ready(Some(Err(e))) => {
                            if let Some(e) = this.disconnected(Cut::Failed(e)) {
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        Poll::Ready(None) => {
                            if let Some(e) = this.disconnected(Cut::Ended) {
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
                                let last = this.last_error.take();
                                return Poll::Ready(Some(Err(stop.into_error(last))));
                            }
                            let idle = this
                                .idle_timeout
                                .filter(|d| now >= later(this.last_bytes, *d));
                            if let Some(idle) = idle {
                                // A half-open connection, or a proxy holding
                                // the body back: drop it and reconnect.
                                if let Some(e) = this.disconnected(Cut::Idle(idle)) {
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
