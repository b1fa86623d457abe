//! [`Asked`]: a shared admission's answer in flight, which gives its slot
//! back if the poller is dropped before the answer arrives.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::time::Instant;

use crate::Admission;

type Answer = Pin<Box<dyn Future<Output = Option<Instant>> + Send>>;

/// How long an answer whose poller was dropped is still waited for in the
/// background, to give its slot back: far longer than any round trip an
/// admission should take (pollkit-redis bounds its own at 250 ms).
pub(crate) const ABANDONED_ANSWER_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A [`Reservation::Pending`](crate::Reservation::Pending) answer and the
/// admission that gave it.
///
/// An answer is a round trip that may book a slot on the far side (a Redis
/// script) before it comes back: dropped half-way, the slot would stay
/// booked and unused, and every later request of the fleet would wait one
/// period longer. So an answer dropped before it resolved is finished in
/// the background, on the Tokio runtime of the thread that drops it, and the
/// slot it brings is [released](Admission::release). Outside a runtime it is
/// dropped. An answer that has not come back [`ABANDONED_ANSWER_LIMIT`]
/// after its poller was dropped is dropped too, so an admission whose
/// answers hang (a store that never replies) cannot keep one task alive per
/// dropped poller.
pub(crate) struct Asked {
    answer: Option<Answer>,
    admission: Arc<dyn Admission>,
}

impl Asked {
    pub(crate) fn new(answer: Answer, admission: Arc<dyn Admission>) -> Self {
        Asked {
            answer: Some(answer),
            admission,
        }
    }
}

impl Future for Asked {
    type Output = Option<Instant>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(answer) = self.answer.as_mut() else {
            // Polled after it resolved: nothing more to wait for.
            return Poll::Ready(None);
        };
        let slot = std::task::ready!(answer.as_mut().poll(cx));
        self.answer = None;
        Poll::Ready(slot)
    }
}

impl Drop for Asked {
    fn drop(&mut self) {
        let Some(answer) = self.answer.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let admission = Arc::clone(&self.admission);
        runtime.spawn(async move {
            if let Ok(Some(slot)) = tokio::time::timeout(ABANDONED_ANSWER_LIMIT, answer).await {
                admission.release(slot);
            }
        });
    }
}

impl fmt::Debug for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Asked")
            .field("pending", &self.answer.is_some())
            .field("admission", &self.admission)
            .finish()
    }
}
