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
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::metrics::{Metrics, SpoolEvent, Timer};
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
    tx: mpsc::Sender<Job>,
    /// `true` while delivery is paused ([`DispatcherOptions::with_paused_start`]).
    paused: watch::Sender<bool>,
    shared: Arc<Shared>,
    protocols: Vec<Protocol>,
    queue_capacity: usize,
    max_in_flight: usize,
    closing: AtomicBool,
    refusals: RefusalLog,
    control: tokio::sync::Mutex<Control>,
}

/// What the dispatcher task and the hook tasks share.
pub(crate) struct Shared {
    hook: Arc<dyn Hook>,
    on_outcome: Option<OutcomeCallback>,
    pub(crate) counters: Counters,
    pub(crate) metrics: Metrics,
    /// The spool, when one is configured and open.
    #[cfg(feature = "spool")]
    durable: Option<Arc<crate::durable::Durable>>,
}

/// One event to deliver, from the queue or from the backlog (spool read-backs).
pub(crate) struct Job {
    pub(crate) event: DisconnectEvent,
    /// Whether the event is in the spool: its record moves with the outcome.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) spooled: bool,
    /// Failed deliveries recorded in the spool so far (the redelivery schedule's exponent).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) attempts: u32,
    /// Told what became of the event (the redelivery probe waits for it).
    pub(crate) reply: Option<oneshot::Sender<Settled>>,
}

impl Job {
    pub(crate) fn new(event: DisconnectEvent, spooled: bool) -> Job {
        Job {
            event,
            spooled,
            attempts: 0,
            reply: None,
        }
    }
}

/// What became of an event after its hook ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Delivered (its record, if any, removed).
    Delivered,
    /// Failed, final (a program that ran and failed; or no spool).
    Failed,
    /// Failed transiently; redelivered at this time.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    Deferred(std::time::SystemTime),
    /// Given up: a dead letter.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    Dead,
    /// Not settled (cancelled): the record stays pending.
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    Kept,
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
    /// With a spool in the options ([`DispatcherOptions::with_spool`]) this opens it as
    /// [`try_new`](Dispatcher::try_new) does; if that fails (locked by another process, an
    /// unusable directory) the error is logged at ERROR and the dispatcher runs without a spool.
    /// Use [`try_new`](Dispatcher::try_new) to get the error instead.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn new(hook: Arc<dyn Hook>, options: DispatcherOptions) -> Dispatcher {
        match Dispatcher::try_new(Arc::clone(&hook), options.clone()) {
            Ok(dispatcher) => dispatcher,
            Err(err) => {
                tracing::error!(
                    "post-disconnect hook spool not used (events are kept in memory only): {err}"
                );
                Dispatcher::start(hook, options.without_spool())
            }
        }
    }

    /// Starts a dispatcher for `hook` on the current tokio runtime, opening its spool first when
    /// the options have one ([`DispatcherOptions::with_spool`]; `hooks.spool.dir` set):
    ///
    /// * takes the spool directory's exclusive lock: another process using it is an error of
    ///   kind [`Locked`](hook_spool::SpoolErrorKind::Locked) naming the directory;
    /// * verifies the file (every page); a damaged, truncated or empty file is set aside as
    ///   `spool.redb.corrupt-<unix time>`, logged at ERROR, counted in
    ///   [`DispatcherStats::spool_corrupt`], and a new spool is started: never a panic, never a
    ///   refusal to start;
    /// * replays the pending events of the previous run, oldest first, using at most half of
    ///   the in-flight slots so that new events are not starved; deferred events keep their due
    ///   times and are redelivered once the replay is done.
    ///
    /// Opening blocks the calling thread (the integrity check reads the whole file: about 0.1 s
    /// per 100 MB); call it at start-up. Without a spool in the options it cannot fail.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn try_new(
        hook: Arc<dyn Hook>,
        options: DispatcherOptions,
    ) -> Result<Dispatcher, crate::StartError> {
        let Some(section) = options.spool().cloned() else {
            return Ok(Dispatcher::start(hook, options));
        };
        #[cfg(feature = "spool")]
        {
            let counters = Counters::default();
            let (durable, feeders) =
                crate::durable::open(&section, &counters).map_err(crate::StartError::spool)?;
            Ok(Dispatcher::start_with(
                hook,
                options,
                counters,
                Some((Arc::new(durable), feeders)),
            ))
        }
        #[cfg(not(feature = "spool"))]
        {
            Err(crate::StartError::no_spool_feature(&section.dir))
        }
    }

    fn start(hook: Arc<dyn Hook>, options: DispatcherOptions) -> Dispatcher {
        #[cfg(feature = "spool")]
        {
            Dispatcher::start_with(hook, options, Counters::default(), None)
        }
        #[cfg(not(feature = "spool"))]
        {
            Dispatcher::start_with(hook, options, Counters::default())
        }
    }

    fn start_with(
        hook: Arc<dyn Hook>,
        mut options: DispatcherOptions,
        counters: Counters,
        #[cfg(feature = "spool")] durable: Option<(
            Arc<crate::durable::Durable>,
            crate::durable::Feeders,
        )>,
    ) -> Dispatcher {
        let queue_capacity = options.queue_capacity();
        let max_in_flight = options.max_in_flight();
        let (tx, rx) = mpsc::channel(queue_capacity);
        let (deadline_tx, deadline_rx) = oneshot::channel();
        let (paused, paused_rx) = watch::channel(options.starts_paused());
        #[cfg(feature = "spool")]
        let (durable, feeders) = match durable {
            Some((d, f)) => (Some(d), Some(f)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            hook,
            on_outcome: options.take_on_outcome(),
            counters,
            metrics: Metrics::new(queue_capacity, max_in_flight),
            #[cfg(feature = "spool")]
            durable,
        });
        #[cfg(feature = "spool")]
        if let Some(durable) = &shared.durable {
            shared.metrics.observe_commits(&durable.spool);
        }
        shared.metrics.spool(
            SpoolEvent::CorruptFile,
            shared.counters.spool_corrupt.load(Acquire),
        );
        let queue = Queue {
            rx,
            shared: Arc::clone(&shared),
        };
        let task = tokio::spawn(dispatch(
            Arc::clone(&shared),
            queue,
            max_in_flight,
            deadline_rx,
            paused_rx,
            #[cfg(feature = "spool")]
            feeders,
        ));
        Dispatcher {
            inner: Arc::new(Inner {
                tx,
                paused,
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
        #[cfg(feature = "spool")]
        if let Some(durable) = &inner.shared.durable {
            return self.fire_spooled(durable, event);
        }
        // Counted before the send so the dispatcher task, which decrements it, never sees it
        // go below zero.
        counters.queued.fetch_add(1, AcqRel);
        inner.shared.metrics.queue_depth(1);
        match inner.tx.try_send(Job::new(event, false)) {
            Ok(()) => {
                counters.accepted.fetch_add(1, Release);
                Ok(Fired::Queued)
            }
            Err(err) => {
                counters.queued.fetch_sub(1, AcqRel);
                inner.shared.metrics.queue_depth(-1);
                let (kind, event) = match err {
                    mpsc::error::TrySendError::Full(job) => (FireErrorKind::QueueFull, job.event),
                    mpsc::error::TrySendError::Closed(job) => {
                        (FireErrorKind::ShuttingDown, job.event)
                    }
                };
                Err(self.refuse(kind, event))
            }
        }
    }

    /// `fire` with a spool: the event goes to the spool's writer and to the queue; when the
    /// queue is full it is spilled (kept in the spool only, read back when the queue drains);
    /// when the spool refuses it is delivered from memory only (bypass); refused only when both
    /// refuse.
    #[cfg(feature = "spool")]
    fn fire_spooled(
        &self,
        durable: &crate::durable::Durable,
        event: DisconnectEvent,
    ) -> Result<Fired, FireError> {
        let inner = &*self.inner;
        let counters = &inner.shared.counters;
        let id = event.id();
        match inner.tx.try_reserve() {
            Ok(permit) => {
                let spooled = match durable.spool.append(&event) {
                    Ok(()) => true,
                    Err(err) => {
                        durable.bypassed(&err, counters);
                        inner.shared.metrics.spool(SpoolEvent::Bypassed, 1);
                        false
                    }
                };
                counters.queued.fetch_add(1, AcqRel);
                inner.shared.metrics.queue_depth(1);
                counters.accepted.fetch_add(1, Release);
                if spooled {
                    counters.spooled.fetch_add(1, Release);
                }
                permit.send(Job::new(event, spooled));
                Ok(if spooled {
                    Fired::Spooled(id)
                } else {
                    Fired::Queued
                })
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                match durable.spool.append_durable(&event) {
                    Ok(committed) => {
                        counters.accepted.fetch_add(1, Release);
                        counters.spooled.fetch_add(1, Release);
                        counters.spilled.fetch_add(1, Release);
                        inner.shared.metrics.spool(SpoolEvent::Spilled, 1);
                        let _ = durable.spill_tx.send(crate::durable::Spilled {
                            id,
                            committed: Some(committed),
                        });
                        Ok(Fired::Spooled(id))
                    }
                    Err(_) => Err(self.refuse(FireErrorKind::QueueFull, event)),
                }
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                Err(self.refuse(FireErrorKind::ShuttingDown, event))
            }
        }
    }

    /// Hands `event` to the hook like [`fire`](Dispatcher::fire), and resolves once the event is
    /// **committed** to the spool (durable: it survives a crash or `kill -9` from then on, and
    /// is delivered at least once, across restarts), typically within a few milliseconds.
    ///
    /// * `Ok(`[`Fired::Spooled`]`(id))`: committed (or already delivered, which needs no
    ///   commit); delivery may have started before the commit (write-behind). When the queue is
    ///   full the event is spilled (kept in the spool only, read back when the queue drains).
    /// * `Ok(`[`Fired::Filtered`]`)`: its protocol is not in the filter; not spooled.
    /// * `Err` of kind [`SpoolFull`](FireErrorKind::SpoolFull) (a spool bound reached: the
    ///   event is neither spooled nor queued, nothing spooled was evicted),
    ///   [`SpoolUnavailable`](FireErrorKind::SpoolUnavailable) (the spool failed, or the commit
    ///   failed; in that case delivery from memory was started anyway),
    ///   [`NoSpool`](FireErrorKind::NoSpool) (no spool configured) or
    ///   [`ShuttingDown`](FireErrorKind::ShuttingDown). The error hands the event back.
    ///
    /// The future only waits; dropping it does not withdraw the event.
    pub async fn fire_durable(&self, event: DisconnectEvent) -> Result<Fired, FireError> {
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
        #[cfg(feature = "spool")]
        if let Some(durable) = &inner.shared.durable {
            let id = event.id();
            let committed = match durable.spool.append_durable(&event) {
                Ok(committed) => committed,
                Err(err) => {
                    let kind = crate::durable::refusal_kind(&err);
                    inner.shared.metrics.refused(kind);
                    return Err(FireError::spool(
                        kind,
                        inner.queue_capacity,
                        event,
                        err.to_string(),
                    ));
                }
            };
            counters.accepted.fetch_add(1, Release);
            counters.spooled.fetch_add(1, Release);
            let spilled = match inner.tx.try_reserve() {
                Ok(permit) => {
                    counters.queued.fetch_add(1, AcqRel);
                    inner.shared.metrics.queue_depth(1);
                    permit.send(Job::new(event.clone(), true));
                    false
                }
                // Closed: shutting down; the event stays in the spool for the next start.
                Err(mpsc::error::TrySendError::Closed(())) => false,
                Err(mpsc::error::TrySendError::Full(())) => {
                    counters.spilled.fetch_add(1, Release);
                    inner.shared.metrics.spool(SpoolEvent::Spilled, 1);
                    true
                }
            };
            return match committed.await {
                Ok(()) => {
                    if spilled {
                        let _ = durable.spill_tx.send(crate::durable::Spilled {
                            id,
                            committed: None,
                        });
                    }
                    Ok(Fired::Spooled(id))
                }
                Err(err) => Err(FireError::spool(
                    FireErrorKind::SpoolUnavailable,
                    inner.queue_capacity,
                    event,
                    err.to_string(),
                )),
            };
        }
        inner.shared.metrics.refused(FireErrorKind::NoSpool);
        Err(FireError::new(
            FireErrorKind::NoSpool,
            inner.queue_capacity,
            event,
        ))
    }

    /// Starts delivery after [`DispatcherOptions::with_paused_start`] (harmless otherwise).
    pub fn resume(&self) {
        self.inner.paused.send_replace(false);
    }

    /// The spool behind the dispatcher, when one is configured and open: for status and
    /// inspection ([`Spool::status`](hook_spool::Spool::status), [`Spool::list`](hook_spool::Spool::list)).
    #[cfg(feature = "spool")]
    pub fn spool(&self) -> Option<&hook_spool::Spool> {
        self.inner.shared.durable.as_ref().map(|d| &*d.spool)
    }

    fn refuse(&self, kind: FireErrorKind, event: DisconnectEvent) -> FireError {
        let inner = &*self.inner;
        let counters = &inner.shared.counters;
        inner.shared.metrics.refused(kind);
        match kind {
            FireErrorKind::QueueFull => counters.refused_queue_full.fetch_add(1, Release),
            _ => counters.refused_shutting_down.fetch_add(1, Release),
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
        // A paused dispatcher drains too.
        inner.paused.send_replace(false);
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
        #[allow(unused_mut)]
        let mut report = ShutdownReport::from_stats(inner.shared.counters.snapshot(), elapsed);
        #[cfg(feature = "spool")]
        if let Some(durable) = &inner.shared.durable {
            report.kept = crate::durable::keep_and_close(durable).await;
            if report.kept > 0 {
                tracing::info!(
                    dir = %durable.spool.dir().display(),
                    kept = report.kept,
                    "post-disconnect hook spool keeps {} undelivered event(s) for the next start",
                    report.kept
                );
            }
        }
        report
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
    rx: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
}

impl Queue {
    /// Closes the queue and reports every event still in it as abandoned.
    fn abandon_rest(&mut self) {
        self.rx.close();
        while let Ok(Job { event, .. }) = self.rx.try_recv() {
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
    pub(crate) fn report(&self, event: &DisconnectEvent, outcome: &Result<Delivery, HookError>) {
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

/// The dispatcher task: takes a slot, then an event (new events first, else a backlog job when
/// fewer than half the slots run backlog jobs), and starts the event's hook task; after the
/// shutdown request, drains until the deadline, then cancels the rest.
async fn dispatch(
    shared: Arc<Shared>,
    mut queue: Queue,
    max_in_flight: usize,
    mut deadline_rx: oneshot::Receiver<Instant>,
    mut paused: watch::Receiver<bool>,
    #[cfg(feature = "spool")] feeders: Option<crate::durable::Feeders>,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks: JoinSet<()> = JoinSet::new();
    // Set when shutdown is requested (the request has arrived exactly when this is `Some`).
    let mut deadline: Option<Pin<Box<Sleep>>> = None;

    // Delivery paused: wait for `resume` (or shutdown, which resumes).
    while *paused.borrow_and_update() {
        tokio::select! {
            biased;
            at = &mut deadline_rx, if deadline.is_none() => {
                deadline = Some(begin_shutdown(at, &mut queue));
            }
            changed = paused.changed() => if changed.is_err() { break },
        }
    }

    // The backlog: spool read-backs (start-up replay, spilled events, due redeliveries), fed by
    // the feeder tasks; at most half the slots run backlog jobs.
    let backlog_slots = Arc::new(Semaphore::new((max_in_flight / 2).max(1)));
    #[allow(unused_mut)]
    let mut feeder_tasks: JoinSet<()> = JoinSet::new();
    #[allow(unused_mut, unused_variables)]
    let (backlog_tx, mut backlog_rx) = mpsc::channel::<Job>(64);
    #[cfg(feature = "spool")]
    if let (Some(durable), Some(feeders)) = (&shared.durable, feeders) {
        feeder_tasks.spawn(crate::durable::replay_then_redeliver(
            Arc::clone(durable),
            backlog_tx.clone(),
            Arc::clone(&shared),
        ));
        feeder_tasks.spawn(crate::durable::flush_acks_lingering(Arc::clone(durable)));
        feeder_tasks.spawn(crate::durable::sample_metrics(
            Arc::clone(durable),
            Arc::clone(&shared),
        ));
        feeder_tasks.spawn(crate::durable::read_back_spilled(
            Arc::clone(durable),
            feeders.spill_rx,
            backlog_tx.clone(),
        ));
    }
    drop(backlog_tx);
    let mut backlog_open = !feeder_tasks.is_empty() && deadline.is_none();
    if !backlog_open {
        backlog_rx.close();
    }

    // Start events as slots free up, until the queue is closed and empty or the deadline passes.
    let drained = 'start: loop {
        let permit = tokio::select! {
            biased;
            at = &mut deadline_rx, if deadline.is_none() => {
                deadline = Some(begin_shutdown(at, &mut queue));
                feeder_tasks.abort_all();
                backlog_rx.close();
                backlog_open = false;
                continue 'start;
            }
            () = at_deadline(&mut deadline) => break 'start false,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => unreachable!("the slot semaphore is never closed"),
            },
        };
        let (job, backlog_permit) = tokio::select! {
            biased;
            at = &mut deadline_rx, if deadline.is_none() => {
                deadline = Some(begin_shutdown(at, &mut queue));
                feeder_tasks.abort_all();
                backlog_rx.close();
                backlog_open = false;
                continue 'start;
            }
            () = at_deadline(&mut deadline) => break 'start false,
            job = queue.rx.recv() => match job {
                Some(job) => {
                    shared.counters.queued.fetch_sub(1, AcqRel);
                    shared.metrics.queue_depth(-1);
                    (job, None)
                }
                None => break 'start true,
            },
            next = next_backlog(&backlog_slots, &mut backlog_rx), if backlog_open => match next {
                Some((job, permit)) => (job, Some(permit)),
                None => {
                    backlog_open = false;
                    continue 'start;
                }
            },
        };
        shared.counters.in_flight.fetch_add(1, AcqRel);
        shared.metrics.in_flight(1);
        // The guard exists before the task is spawned: a task aborted before its first poll
        // (at the deadline, or when the dispatcher is dropped) drops it unpolled, and the guard
        // still reports and counts the event as cancelled.
        tasks.spawn(run_hook(Running {
            shared: Arc::clone(&shared),
            job,
            reported: false,
            _permit: permit,
            _backlog: backlog_permit,
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
    // dropped (so cancelled programs' groups have been killed when `shutdown` returns). Backlog
    // jobs not started stay in the spool, pending.
    feeder_tasks.abort_all();
    backlog_rx.close();
    queue.abandon_rest();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    while feeder_tasks.join_next().await.is_some() {}
}

/// The next backlog job, with one of the backlog's slots; `None` when every feeder has ended.
async fn next_backlog(
    slots: &Arc<Semaphore>,
    rx: &mut mpsc::Receiver<Job>,
) -> Option<(Job, OwnedSemaphorePermit)> {
    let permit = Arc::clone(slots).acquire_owned().await.ok()?;
    let job = rx.recv().await?;
    Some((job, permit))
}

/// One event's hook task. Holds a slot until the hook's future has finished or been dropped.
async fn run_hook(mut guard: Running) {
    let event = &guard.job.event;
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
        .on_disconnect(&guard.job.event)
        .instrument(span)
        .await;
    guard.reported = true;
    guard.shared.metrics.finished(timer, &outcome);
    let settled = guard.shared.settle(&guard.job, &outcome);
    let counters = &guard.shared.counters;
    match settled {
        Settled::Delivered => {
            guard.shared.report(&guard.job.event, &outcome);
            counters.delivered.fetch_add(1, Release);
        }
        Settled::Failed | Settled::Kept => {
            guard.shared.report(&guard.job.event, &outcome);
            counters.failed.fetch_add(1, Release);
        }
        Settled::Dead => {
            guard.shared.report(&guard.job.event, &outcome);
            counters.dead.fetch_add(1, Release);
            counters.failed.fetch_add(1, Release);
        }
        // Not final: redelivered later; the outcome callback hears of the final one.
        Settled::Deferred(_) => {
            counters.deferred.fetch_add(1, Release);
        }
    }
    if let Some(reply) = guard.job.reply.take() {
        let _ = reply.send(settled);
    }
}

impl Shared {
    /// Moves the spool record of a spooled job; plain delivered/failed otherwise.
    fn settle(&self, job: &Job, outcome: &Result<Delivery, HookError>) -> Settled {
        #[cfg(feature = "spool")]
        if job.spooled
            && let Some(durable) = &self.durable
        {
            return durable.settle(job, outcome);
        }
        let _ = job;
        if outcome.is_ok() {
            Settled::Delivered
        } else {
            Settled::Failed
        }
    }
}

/// Accounts for a running hook however its task ends: finished, or cancelled (dropped), even
/// before its first poll.
struct Running {
    shared: Arc<Shared>,
    job: Job,
    reported: bool,
    // Released after `drop` below has run, so the in-flight count falls before the slot frees.
    _permit: OwnedSemaphorePermit,
    /// A backlog job's backlog slot.
    _backlog: Option<OwnedSemaphorePermit>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reported {
            let cancelled = HookError::new(
                ErrorKind::Cancelled,
                "post-disconnect hook cancelled at shutdown while it was running",
            );
            self.shared.report(&self.job.event, &Err(cancelled));
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
