//! The user's classification and hint functions, shared by every strategy.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

type Classify<E> = Box<dyn FnMut(&E) -> bool + Send>;
type Hint<T> = Box<dyn FnMut(&T) -> Option<Duration> + Send>;
type Changed<S> = Box<dyn FnMut(&S) -> bool + Send>;
type Observe<E> = Box<dyn FnMut(&crate::Retry<'_, E>) + Send>;

/// A value only ever reached through `&mut`, so it is `Sync` whatever its
/// contents are (like the unstable `std::sync::Exclusive`): the user's
/// closures need only be `Send`, and a poller that holds them stays `Sync`.
/// The mutex is never locked; `get_mut` costs nothing.
pub(crate) struct Exclusive<T>(Mutex<T>);

impl<T> fmt::Debug for Exclusive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exclusive(..)")
    }
}

impl<T> Exclusive<T> {
    pub(crate) fn new(value: T) -> Self {
        Exclusive(Mutex::new(value))
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        // Never locked, so never poisoned.
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which errors are transient, and what the server hinted about the next request.
///
/// The functions are boxed once when the poller is configured. That keeps the
/// strategies' type signatures short (`ShortPoll<F, Fut>`), costs no allocation
/// per poll, and a dynamic call per response is noise beside a network request.
pub(crate) struct Hooks<S, E> {
    /// Boxed only once a hook is set: a poller without hooks carries one
    /// pointer, not seven.
    fns: Option<Box<Exclusive<Fns<S, E>>>>,
}

struct Fns<S, E> {
    retry_if: Option<Classify<E>>,
    pending_if: Option<Classify<E>>,
    stop_if: Option<Classify<E>>,
    poll_after: Option<Hint<S>>,
    retry_after: Option<Hint<E>>,
    changed: Option<Changed<S>>,
    eta: Option<Hint<S>>,
    on_retry: Option<Observe<E>>,
}

impl<S, E> Default for Hooks<S, E> {
    fn default() -> Self {
        Hooks { fns: None }
    }
}

impl<S, E> fmt::Debug for Hooks<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

impl<S, E> Hooks<S, E> {
    /// The hooks, when any is set.
    #[inline]
    fn get(&mut self) -> Option<&mut Fns<S, E>> {
        self.fns.as_mut().map(|fns| fns.get_mut())
    }

    /// The hooks, boxed on the first one set.
    fn set(&mut self) -> &mut Fns<S, E> {
        self.fns
            .get_or_insert_with(|| {
                Box::new(Exclusive::new(Fns {
                    retry_if: None,
                    pending_if: None,
                    stop_if: None,
                    poll_after: None,
                    retry_after: None,
                    changed: None,
                    eta: None,
                    on_retry: None,
                }))
            })
            .get_mut()
    }

    pub(crate) fn set_retry_if(&mut self, f: impl FnMut(&E) -> bool + Send + 'static) {
        self.set().retry_if = Some(Box::new(f));
    }

    pub(crate) fn set_pending_if(&mut self, f: impl FnMut(&E) -> bool + Send + 'static) {
        self.set().pending_if = Some(Box::new(f));
    }

    /// Whether `e` is an answer meaning "not yet" (the user's `pending_if`):
    /// not a failure, so not counted, retried or remembered.
    pub(crate) fn is_pending(&mut self, e: &E) -> bool {
        self.get()
            .and_then(|fns| fns.pending_if.as_mut())
            .is_some_and(|f| f(e))
    }

    pub(crate) fn set_stop_if(&mut self, f: impl FnMut(&E) -> bool + Send + 'static) {
        self.set().stop_if = Some(Box::new(f));
    }

    pub(crate) fn set_poll_after(
        &mut self,
        f: impl FnMut(&S) -> Option<Duration> + Send + 'static,
    ) {
        self.set().poll_after = Some(Box::new(f));
    }

    pub(crate) fn set_retry_after(
        &mut self,
        f: impl FnMut(&E) -> Option<Duration> + Send + 'static,
    ) {
        self.set().retry_after = Some(Box::new(f));
    }

    /// Tracks changes between statuses (adaptive pacing).
    pub(crate) fn track_changes(&mut self)
    where
        S: PartialEq + Clone + Send + 'static,
    {
        let mut last: Option<S> = None;
        self.set().changed = Some(Box::new(move |s: &S| {
            // The first status is the starting point, not a change.
            let changed = last.as_ref().is_some_and(|last| last != s);
            if last.as_ref() != Some(s) {
                last = Some(s.clone());
            }
            changed
        }));
    }

    pub(crate) fn set_eta(&mut self, f: impl FnMut(&S) -> Option<Duration> + Send + 'static) {
        self.set().eta = Some(Box::new(f));
    }

    /// For adaptive pacing: whether `s` differs from the status before, and
    /// the expected time left it reports. `None` when pacing is not adaptive.
    pub(crate) fn observe(&mut self, s: &S) -> Option<(bool, Option<Duration>)> {
        let fns = self.get()?;
        let changed = fns.changed.as_mut()?(s);
        let eta = fns.eta.as_mut().and_then(|f| f(s));
        Some((changed, eta))
    }

    /// Whether `e` is worth retrying. Without `retry_if`, every error is
    /// transient: the backoff's time bound still ends a permanent one.
    pub(crate) fn is_transient(&mut self, e: &E) -> bool {
        self.get()
            .and_then(|fns| fns.retry_if.as_mut())
            .is_none_or(|f| f(e))
    }

    pub(crate) fn set_on_retry(&mut self, f: impl FnMut(&crate::Retry<'_, E>) + Send + 'static) {
        self.set().on_retry = Some(Box::new(f));
    }

    /// Tells the retry observer, if there is one, about a retry.
    pub(crate) fn retrying(&mut self, retry: &crate::Retry<'_, E>) {
        if let Some(f) = self.get().and_then(|fns| fns.on_retry.as_mut()) {
            f(retry);
        }
    }

    /// Whether `e` is the server asking the client to stop (an SSE 204).
    pub(crate) fn is_stop(&mut self, e: &E) -> bool {
        self.get()
            .and_then(|fns| fns.stop_if.as_mut())
            .is_some_and(|f| f(e))
    }

    /// The server's "ask again in" after a success.
    pub(crate) fn poll_after(&mut self, s: &S) -> Option<Duration> {
        self.get()?.poll_after.as_mut().and_then(|f| f(s))
    }

    /// The server's "retry after" on an error.
    pub(crate) fn retry_after(&mut self, e: &E) -> Option<Duration> {
        self.get()?.retry_after.as_mut().and_then(|f| f(e))
    }
}
