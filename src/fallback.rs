//! [`Fallback`]: watch one resource through an ordered list of strategies.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::{Instant, Sleep};

use crate::{BoxPoller, Error};

type Build<S, E> = Box<dyn FnMut(Option<&S>) -> BoxPoller<S, E> + Send>;
type Unusable<E> = Box<dyn FnMut(&Error<E>) -> bool + Send>;

/// Default time on a worse transport before the better ones are tried again.
const RETRY_BETTER_AFTER: Duration = Duration::from_secs(300);
/// The shortest time on a worse transport: zero would rebuild a refused
/// best transport in a tight loop.
const MIN_RETRY_BETTER_AFTER: Duration = Duration::from_secs(1);
/// A transport that showed life within this long (or within
/// `unusable_after`, if longer) works: it may be left for the best one.
const PROMOTE_FRESH: Duration = Duration::from_secs(60);

/// Watches one resource through an ordered list of strategies, best first
/// (say SSE, then long polling, then short polling), falling back when one
/// turns out not to be usable here and going back when it works again.
///
/// Each transport is a function that builds a poller from the last status
/// seen (`None` at first): map that status to a cursor for
/// [`LongPoll::cursor`](crate::LongPoll::cursor) or an event id for
/// [`SseStream::last_event_id`](crate::SseStream::last_event_id), so the next
/// transport resumes where the previous one was.
///
/// When the active poller ends with an error that [`unusable_if`](Self::unusable_if)
/// classifies as "this transport is not usable" (by default any error but
/// [`Error::Timeout`], [`Error::Exhausted`] and [`Error::Failed`], which are
/// about the resource rather than the transport), or simply ends, the next
/// transport takes over. After [`retry_better_after`](Self::retry_better_after)
/// on a worse transport, the best one is tried again. The status stream has
/// no duplicate at a switch: the first status of the new transport is dropped
/// when it equals the last one seen. When the last transport fails too, its
/// error ends the stream.
///
/// # Acceptors
/// [`until`](crate::Poller::until), [`until_result`](crate::Poller::until_result)
/// and `.with_last_status()` work on a `Fallback` as on any poller, and a
/// transport's [`pending_if`](crate::ShortPoll::pending_if) keeps its "not
/// yet" errors to itself. An error that an acceptor decides on (a `404` for
/// "deleted") ends a transport as any error does, so tell
/// [`unusable_if`](Self::unusable_if) that it is an answer about the
/// resource, not the transport: then it ends the watch and reaches the
/// acceptor instead of calling for the next transport. Extend the default,
/// [`Error::is_transport_failure`], rather than replace it, so that the
/// deadline and a failed status still end the watch on every transport.
///
/// ```
/// use pollkit::{Error, Fallback, Poller, ShortPoll, Verdict};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut polls = 0;
/// let watch = Fallback::new()
///     .then("short", move |_: Option<&u8>| {
///         ShortPoll::new(move || {
///                 polls += 1;
///                 async move { if polls < 3 { Ok(1) } else { Err("404") } }
///             })
///             .retry_if(|e| *e != "404")
///             .boxed_poller()
///     })
///     .then("other", |_: Option<&u8>| ShortPoll::new(|| async { Ok(1) }).boxed_poller())
///     .unusable_if(|e| e.is_transport_failure() && !matches!(e, Error::Fetch("404")));
/// let deleted = watch
///     .until_result(|r| match r {
///         Err(&"404") => Verdict::Success("deleted"),
///         _ => Verdict::Pending,
///     })
///     .await;
/// assert_eq!(deleted.unwrap(), "deleted");
/// # }
/// ```
///
/// # Cancel safety
/// Dropping it drops the active poller and its request in flight.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Error, Fallback, Poller, ShortPoll};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let watch = Fallback::new()
///     // A "better" transport that is refused here (a proxy that kills streams).
///     .then("sse", |_last: Option<&u32>| {
///         ShortPoll::new(|| async { Err::<u32, _>("406 from the proxy") })
///             .retry_if(|_| false)
///             .boxed_poller()
///     })
///     .then("short", |last: Option<&u32>| {
///         let mut n = last.copied().unwrap_or(0);
///         ShortPoll::new(move || { n += 1; async move { Ok(n) } }).boxed_poller()
///     })
///     .retry_better_after(Duration::from_secs(60));
/// assert_eq!(watch.until(|n| *n == 3).await.unwrap(), 3);
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Fallback<S, E> {
    transports: Vec<(&'static str, Build<S, E>)>,
    unusable: Unusable<E>,
    retry_better_after: Duration,
    current: Option<(usize, BoxPoller<S, E>)>,
    last: Option<S>,
    /// Drop the next status if it repeats `last` (right after a switch).
    skip_repeat: bool,
    /// Fires when it is time to try the best transport again.
    promote: Option<Pin<Box<Sleep>>>,
    /// A transport that yields nothing for this long is not usable here.
    silence: Option<Duration>,
    /// Fires when the active transport has been silent for `silence`.
    silent: Option<Pin<Box<Sleep>>>,
    switches: u32,
    /// The most switches allowed, if limited.
    max_switches: Option<u32>,
    /// The deadline over all transports, and its timer once started.
    timeout: Option<Duration>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the first poll happened.
    started: Option<Instant>,
    /// Requests made by every transport so far.
    attempts: u32,
    /// When the active transport last showed life (a status, a sign of
    /// life; not a switch): only a transport that works is left for the
    /// best one again.
    alive_at: Option<Instant>,
    /// The end of a server's hint the active transport is waiting out: no
    /// transport asks that server sooner.
    not_before: Option<Instant>,
    done: bool,
}

impl<S, E> fmt::Debug for Fallback<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field(
                "transports",
                &self.transports.iter().map(|t| t.0).collect::<Vec<_>>(),
            )
            .field("active", &self.active())
            .field("switches", &self.switches)
            .field("retry_better_after", &self.retry_better_after)
            .finish_non_exhaustive()
    }
}

// The active poller is boxed and never pinned in place; statuses are moved.
impl<S, E> Unpin for Fallback<S, E> {}

impl<S, E> Fallback<S, E> {
    /// The name of the transport in use, `None` before the first poll.
    pub fn active(&self) -> Option<&'static str> {
        let (index, _) = self.current.as_ref()?;
        self.transports.get(*index).map(|t| t.0)
    }

    /// How many times it switched transports.
    pub fn switches(&self) -> u32 {
        self.switches
    }
}

impl<S, E> Default for Fallback<S, E>
where
    S: Clone + PartialEq + Send + 'static,
    E: Send + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S, E> Fallback<S, E>
where
    S: Clone + PartialEq + Send + 'static,
    E: Send + 'static,
{
    /// A fallback with no transports yet; add them best first with
    /// [`then`](Self::then).
    pub fn new() -> Self {
        Fallback {
            transports: Vec::new(),
            unusable: Box::new(Error::is_transport_failure),
            retry_better_after: RETRY_BETTER_AFTER,
            current: None,
            last: None,
            skip_repeat: false,
            promote: None,
            silence: None,
            silent: None,
            switches: 0,
            max_switches: None,
            timeout: None,
            deadline: None,
            started: None,
            attempts: 0,
            alive_at: None,
            not_before: None,
            done: false,
        }
    }

    /// Adds the next transport, worse than those before it. `build` makes a
    /// poller that resumes after the last status seen.
    pub fn then(
        mut self,
        name: &'static str,
        build: impl FnMut(Option<&S>) -> BoxPoller<S, E> + Send + 'static,
    ) -> Self {
        self.transports.push((name, Box::new(build)));
        self
    }

    /// Which errors mean "this transport is not usable here" and move on to
    /// the next one (the others end the stream).
    ///
    /// # Default
    /// [`Error::is_transport_failure`]: every error but the deadline, the
    /// attempt limit and a status judged a failure, which would end the wait
    /// on any transport.
    ///
    /// # Examples
    /// ```
    /// use pollkit::{Error, Fallback, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let watch = Fallback::new()
    ///     .then("sse", |_: Option<&u8>| {
    ///         ShortPoll::new(|| async { Err::<u8, _>("401 Unauthorized") })
    ///             .retry_if(|_| false)
    ///             .boxed_poller()
    ///     })
    ///     .then("short", |_| ShortPoll::new(|| async { Ok(1) }).boxed_poller())
    ///     // Only a refused stream calls for another transport; bad credentials
    ///     // would fail on every one of them.
    ///     .unusable_if(|e| matches!(e, Error::Fetch(msg) if msg.starts_with("406")));
    /// let end = watch.until(|n| *n == 1).await;
    /// assert!(matches!(end, Err(Error::Fetch("401 Unauthorized"))));
    /// # }
    /// ```
    pub fn unusable_if(mut self, unusable: impl FnMut(&Error<E>) -> bool + Send + 'static) -> Self {
        self.unusable = Box::new(unusable);
        self
    }

    /// Moves on to the next transport when the active one shows no sign of
    /// life for this long: no status, no error, and no bytes or comments
    /// (an event stream behind a proxy that buffers it, held requests that a
    /// proxy swallows: they reconnect forever without ever failing). A quiet
    /// transport that is alive is kept: `SseStream` counts every chunk of
    /// bytes (keep-alive comments included), `ShortPoll` and `LongPoll` every
    /// response (an empty long-poll reply included), `LongPoll` a held
    /// request in flight within its per-request limit (not one that ran
    /// past it), and every strategy a wait for a server's hint
    /// (`Retry-After`: no transport asks the server before it ends), through `map_status`,
    /// `BoxPoller` and any wrapper; a poller of your own reports with
    /// [`heartbeat`](crate::heartbeat). Signs of life are counted on the thread
    /// that polls the `Fallback`: a transport whose work runs on another task
    /// reports them when it hands over what that task produced (see
    /// [`heartbeat`](crate::heartbeat)). Default: none.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Fallback, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let watch = Fallback::new()
    ///     // Never says anything: a stream buffered by a proxy.
    ///     .then("sse", |_: Option<&u8>| {
    ///         ShortPoll::new(|| std::future::pending::<Result<u8, String>>()).boxed_poller()
    ///     })
    ///     .then("short", |_: Option<&u8>| ShortPoll::new(|| async { Ok(1) }).boxed_poller())
    ///     .unusable_after(Duration::from_secs(30));
    /// let start = tokio::time::Instant::now();
    /// assert_eq!(watch.until(|n| *n == 1).await.unwrap(), 1);
    /// assert_eq!(start.elapsed(), Duration::from_secs(30));
    /// # }
    /// ```
    pub fn unusable_after(mut self, silence: Duration) -> Self {
        self.silence = Some(silence);
        self
    }

    /// A deadline over the whole watch, counted from the first poll and
    /// spanning every switch (each transport's own `timeout` starts afresh
    /// when it is built, so it cannot bound the watch). When it passes, the
    /// active transport is dropped and the stream ends with
    /// [`Error::Timeout`] (its `attempts` counts the requests of every
    /// transport). Default: none.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use pollkit::{Error, Fallback, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let watch = Fallback::new()
    ///     .then("refused", |_: Option<&u8>| {
    ///         ShortPoll::new(|| async { Err::<u8, _>("406") }).retry_if(|_| false).boxed_poller()
    ///     })
    ///     .then("short", |_| ShortPoll::new(|| async { Ok(0) }).boxed_poller())
    ///     .retry_better_after(Duration::from_secs(5))
    ///     .timeout(Duration::from_secs(60));
    /// let r = watch.until(|n| *n == 1).await;
    /// assert!(matches!(r, Err(Error::Timeout { .. })));
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The most times the watch may switch transports (falling back or going
    /// back to the best one). Past it, the active transport stays: its
    /// error ends the stream, and silence or `retry_better_after` no longer
    /// switch. Default: no limit.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use pollkit::{Error, Fallback, Poller, ShortPoll};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Error<&'static str>> {
    /// let mut watch = Fallback::new()
    ///     .then("sse", |_: Option<&u32>| {
    ///         ShortPoll::new(|| async { Err::<u32, _>("406 from the proxy") })
    ///             .retry_if(|_| false)
    ///             .boxed_poller()
    ///     })
    ///     .then("short", |last: Option<&u32>| {
    ///         let mut n = last.copied().unwrap_or(0);
    ///         ShortPoll::new(move || { n += 1; async move { Ok(n) } })
    ///             .interval(Duration::from_secs(10))
    ///             .boxed_poller()
    ///     })
    ///     .retry_better_after(Duration::from_secs(60))
    ///     .max_switches(1);
    /// // 100 s of statuses: the refused "sse" is not tried again after 60 s.
    /// for expected in 1..=11 {
    ///     assert_eq!(watch.next().await.transpose()?, Some(expected));
    /// }
    /// assert_eq!((watch.active(), watch.switches()), (Some("short"), 1));
    /// # Ok(()) }
    /// ```
    pub fn max_switches(mut self, max: u32) -> Self {
        self.max_switches = Some(max);
        self
    }

    /// Whether one more switch is allowed.
    fn can_switch(&self) -> bool {
        self.max_switches.is_none_or(|max| self.switches < max)
    }

    /// How long to stay on a worse transport before trying the best one
    /// again. At least 1 s (a shorter one is taken as 1 s). Default: 5 min.
    ///
    /// Only a transport that works is left for the best one (it showed
    /// life within the last minute, or within `unusable_after` if longer),
    /// and never while it waits out a server's hint: while the path is
    /// down, the active transport's own retry policy ends the watch with
    /// its last error, rather than every transport starting its failure
    /// bound afresh forever.
    pub fn retry_better_after(mut self, after: Duration) -> Self {
        self.retry_better_after = after.max(MIN_RETRY_BETTER_AFTER);
        self
    }

    /// The active transport said something: restart its silence timer
    /// (from the end of a server's hint it waits out, if later).
    fn heard_from(&mut self) {
        let Some(silence) = self.silence else {
            return;
        };
        let now = Instant::now();
        let from = self.not_before.map_or(now, |t| t.max(now));
        let at = crate::schedule::later(from, silence);
        match self.silent.as_mut() {
            Some(timer) => timer.as_mut().reset(at),
            None => self.silent = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Builds transport `index`, resuming after the last status seen.
    fn switch_to(&mut self, index: usize) {
        let Some((_, build)) = self.transports.get_mut(index) else {
            self.current = None;
            return;
        };
        let poller = build(self.last.as_ref());
        self.alive_at = None;
        if self.current.is_some() {
            self.switches = self.switches.saturating_add(1);
            self.skip_repeat = self.last.is_some();
        }
        self.current = Some((index, poller));
        self.heard_from();
        if index > 0 {
            let at = crate::schedule::later(Instant::now(), self.retry_better_after);
            match self.promote.as_mut() {
                Some(timer) => timer.as_mut().reset(at),
                None => self.promote = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
    }
}

impl<S, E> futures_core::FusedStream for Fallback<S, E>
where
    S: Clone + PartialEq + Send + 'static,
    E: Send + 'static,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<S, E> Stream for Fallback<S, E>
where
    S: Clone + PartialEq + Send + 'static,
    E: Send + 'static,
{
    type Item = Result<S, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let started = *this.started.get_or_insert_with(Instant::now);
            if let Some(timeout) = this.timeout {
                let timer = this.deadline.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(crate::schedule::later(
                        started, timeout,
                    )))
                });
                if timer.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    this.current = None;
                    return Poll::Ready(Some(Err(Error::Timeout {
                        elapsed: started.elapsed(),
                        attempts: this.attempts,
                        last_error: None,
                    })));
                }
            }
            let can_switch = this.can_switch();
            let Some((index, poller)) = this.current.as_mut() else {
                if this.transports.is_empty() {
                    this.done = true;
                    return Poll::Ready(None);
                }
                this.switch_to(0);
                continue;
            };
            let index = *index;
            let now = Instant::now();
            let hinted = this.not_before.is_some_and(|t| t > now);
            if index > 0 && can_switch && !hinted {
                if let Some(timer) = this.promote.as_mut() {
                    // Only a transport that works is left for the best
                    // one: while the path is down, the active transport's
                    // own retry policy ends the watch (promoting would
                    // start every transport's failure bound afresh, and a
                    // dead path would be watched forever).
                    let fresh = this.silence.unwrap_or(PROMOTE_FRESH).max(PROMOTE_FRESH);
                    let works = this
                        .alive_at
                        .is_some_and(|t| now.saturating_duration_since(t) <= fresh);
                    if timer.as_mut().poll(cx).is_ready() && works {
                        this.switch_to(0);
                        continue;
                    }
                }
            }
            let (beats, requests) = (crate::life::beats(), crate::life::requests());
            let hints = crate::life::hints();
            let polled = Pin::new(poller).poll_next(cx);
            let made = crate::life::requests().wrapping_sub(requests);
            this.attempts = this
                .attempts
                .saturating_add(u32::try_from(made).unwrap_or(u32::MAX));
            let (count, until) = crate::life::hints();
            if count != hints.0 {
                // The transport waits out a server's hint: the server spoke,
                // and no other transport may ask it before the hint ends.
                this.not_before = until;
                this.heard_from();
            }
            if crate::life::beats() != beats {
                // Bytes, a comment or a response without news: alive.
                this.alive_at = Some(Instant::now());
                this.heard_from();
            }
            let item = match polled {
                Poll::Ready(item) => item,
                Poll::Pending => {
                    let silent = this
                        .silent
                        .as_mut()
                        .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
                    let hinted = this.not_before.is_some_and(|t| t > Instant::now());
                    if silent && !hinted && can_switch && index + 1 < this.transports.len() {
                        this.switch_to(index + 1);
                        continue;
                    }
                    return Poll::Pending;
                }
            };
            this.heard_from();
            match item {
                Some(Ok(status)) => {
                    // Only a status shows that a transport works: the error
                    // that ends one does not (promoting back to a better
                    // transport on it would start every transport's failure
                    // bound afresh, and a dead path would be watched forever).
                    this.alive_at = Some(Instant::now());
                    let repeat = std::mem::take(&mut this.skip_repeat)
                        && this.last.as_ref() == Some(&status);
                    if repeat {
                        continue;
                    }
                    this.last = Some(status.clone());
                    return Poll::Ready(Some(Ok(status)));
                }
                Some(Err(e)) => {
                    if can_switch && index + 1 < this.transports.len() && (this.unusable)(&e) {
                        this.switch_to(index + 1);
                        continue;
                    }
                    this.done = true;
                    this.current = None;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    if can_switch && index + 1 < this.transports.len() {
                        this.switch_to(index + 1);
                        continue;
                    }
                    this.done = true;
                    this.current = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}
