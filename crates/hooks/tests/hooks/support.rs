//! A test `Hook` that sleeps (tokio time, so paused time works), records what it saw and how many
//! ran at once, can fail, and notices when its future is dropped; plus an outcome recorder.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hooks::{
    Backend, Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, ErrorKind, Hook, HookError,
    HookStatus, Protocol, async_trait,
};

/// Usernames starting with this make [`TestHook`] fail.
pub(crate) const FAIL: &str = "fail";

/// What a [`TestHook`] call saw.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) event: DisconnectEvent,
    /// Virtual (tokio) time since the hook was created, when the call started.
    pub(crate) started_at: Duration,
}

#[derive(Debug)]
pub(crate) struct TestHook {
    /// How long one attempt takes.
    delay: Duration,
    /// Attempts per call (simulates retries: the slot is held across all of them).
    attempts: u32,
    created: tokio::time::Instant,
    seen: Mutex<Vec<Seen>>,
    current: AtomicUsize,
    max: AtomicUsize,
    finished: AtomicUsize,
    cancelled: AtomicUsize,
}

impl TestHook {
    pub(crate) fn new(delay: Duration) -> Arc<TestHook> {
        TestHook::with_attempts(delay, 1)
    }

    pub(crate) fn with_attempts(delay: Duration, attempts: u32) -> Arc<TestHook> {
        Arc::new(TestHook {
            delay,
            attempts,
            created: tokio::time::Instant::now(),
            seen: Mutex::new(Vec::new()),
            current: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
        })
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Calls started.
    pub(crate) fn started(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Most calls running at the same time.
    pub(crate) fn max_concurrency(&self) -> usize {
        self.max.load(SeqCst)
    }

    pub(crate) fn finished(&self) -> usize {
        self.finished.load(SeqCst)
    }

    /// Calls whose future was dropped before it finished.
    pub(crate) fn cancelled(&self) -> usize {
        self.cancelled.load(SeqCst)
    }
}

struct CallGuard<'a> {
    hook: &'a TestHook,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.hook.current.fetch_sub(1, SeqCst);
        if self.done {
            self.hook.finished.fetch_add(1, SeqCst);
        } else {
            self.hook.cancelled.fetch_add(1, SeqCst);
        }
    }
}

#[async_trait]
impl Hook for TestHook {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        let now = self.current.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        let mut guard = CallGuard {
            hook: self,
            done: false,
        };
        self.seen.lock().unwrap().push(Seen {
            event: event.clone(),
            started_at: self.created.elapsed(),
        });
        for _ in 0..self.attempts {
            tokio::time::sleep(self.delay).await;
        }
        guard.done = true;
        if event.username().starts_with(FAIL) {
            return Err(
                HookError::new(ErrorKind::ExitStatus, "test hook: exit status 3")
                    .with_backend(Backend::Custom("test"))
                    .with_status(HookStatus::Exit(3))
                    .with_attempts(self.attempts),
            );
        }
        Ok(Delivery::new(
            Backend::Custom("test"),
            self.attempts,
            self.delay * self.attempts,
        ))
    }
}

/// What the outcome callback received: the event and `Ok(backend)` or `Err(kind)`.
pub(crate) type Outcomes = Arc<Mutex<Vec<(DisconnectEvent, Result<Backend, ErrorKind>)>>>;

/// Options with a callback recording every outcome.
pub(crate) fn recording(options: DispatcherOptions) -> (DispatcherOptions, Outcomes) {
    let outcomes: Outcomes = Arc::default();
    let sink = Arc::clone(&outcomes);
    let options = options.with_on_outcome(move |event, outcome| {
        let summary = outcome
            .as_ref()
            .map(Delivery::backend)
            .map_err(HookError::kind);
        sink.lock().unwrap().push((event.clone(), summary));
    });
    (options, outcomes)
}

/// How many recorded outcomes are errors of `kind`.
pub(crate) fn count_errors(outcomes: &Outcomes, kind: ErrorKind) -> usize {
    outcomes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, o)| *o == Err(kind))
        .count()
}

/// An SFTP event for user `name`.
pub(crate) fn event(name: &str) -> DisconnectEvent {
    DisconnectEvent::builder(Protocol::Sftp)
        .ip("192.0.2.10")
        .username(name)
        .duration(Duration::from_millis(1500))
        .build()
}

/// Yields until `cond` holds, at most `max_yields` times; false if it never did. Used to let the
/// dispatcher task start hooks on a current-thread runtime without sleeping.
pub(crate) async fn yield_until(max_yields: usize, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..max_yields {
        if cond() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    cond()
}

/// Waits until `dispatcher` has `n` hooks in flight (yielding, no sleeping).
pub(crate) async fn until_in_flight(dispatcher: &Dispatcher, n: u64) {
    assert!(
        yield_until(100_000, || dispatcher.stats().in_flight == n).await,
        "never reached {n} in flight: {:?}",
        dispatcher.stats()
    );
}
