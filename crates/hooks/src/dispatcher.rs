//! [`Dispatcher`]: hands every disconnect to the hook without ever blocking the connection's task,
//! with a bounded queue, a bounded number of hooks in flight, and a drain at shutdown (spec Part A
//! D2, D3, D4, D15).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use hook_core::{Delivery, DisconnectEvent, ErrorKind, Hook, HookError, Protocol};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::metrics::{Metrics, Timer};
use crate::options::OutcomeCallback;
use crate::stats::Counters;
use crate::{DispatcherOptions, DispatcherStats, FireError, FireErrorKind, Fired, ShutdownReport};

/// Runs a [`Hook`] for every disconnect, in the background, within limits.
///
/// * [`fire`](Dispatcher::fire) is synchronous and returns at once: it never awaits the hook,
///   never blocks and never needs the runtime, so it can be called from a connection's `Drop`
///   impl inside a tokio runtime (the russh pattern) as well as from a plain thread.
/// * Accepted events wait in a bounded queue ([`DispatcherOptions::with_queue_capacity`],
///   default 10,000). When it is full, `fire` refuses the event with
///   [`FireErrorKind::QueueFull`]; the refusal is counted and logged at WARN (summarised at most
///   once a second, so a storm cannot flood the log). Nothing is dropped silently.
/// * At most [`max_in_flight`](DispatcherOptions::with_max_in_flight) hooks run at once (default
///   150, SFTPGo's slots), each as its own task. A hook holds its slot for its whole
///   [`on_disconnect`](Hook::on_disconnect) call, retries and backoff waits included.
/// * Only the protocols of the filter fire (default `SFTP`, `SCP`, `SSH`, `FTP`, as in
///   SFTPGo); other events are answered [`Fired::Filtered`] and counted.
/// * The event is passed to the hook as it was fired: its duration, fixed at disconnect, is never
///   recomputed, however long the event waited in the queue (D2).
/// * Each hook call runs in a `post_disconnect_hook` tracing span (INFO) with the fields
///   `protocol`, `ip`, `username` and `duration_ms`; the backends log failures at WARN inside it.
/// * Every accepted event's outcome goes to the
///   [outcome callback](DispatcherOptions::with_on_outcome), exactly once, and to the counters
///   ([`stats`](Dispatcher::stats)).
/// * [`shutdown`](Dispatcher::shutdown) stops intake, waits for queued and running hooks up to a
///   deadline (woken by each completion, no polling), then cancels the rest and reports.
///
/// `Dispatcher` is a cheap handle: clone it into every connection task. When the last clone is
/// dropped without [`shutdown`](Dispatcher::shutdown), the dispatcher stops at once: queued
/// events are abandoned and running hooks are cancelled (their futures dropped, which makes the
/// exec backend kill the program's process group); each is reported to the outcome callback as
/// [`ErrorKind::Cancelled`]. Call `shutdown` for a graceful drain.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, Hook, Protocol};
///
/// # async fn demo(hook: Arc<dyn Hook>) {
/// let dispatcher = Dispatcher::new(hook, DispatcherOptions::default());
///
/// // In a connection's task (or its Drop impl), at disconnect:
/// let started = Instant::now();
/// let peer = "192.0.2.7:50022".parse().unwrap();
/// let event = DisconnectEvent::from_socket_addr(peer, Protocol::Sftp, "alice", started);
/// if let Err(err) = dispatcher.fire(event) {
///     eprintln!("{err}"); // queue full or shutting down; already counted and logged
/// }
///
/// // At server shutdown:
/// let report = dispatcher.shutdown(Duration::from_secs(30)).await;
/// println!("delivered {}, failed {}, abandoned {}", report.delivered, report.failed, report.abandoned);
/// # }
/// ```
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// What `fire` and `shutdown` use; dropped with the last `Dispatcher` clone.
struct Inner {
    tx: mpsc::Sender<DisconnectEvent>,
    shared: Arc<Shared>,
    protocols: Vec<Protocol>,
    queue_capacity: usize,
    max_in_flight: usize,
    closing: AtomicBool,
    refusals: RefusalLog,
    control: tokio::sync::Mutex<Control>,
}

/// What the dispatcher task and the hook tasks share.
struct Shared {
    hook: Arc<dyn Hook>,
    on_outcome: Option<OutcomeCallback>,
    counters: Counters,
    metrics: Metrics,
}

/// The shutdown hand-shake with the dispatcher task.
struct Control {
    /// Taken by the first `shutdown` call to send the deadline.
    deadline_tx: Option<oneshot::Sender<Instant>>,
    /// The dispatcher task; it ends when nothing is queued or running any more.
    task: JoinHandle<()>,
    /// Set when the task has ended: how long the first `shutdown` took.
    finished: Option<Duration>,
}

impl Dispatcher {
    /// Starts a dispatcher for `hook` on the current tokio runtime (which must have its time
    /// driver enabled, as `#[tokio::main]` and `Runtime::new` do).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn new(hook: Arc<dyn Hook>, mut options: DispatcherOptions) -> Dispatcher {
        let queue_capacity = options.queue_capacity();
        let max_in_flight = options.max_in_flight();
        let (tx, rx) = mpsc::channel(queue_capacity);
        let (deadline_tx, deadline_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            hook,
            on_outcome: options.take_on_outcome(),
            counters: Counters::default(),
            metrics: Metrics::new(queue_capacity, max_in_flight),
        });
        let queue = Queue {
            rx,
            shared: Arc::clone(&shared),
        };
        let task = tokio::spawn(dispatch(
            Arc::clone(&shared),
            queue,
            max_in_flight,
            deadline_rx,
        ));
        Dispatcher {
            inner: Arc::new(Inner {
                tx,
                shared,
                protocols: options.protocols().to_vec(),
                queue_capacity,
                max_in_flight,
                closing: AtomicBool::new(false),
                refusals: RefusalLog::new(),
                control: tokio::sync::Mutex::new(Control {
                    deadline_tx: Some(deadline_tx),
                    task,
                    finished: None,
                }),
            }),
        }
    }

    /// Hands `event` to the hook, in the background, and returns at once.
    ///
    /// * `Ok(`[`Fired::Queued`]`)`: accepted; its outcome will reach the callback and counters.
    /// * `Ok(`[`Fired::Filtered`]`)`: its protocol is not in the filter; counted, not delivered.
    /// * `Err` of kind [`FireErrorKind::QueueFull`] or [`FireErrorKind::ShuttingDown`]: refused,
    ///   counted and logged (summarised); the error hands the event back.
    ///
    /// Never blocks and needs no runtime context: safe in `Drop` impls and on any thread.
    pub fn fire(&self, event: DisconnectEvent) -> Result<Fired, FireError> {
        let inner = &*self.inner;
        let counters = &inner.shared.counters;
        inner.shared.metrics.fired(event.protocol());
        if !inner.protocols.contains(&event.protocol()) {
            inner.shared.metrics.filtered(event.protocol());
            counters.filtered.fetch_add(1, Release);
            return Ok(Fired::Filtered);
        }
        if inner.closing.load(Acquire) {
            return Err(self.refuse(FireErrorKind::ShuttingDown, event));
        }
        // Counted before the send so the dispatcher task, which decrements it, never sees it
        // go below zero.
        counters.queued.fetch_add(1, AcqRel);
        inner.shared.metrics.queue_depth(1);
        match inner.tx.try_send(event) {
            Ok(()) => {
                counters.accepted.fetch_add(1, Release);
                Ok(Fired::Queued)
            }
            Err(err) => {
                counters.queued.fetch_sub(1, AcqRel);
                inner.shared.metrics.queue_depth(-1);
                let (kind, event) = match err {
                    mpsc::error::TrySendError::Full(event) => (FireErrorKind::QueueFull, event),
                    mpsc::error::TrySendError::Closed(event) => {
                        (FireErrorKind::ShuttingDown, event)
                    }
                };
                Err(self.refuse(kind, event))
            }
        }
    }

    fn refuse(&self, kind: FireErrorKind, event: DisconnectEvent) -> FireError {
        let inner = &*self.inner;
        let counters = &inner.shared.counters;
        inner.shared.metrics.refused(kind);
        match kind {
            FireErrorKind::QueueFull => counters.refused_queue_full.fetch_add(1, Release),
            FireErrorKind::ShuttingDown => counters.refused_shutting_down.fetch_add(1, Release),
        };
        inner.refusals.record(kind, inner.queue_capacity, counters);
        FireError::new(kind, inner.queue_capacity, event)
    }

    /// Stops taking events, waits up to `deadline` for the queued and running hooks, then
    /// cancels whatever is left and reports.
    ///
    /// * Intake stops at once: from now on [`fire`](Dispatcher::fire) refuses with
    ///   [`FireErrorKind::ShuttingDown`].
    /// * Queued events still start as slots free up, until the deadline.
    /// * The wait ends as soon as the last hook finishes (each completion wakes it; no polling).
    /// * At the deadline, queued events are abandoned and running hooks are cancelled by
    ///   dropping their futures (the exec backend kills the program's process group, the HTTP
    ///   backend drops the request); each is reported to the outcome callback as
    ///   [`ErrorKind::Cancelled`] and counted in [`ShutdownReport::abandoned`].
    ///
    /// Calling it again (or from another clone) is harmless: a concurrent call waits for the
    /// first one to end; a later call returns at once. Both return the same report, with the
    /// refusal count brought up to date. Cancelling the returned future does not cancel the
    /// shutdown: the deadline still applies, and a later call waits for the rest.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let began = Instant::now();
        let inner = &*self.inner;
        inner.closing.store(true, Release);
        let mut control = inner.control.lock().await;
        if control.finished.is_none() {
            if let Some(deadline_tx) = control.deadline_tx.take() {
                let at = began.checked_add(deadline).unwrap_or_else(far_future);
                // The task may have ended already (it never does on its own); nothing to do then.
                let _ = deadline_tx.send(at);
            }
            // Ends when nothing is queued or running; a panic here would be a bug of ours, and
            // the counters still tell what happened.
            let _ = (&mut control.task).await;
            control.finished = Some(began.elapsed());
            let stats = inner.shared.counters.snapshot();
            if stats.refused() > 0 || stats.abandoned() > 0 {
                tracing::warn!(
                    delivered = stats.delivered,
                    failed = stats.failed,
                    abandoned = stats.abandoned(),
                    refused = stats.refused(),
                    "post-disconnect hook dispatcher shut down with events not delivered"
                );
            } else {
                tracing::debug!(
                    delivered = stats.delivered,
                    failed = stats.failed,
                    "post-disconnect hook dispatcher shut down"
                );
            }
        }
        let elapsed = control.finished.unwrap_or_default();
        ShutdownReport::from_stats(inner.shared.counters.snapshot(), elapsed)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> DispatcherStats {
        self.inner.shared.counters.snapshot()
    }

    /// Whether [`shutdown`](Dispatcher::shutdown) has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.closing.load(Acquire)
    }

    /// The hook events are delivered to.
    pub fn hook(&self) -> &Arc<dyn Hook> {
        &self.inner.shared.hook
    }

    /// The queue capacity.
    pub fn queue_capacity(&self) -> usize {
        self.inner.queue_capacity
    }

    /// The in-flight limit.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }

    /// The protocols whose events are delivered.
    pub fn protocols(&self) -> &[Protocol] {
        &self.inner.protocols
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("hook", &self.inner.shared.hook)
            .field("queue_capacity", &self.inner.queue_capacity)
            .field("max_in_flight", &self.inner.max_in_flight)
            .field("protocols", &self.inner.protocols)
            .field("shutting_down", &self.is_shutting_down())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the dispatcher task's future drops its JoinSet, which aborts every hook task,
        // and its queue, which reports every queued event as abandoned. No runtime context is
        // needed to request the abort.
        self.control.get_mut().task.abort();
    }
}

fn far_future() -> Instant {
    // About 30 years, as tokio does for "never".
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// The receiving end of the queue. Whatever is still in it when it is dropped is reported as
/// abandoned, so an accepted event is never lost without a trace.
struct Queue {
    rx: mpsc::Receiver<DisconnectEvent>,
    shared: Arc<Shared>,
}

impl Queue {
    /// Closes the queue and reports every event still in it as abandoned.
    fn abandon_rest(&mut self) {
        self.rx.close();
        while let Ok(event) = self.rx.try_recv() {
            let cancelled = HookError::new(
                ErrorKind::Cancelled,
                "post-disconnect hook abandoned at shutdown before it started",
            );
            self.shared.report(&event, &Err(cancelled));
            let counters = &self.shared.counters;
            counters.abandoned_queued.fetch_add(1, Release);
            counters.queued.fetch_sub(1, AcqRel);
            self.shared.metrics.abandoned(false);
            self.shared.metrics.queue_depth(-1);
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.abandon_rest();
    }
}

impl Shared {
    fn report(&self, event: &DisconnectEvent, outcome: &Result<Delivery, HookError>) {
        if let Some(callback) = &self.on_outcome
            && catch_unwind(AssertUnwindSafe(|| callback(event, outcome))).is_err()
        {
            tracing::error!("the post-disconnect hook outcome callback panicked");
        }
    }
}

/// Resolves at the shutdown deadline, never before it is set.
async fn at_deadline(sleep: &mut Option<Pin<Box<Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The shutdown request: stop intake (queued events still drain) and arm the deadline. The
/// sender is only dropped with the dispatcher, which aborts this task anyway; that counts as now.
fn begin_shutdown(
    at: Result<Instant, oneshot::error::RecvError>,
    queue: &mut Queue,
) -> Pin<Box<Sleep>> {
    queue.rx.close();
    Box::pin(tokio::time::sleep_until(
        at.unwrap_or_else(|_| Instant::now()),
    ))
}

/// The dispatcher task: takes a slot, then an event, and starts the event's hook task; after the
/// shutdown request, drains until the deadline, then cancels the rest.
async fn dispatch(
    shared: Arc<Shared>,
    mut queue: Queue,
    max_in_flight: usize,
    mut deadline_rx: oneshot::Receiver<Instant>,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks: JoinSet<()> = JoinSet::new();
    // Set when shutdown is requested (the request has arrived exactly when this is `Some`).
    let mut deadline: Option<Pin<Box<Sleep>>> = None;

    // Start events as slots free up, until the queue is closed and empty or the deadline passes.
    let drained = 'start: loop {
        let permit = tokio::select! {
            biased;
            at = &mut deadline_rx, if deadline.is_none() => {
                deadline = Some(begin_shutdown(at, &mut queue));
                continue 'start;
            }
            () = at_deadline(&mut deadline) => break 'start false,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => unreachable!("the slot semaphore is never closed"),
            },
        };
        let event = tokio::select! {
            biased;
            at = &mut deadline_rx, if deadline.is_none() => {
                deadline = Some(begin_shutdown(at, &mut queue));
                continue 'start;
            }
            () = at_deadline(&mut deadline) => break 'start false,
            event = queue.rx.recv() => match event {
                Some(event) => event,
                None => break 'start true,
            },
        };
        let counters = &shared.counters;
        counters.in_flight.fetch_add(1, AcqRel);
        counters.queued.fetch_sub(1, AcqRel);
        shared.metrics.in_flight(1);
        shared.metrics.queue_depth(-1);
        // The guard exists before the task is spawned: a task aborted before its first poll
        // (at the deadline, or when the dispatcher is dropped) drops it unpolled, and the guard
        // still reports and counts the event as cancelled.
        tasks.spawn(run_hook(Running {
            shared: Arc::clone(&shared),
            event,
            reported: false,
            _permit: permit,
        }));
        // Reap finished tasks so the set holds at most the running ones.
        while tasks.try_join_next().is_some() {}
    };

    // Everything has started: wait for the running hooks, woken by each one that ends.
    if drained {
        loop {
            tokio::select! {
                biased;
                () = at_deadline(&mut deadline) => break,
                next = tasks.join_next() => if next.is_none() { break },
            }
        }
    }

    // Deadline: abandon the queue, cancel the running hooks and wait until their futures are
    // dropped (so cancelled programs' groups have been killed when `shutdown` returns).
    queue.abandon_rest();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// One event's hook task. Holds a slot until the hook's future has finished or been dropped.
async fn run_hook(mut guard: Running) {
    let event = &guard.event;
    let span = tracing::info_span!(
        "post_disconnect_hook",
        protocol = event.protocol().as_str(),
        ip = event.ip(),
        username = event.username(),
        duration_ms = u64::try_from(event.duration_ms()).unwrap_or(u64::MAX),
    );
    let timer = Timer::start();
    let outcome = guard
        .shared
        .hook
        .on_disconnect(&guard.event)
        .instrument(span)
        .await;
    guard.reported = true;
    guard.shared.metrics.finished(timer, &outcome);
    guard.shared.report(&guard.event, &outcome);
    let counter = if outcome.is_ok() {
        &guard.shared.counters.delivered
    } else {
        &guard.shared.counters.failed
    };
    counter.fetch_add(1, Release);
}

/// Accounts for a running hook however its task ends: finished, or cancelled (dropped), even
/// before its first poll.
struct Running {
    shared: Arc<Shared>,
    event: DisconnectEvent,
    reported: bool,
    // Released after `drop` below has run, so the in-flight count falls before the slot frees.
    _permit: OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reported {
            let cancelled = HookError::new(
                ErrorKind::Cancelled,
                "post-disconnect hook cancelled at shutdown while it was running",
            );
            self.shared.report(&self.event, &Err(cancelled));
            self.shared.counters.abandoned_running.fetch_add(1, Release);
            self.shared.metrics.abandoned(true);
        }
        self.shared.counters.in_flight.fetch_sub(1, AcqRel);
        self.shared.metrics.in_flight(-1);
    }
}

/// WARN logs for refusals, at most one a second, each summarising the refusals since the last.
struct RefusalLog {
    epoch: std::time::Instant,
    /// Milliseconds since `epoch` of the last WARN line, `u64::MAX` before the first.
    last_ms: AtomicU64,
    /// Refusals since the last WARN line.
    pending: AtomicU64,
}

const REFUSAL_LOG_INTERVAL_MS: u64 = 1_000;

impl RefusalLog {
    fn new() -> Self {
        RefusalLog {
            epoch: std::time::Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
            pending: AtomicU64::new(0),
        }
    }

    fn record(&self, kind: FireErrorKind, capacity: usize, counters: &Counters) {
        self.pending.fetch_add(1, AcqRel);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Acquire);
        let due = last == u64::MAX || now.saturating_sub(last) >= REFUSAL_LOG_INTERVAL_MS;
        if !due
            || self
                .last_ms
                .compare_exchange(last, now, AcqRel, Acquire)
                .is_err()
        {
            return;
        }
        let refused = self.pending.swap(0, AcqRel);
        let stats = counters.snapshot();
        tracing::warn!(
            refused,
            reason = kind.as_str(),
            queue_capacity = capacity,
            total_queue_full = stats.refused_queue_full,
            total_shutting_down = stats.refused_shutting_down,
            "post-disconnect hook events refused (not delivered): {refused} since the last report"
        );
    }
}
