//! [`Admission`]: a shared step every request passes before it starts, such
//! as a request budget shared by a fleet.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

/// A step every request of a poller passes before it starts: it reserves the
/// instant the request may start. [`Budget`](crate::Budget) is one, in
/// process; a fleet-wide budget kept in a shared store (Redis) is another,
/// whose reservation is a round trip.
///
/// Give one to a poller with `.admission(..)` (or `.budget(..)`). The poller
/// calls [`reserve`](Admission::reserve) once per request, right when the
/// request is due, and starts it at the instant the reservation gives (never
/// before `due`).
///
/// # Contract
/// - Reserve the earliest slot at or after `due`, in the order requests ask.
/// - Never push a request past `deadline`: when no slot is free now and the
///   earliest one is at or after it, reserve nothing and answer
///   [`Reservation::Refused`] (or `None` from a pending answer). The poller
///   then ends with [`Error::Timeout`](crate::Error::Timeout) at its
///   deadline without a final request, so pollers that share a deadline
///   cannot all send one over budget.
/// - Answer quickly, or at once with [`Reservation::At`]; a
///   [`Reservation::Pending`] future that fails should still resolve (to
///   `Some(due)`, or a local estimate): trouble with the admission itself
///   never ends a poller.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use pollkit::{Admission, Poller, Reservation, ShortPoll};
/// use tokio::time::Instant;
///
/// /// Every request waits one more second than the one before (a toy).
/// #[derive(Debug, Default)]
/// struct Slower(std::sync::Mutex<u32>);
///
/// impl Admission for Slower {
///     fn reserve(&self, due: Instant, deadline: Option<Instant>) -> Reservation {
///         let mut n = self.0.lock().unwrap();
///         *n += 1;
///         let at = due + Duration::from_secs(u64::from(*n));
///         match deadline {
///             Some(d) if at >= d => Reservation::Refused,
///             _ => Reservation::At(at),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = Instant::now();
/// let mut n = 0;
/// let _ = ShortPoll::new(move || { n += 1; async move { Ok::<_, String>(n) } })
///     .interval(Duration::ZERO)
///     .admission(Slower::default())
///     .until(|n| *n == 3)
///     .await;
/// assert_eq!(start.elapsed(), Duration::from_secs(1 + 2 + 3));
/// # }
/// ```
pub trait Admission: fmt::Debug + Send + Sync + 'static {
    /// Reserves the start of a request due at `due` that must not start
    /// after `deadline` (see the trait's contract).
    fn reserve(&self, due: Instant, deadline: Option<Instant>) -> Reservation;

    /// A reservation the poller will not use (it was dropped while waiting
    /// for its slot, or while a [`Reservation::Pending`] answer was in
    /// flight: the answer is then finished in the background and its slot
    /// given back here): give the slot back if the admission can, to the
    /// next request that asks at or before it, without moving the slots
    /// booked after it. Default: nothing.
    fn release(&self, slot: Instant) {
        let _ = slot;
    }
}

/// The answer of an [`Admission`]: the instant a request may start, now or
/// after a round trip, or no slot before the poller's deadline.
///
/// It is `#[non_exhaustive]`: a `match` on one ends with `_`, so that a later
/// kind of answer does not break it.
///
/// # Examples
/// ```
/// use std::{sync::{Arc, Mutex}, time::Duration};
/// use pollkit::{Admission, Error, Poller, Reservation, ShortPoll};
/// use tokio::time::Instant;
///
/// #[derive(Clone, Debug)]
/// struct PerMinute(Arc<Mutex<Instant>>); // the next free slot, shared by clones
/// impl Admission for PerMinute {
///     fn reserve(&self, due: Instant, deadline: Option<Instant>) -> Reservation {
///         let mut next = self.0.lock().unwrap();
///         let slot = due.max(*next);
///         if deadline.is_some_and(|d| slot > due && slot >= d) {
///             return Reservation::Refused; // nothing reserved: the slot stays free
///         }
///         *next = slot + Duration::from_secs(60); // one request a minute, fleet-wide
///         Reservation::At(slot)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Error<std::io::Error>> {
/// let (start, fetch) = (Instant::now(), || async { Ok::<_, std::io::Error>("ready") });
/// let quota = PerMinute(Arc::new(Mutex::new(start + Duration::from_secs(60))));
/// let poll = |timeout| ShortPoll::new(fetch).admission(quota.clone()).timeout(timeout).until(|_| true);
/// // The free slot (60 s) is past a 30 s deadline: refused, and no request is made.
/// assert!(matches!(poll(Duration::from_secs(30)).await, Err(Error::Timeout { attempts: 0, .. })));
/// // The refusal took nothing: the next poller is admitted at 60 s.
/// assert_eq!((poll(Duration::MAX).await?, start.elapsed()), ("ready", Duration::from_secs(60)));
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub enum Reservation {
    /// Start at this instant (`due` or later).
    At(Instant),
    /// No slot before the deadline: nothing was reserved.
    Refused,
    /// Ask a shared service; the future resolves to the start instant, or
    /// to `None` for a refusal. If the poller is dropped before the future
    /// resolves, the future is finished in the background on the current
    /// Tokio runtime and the slot it brings goes to
    /// [`Admission::release`], since the far side may have booked it. It is
    /// waited for at most a minute there, then dropped: the answer should
    /// resolve in bounded time.
    Pending(Pin<Box<dyn Future<Output = Option<Instant>> + Send>>),
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reservation::At(at) => f.debug_tuple("At").field(at).finish(),
            Reservation::Refused => f.write_str("Refused"),
            Reservation::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}
