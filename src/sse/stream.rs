//! [`SseStream`]: one long response of Server-Sent Events, reconnected and
//! resumed without loss.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::{Stream, TryFuture};
use tokio::time::Instant;

use super::cut::Cut;
use super::{Event, Parser, Reconnect, Signal};
use crate::builder::shared_setters;
use crate::driver::{Driver, Step, classify};
use crate::hooks::{Exclusive, Hooks};
use crate::schedule::{Answer, Disconnect, Pacing, Schedule, later};
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

/// What a turn of the connect or of the body leaves to do.
enum Turn<E> {
    /// Go round again: events to hand out, or the other turn.
    Again,
    /// The connection ended like this: plan the reconnect, or the end.
    Cut(Cut<E>),
    /// The stream ends with this item (`None`: cleanly, or after its error).
    End(Option<Result<Event, Error<E>>>),
}

/// Whose turn it is: the driver's (waiting for the gate, then connecting)
/// or the body's.
#[derive(Clone, Copy, Debug)]
enum Conn {
    /// No body: the driver waits for the gate, makes the connect and bounds
    /// it by the connect timeout, as it does any request.
    Connecting,
    /// Reading the body; `timer` is whether the driver's timer is armed
    /// (deadline or idle timeout).
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
    /// The gate, the schedule, the timer, the connect in flight and the
    /// failing streak's last error: the loop every strategy shares.
    driver: Driver<Fut, Fut::Error>,
    hooks: Hooks<Event, Fut::Error>,
    parser: Parser,
    /// The body of the open connection, pinned in a block made once and
    /// reused across reconnects.
    body: Pin<Box<Option<B>>>,
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

// The connect function is only called through `&mut`; the connect future
// and the body live in pinned boxes of their own.
impl<F, Fut: TryFuture, B> Unpin for SseStream<F, Fut, B> {}

impl<F, Fut: TryFuture, B> fmt::Debug for SseStream<F, Fut, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseStream")
            .field("connect", &std::any::type_name::<F>())
            .field("gate", self.driver.gate())
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
            driver: Driver::new(schedule, "sse"),
            hooks: Hooks::default(),
            parser: Parser::new(),
            body: Box::pin(None),
            conn: Conn::Connecting,
            reconnect_time: RECONNECT,
            idle_timeout: None,
            reconnect: Reconnect::Always,
            last_bytes: Instant::now(),
            alive: false,
            events_seen: false,
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
        self.driver.schedule().checkpoint(cursor)
    }

    /// Goes on from a [`Checkpoint`]: after its last event id, with the
    /// connections made and the time spent counting toward `max_attempts`
    /// and `timeout`.
    pub fn resume(mut self, checkpoint: Checkpoint<String>) -> Self {
        self.driver
            .schedule_mut()
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
        (self.driver.schedule_mut(), &mut self.hooks)
    }

    /// The reconnection time in force: the server's, clamped (and never
    /// under 100 ms, whatever `hint_bounds` says: `retry: 0` must not
    /// spin), or the default.
    fn reconnection_time(&self) -> Duration {
        self.parser.retry().map_or(self.reconnect_time, |r| {
            self.driver.schedule().clamp_hint(r).max(MIN_RECONNECT)
        })
    }

    /// The connection ended, went idle, timed out or failed: plan the
    /// reconnect, or the end (`None` from the stream, after the error this
    /// returns if there is one).
    fn disconnected(&mut self, cut: Cut<E>) -> Option<Error<E>> {
        self.parser.finish();
        self.conn = Conn::Connecting;
        // The connect's future, if any, is gone already: the driver drops
        // a request once it has settled.
        self.body.set(None);
        let alive = std::mem::take(&mut self.alive);
        let now = Instant::now();
        if let Cut::TimedOut(_) = cut {
            if let Some(e) = self.driver.cut_by_deadline(now) {
                return Some(e);
            }
        }
        let allowed = self.reconnect.allows(&cut, self.events_seen);
        let attempts = self.driver.schedule().attempts();
        let mut pending = false;
        let how = match &cut {
            Cut::Ended | Cut::Idle(_) if alive => Disconnect::Delivered,
            Cut::Ended | Cut::Idle(_) => Disconnect::Empty,
            Cut::TimedOut(_) => {
                self.driver.schedule().count_error();
                Disconnect::Failed { hint: None }
            }
            // An error that means "not yet" (`pending_if`): an answer, not a
            // failure, so reconnected to as after an empty connection.
            Cut::Failed(e) if self.hooks.is_pending(e) => {
                pending = true;
                // The server answered: a sign of life for a `Fallback` above,
                // and the end of a failing streak (its last error, its count
                // and its time bound), as after a success of the other
                // strategies. The quiet-connection backoff still paces
                // repeated answers.
                self.driver.answered();
                self.driver.schedule_mut().forgive();
                Disconnect::Empty
            }
            Cut::Failed(e) => {
                if self.hooks.is_stop(e) {
                    // The server asked us to stop (HTTP 204): end cleanly.
                    self.driver.finish();
                    return None;
                }
                self.driver.schedule().count_error();
                let (transient, hint) = classify(&mut self.hooks, e);
                if !transient {
                    self.driver.finish();
                    return cut.into_error(attempts);
                }
                Disconnect::Failed { hint }
            }
        };
        if !allowed {
            self.driver.finish();
            return cut.into_error(attempts);
        }
        self.driver
            .gate()
            .trace
            .reconnect(self.driver.schedule(), alive);
        let base = self.reconnection_time();
        let answer = Answer::Disconnect { base, how };
        let Some(at) = self.driver.schedule_mut().next(now, answer) else {
            self.driver.finish();
            return cut.into_error(attempts);
        };
        let planned = self.driver.retry_at(now, at);
        if let Some(after) = planned {
            if let Disconnect::Failed { hint } = how {
                self.driver
                    .tell_retry(&mut self.hooks, cut.error(), hint, after);
            }
            let cause = cut.cause();
            self.signal(&Signal::Reconnecting { after, cause });
        }
        // Else the deadline or the attempt limit ends it: no reconnect to
        // tell anyone about. Either way a failed connect is the last error
        // for the stop that may end the wait.
        if let Cut::Failed(e) = cut {
            if !pending {
                self.driver.remember_error(e);
            }
        }
        None
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
        self.driver.gate().is_done() && !self.parser.has_events() && self.refused.is_none()
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
        let _entered = this.driver.enter();
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
            let turn = match this.conn {
                Conn::Connecting => ready!(this.poll_connect(cx)),
                Conn::Streaming { timer } => ready!(this.poll_body(cx, timer)),
            };
            match turn {
                Turn::Again => {}
                Turn::Cut(cut) => {
                    if let Some(e) = this.disconnected(cut) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Turn::End(item) => return Poll::Ready(item),
            }
        }
    }
}

impl<F, Fut, B, T, E> SseStream<F, Fut, B>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<B, E>>,
    B: Stream<Item = Result<T, E>>,
    T: AsRef<[u8]>,
{
    /// The driver's turn: waits for the gate and connects, as for any
    /// request, within the connect timeout.
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<Turn<E>> {
        let (connect, parser) = (&mut self.connect, &self.parser);
        let (connected, last_bytes) = (&mut self.connected, &mut self.last_bytes);
        let idle_timeout = self.idle_timeout;
        let step = ready!(self.driver.poll_step(cx, |schedule, now| {
            if std::mem::replace(connected, true) {
                if let Some(stats) = schedule.stats() {
                    stats.reconnect();
                }
            }
            // The connect is bounded, and so is the wait for its first byte
            // when there is an idle timeout.
            let mut own = schedule.attempt_timeout().unwrap_or(CONNECT_TIMEOUT);
            if let Some(idle) = idle_timeout {
                own = own.min(idle);
            }
            let limit = schedule.request_limit(now, Some(own)).unwrap_or(own);
            *last_bytes = now;
            (connect(resume_id(parser)), Some(limit))
        }));
        Poll::Ready(match step {
            Step::Output(Ok(body)) => {
                self.body.set(Some(body));
                let timer = self.stream_timer(Instant::now());
                self.conn = Conn::Streaming { timer };
                let attempt = self.driver.schedule().attempts();
                self.signal(&Signal::Opened { attempt });
                Turn::Again
            }
            Step::Output(Err(e)) => Turn::Cut(Cut::Failed(e)),
            Step::TimedOut(limit) => Turn::Cut(Cut::TimedOut(limit)),
            Step::Stop(stop) => Turn::End(Some(Err(self.driver.stopped(stop)))),
            Step::Done => Turn::End(None),
        })
    }

    /// The body's turn: reads a chunk into the parser, or sees the
    /// connection end, go idle or reach the deadline; `timer` is whether
    /// the driver's timer is armed for the idle check or the deadline.
    fn poll_body(&mut self, cx: &mut Context<'_>, timer: bool) -> Poll<Turn<E>> {
        let Some(body) = self.body.as_mut().as_pin_mut() else {
            self.conn = Conn::Connecting;
            return Poll::Ready(Turn::Again);
        };
        match body.poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let chunk = chunk.as_ref();
                if !chunk.is_empty() {
                    // Bytes, comments included: the connection works, and a
                    // `Fallback` above may know it.
                    crate::life::heartbeat();
                    if !std::mem::replace(&mut self.alive, true) {
                        self.driver.schedule_mut().alive();
                        self.driver.forget_error();
                    }
                    if self.idle_timeout.is_some() {
                        self.last_bytes = Instant::now();
                    }
                }
                if let Err(e) = self.parser.feed(chunk) {
                    // The events complete in this chunk still go out first;
                    // then the error ends the stream.
                    self.body.set(None);
                    self.conn = Conn::Connecting;
                    self.driver.finish();
                    self.refused = Some(e);
                }
                while let Some(comment) = self.parser.take_comment() {
                    self.signal(&Signal::Comment(&comment));
                }
                Poll::Ready(Turn::Again)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Turn::Cut(Cut::Failed(e))),
            Poll::Ready(None) => Poll::Ready(Turn::Cut(Cut::Ended)),
            Poll::Pending => {
                if !timer {
                    return Poll::Pending;
                }
                ready!(self.driver.poll_timer(cx));
                let now = Instant::now();
                if let Some(e) = self.driver.cut_by_deadline(now) {
                    self.body.set(None);
                    self.conn = Conn::Connecting;
                    return Poll::Ready(Turn::End(Some(Err(e))));
                }
                let idle = self
                    .idle_timeout
                    .filter(|d| now >= later(self.last_bytes, *d));
                if let Some(idle) = idle {
                    // A half-open connection, or a proxy holding the body
                    // back: drop it and reconnect.
                    return Poll::Ready(Turn::Cut(Cut::Idle(idle)));
                }
                let timer = self.stream_timer(now);
                self.conn = Conn::Streaming { timer };
                Poll::Ready(Turn::Again)
            }
        }
    }

    /// Arms the driver's timer for the nearer of the deadline and the idle
    /// check while a body is read; returns whether it is armed.
    fn stream_timer(&mut self, now: Instant) -> bool {
        let idle = self.idle_timeout.map(|d| later(self.last_bytes, d));
        let deadline = self
            .driver
            .schedule()
            .remaining(now)
            .map(|left| later(now, left));
        let at = match (idle, deadline) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(at) => at,
                None => return false,
            },
        };
        self.driver.set_timer(at);
        true
    }
}

/// The id to resume from (the committed last event id), `None` while there is
/// none: the spec sends no `Last-Event-ID` for an empty id.
fn resume_id(parser: &Parser) -> Option<String> {
    let id = parser.last_event_id();
    (!id.is_empty()).then(|| id.to_owned())
}
