//! [`Completion`]: the answer of the writer thread to one operation, awaited or waited for.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::{SpoolError, SpoolErrorKind};

struct Slot<T> {
    result: Option<Result<T, SpoolError>>,
    waker: Option<Waker>,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

/// The result of an operation the writer thread carries out later: for
/// [`append_durable`](crate::Spool::append_durable), the commit that made the event durable.
///
/// Await it (it is a [`Future`], runtime-agnostic) or block on it with [`wait`](Completion::wait)
/// (from a thread that may block, never from an async task). Dropping it does not cancel the
/// operation. If the writer stops before answering, it resolves with
/// [`SpoolErrorKind::Closed`] or [`SpoolErrorKind::Unavailable`]: it never hangs.
#[must_use = "a Completion does nothing unless awaited or waited for; drop it to ignore the result"]
pub struct Completion<T> {
    shared: Arc<Shared<T>>,
}

/// The writer's end of a [`Completion`]; resolves it with `Unavailable` if dropped unanswered.
pub(crate) struct Completer<T> {
    shared: Option<Arc<Shared<T>>>,
}

/// A new pair: the caller keeps the [`Completion`], the writer the [`Completer`].
pub(crate) fn completion<T>() -> (Completion<T>, Completer<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            result: None,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Completion {
            shared: Arc::clone(&shared),
        },
        Completer {
            shared: Some(shared),
        },
    )
}

impl<T> Completion<T> {
    /// A completion that is already resolved with `result`.
    pub(crate) fn ready(result: Result<T, SpoolError>) -> Completion<T> {
        let (completion, completer) = completion();
        completer.complete(result);
        completion
    }

    /// Blocks the calling thread until the operation is done, and returns its result.
    pub fn wait(self) -> Result<T, SpoolError> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = slot.result.take() {
                return result;
            }
            slot = self
                .shared
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks for at most `timeout`: the result if the operation is done by then, else the
    /// completion back (the operation goes on).
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, SpoolError>, Completion<T>> {
        let slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (mut slot, _) = self
            .shared
            .ready
            .wait_timeout_while(slot, timeout, |s| s.result.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        match slot.result.take() {
            Some(result) => Ok(result),
            None => {
                drop(slot);
                Err(self)
            }
        }
    }

    /// Whether the operation is done (its result can be taken without blocking).
    pub fn is_done(&self) -> bool {
        self.shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .result
            .is_some()
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T, SpoolError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match slot.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<T> fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion")
            .field("done", &self.is_done())
            .finish()
    }
}

impl<T> Completer<T> {
    /// Resolves the completion with `result` and wakes whoever waits.
    pub(crate) fn complete(mut self, result: Result<T, SpoolError>) {
        if let Some(shared) = self.shared.take() {
            let waker = {
                let mut slot = shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
                slot.result = Some(result);
                slot.waker.take()
            };
            shared.ready.notify_all();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if self.shared.is_some() {
            let me = Completer {
                shared: self.shared.take(),
            };
            me.complete(Err(SpoolError::new(
                SpoolErrorKind::Unavailable,
                "the spool writer stopped before finishing the operation",
            )));
        }
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}
