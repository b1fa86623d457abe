//! [`Rules`]: the user's say on which failures of a long poll are a path's
//! cut, and which mean that the cursor expired.

use std::fmt;

use crate::hooks::Exclusive;

type Classify<E> = Box<dyn FnMut(&E) -> bool + Send>;

/// LongPoll's own classifiers, boxed once one is set.
pub(crate) struct Rules<E> {
    fns: Option<Box<Exclusive<Fns<E>>>>,
}

struct Fns<E> {
    cut_if: Option<Classify<E>>,
    expired_if: Option<Classify<E>>,
}

impl<E> Default for Rules<E> {
    fn default() -> Self {
        Rules { fns: None }
    }
}

impl<E> fmt::Debug for Rules<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules").finish_non_exhaustive()
    }
}

impl<E> Rules<E> {
    fn set(&mut self) -> &mut Fns<E> {
        self.fns
            .get_or_insert_with(|| {
                Box::new(Exclusive::new(Fns {
                    cut_if: None,
                    expired_if: None,
                }))
            })
            .get_mut()
    }

    pub(crate) fn set_cut_if(&mut self, f: impl FnMut(&E) -> bool + Send + 'static) {
        self.set().cut_if = Some(Box::new(f));
    }

    pub(crate) fn set_expired_if(&mut self, f: impl FnMut(&E) -> bool + Send + 'static) {
        self.set().expired_if = Some(Box::new(f));
    }

    /// Whether a transient failure without a hint may be a path's cut
    /// (default: yes).
    pub(crate) fn may_be_cut(&mut self, e: &E) -> bool {
        let f = self.fns.as_mut().and_then(|f| f.get_mut().cut_if.as_mut());
        f.is_none_or(|f| f(e))
    }

    /// Whether `e` says the cursor sent has expired (default: never).
    pub(crate) fn is_expired(&mut self, e: &E) -> bool {
        let f = self
            .fns
            .as_mut()
            .and_then(|f| f.get_mut().expired_if.as_mut());
        f.is_some_and(|f| f(e))
    }
}
