//! The dispatcher's durable layer (feature `spool`): what moves a spooled event's record after
//! each outcome, and the three feeders of the dispatcher's backlog (the start-up replay, the
//! read-back of spilled events, the redelivery of due deferred events).
//!
//! The state machine (records live in `hook-spool`; `docs/architecture.md` draws it):
//!
//! * delivered -> removed (ack, batched);
//! * transient failure (after the backend's own retries) -> deferred, due after the schedule's
//!   wait (never before a `Retry-After`), or dead when older than `max_age`;
//! * permanent failure -> dead at once; a program that ran and failed -> removed (never re-run);
//! * cancelled (shutdown) -> stays pending, replayed by the next start.

pub(crate) mod schedule;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hook_config::SpoolSection;
use hook_core::{Delivery, ErrorKind, EventId, HookError, Redelivery};
use hook_spool::{Completion, OpenReport, Spool, SpoolError, SpoolErrorKind, SpoolOptions, State};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::dispatcher::{Job, Settled, Shared};
use crate::stats::Counters;
use schedule::Schedule;

/// How many records one read of the store brings back (replay pages, read-back batches, due
/// batches).
const PAGE: usize = 512;

/// The spool of a dispatcher and what its tasks share.
pub(crate) struct Durable {
    pub(crate) spool: Arc<Spool>,
    pub(crate) schedule: Schedule,
    /// Wakes the redelivery task when something was deferred.
    pub(crate) wake: Notify,
    /// The newest pending event of the previous run: the start-up replay stops after it.
    pub(crate) replay_until: Option<EventId>,
    /// Spilled events, in firing order, read back when the queue drains.
    pub(crate) spill_tx: mpsc::UnboundedSender<Spilled>,
    pub(crate) bypass_log: BypassLog,
    /// Acks of delivered events, handed to the writer in batches.
    acks: std::sync::Mutex<Vec<EventId>>,
    /// Wakes the ack flusher when the buffer gets its first ack.
    ack_wake: Notify,
}

/// A spilled event: in the spool only; read back once its append is committed.
pub(crate) struct Spilled {
    pub(crate) id: EventId,
    /// `None`: known to be committed already.
    pub(crate) committed: Option<Completion<()>>,
}

/// The receiving ends the dispatcher task hands to the feeders.
pub(crate) struct Feeders {
    pub(crate) spill_rx: mpsc::UnboundedReceiver<Spilled>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.spool.dir())
            .finish_non_exhaustive()
    }
}

/// The options of `hook-spool` for a `hooks.spool` section.
pub(crate) fn spool_options(section: &SpoolSection) -> SpoolOptions {
    let mut options = SpoolOptions::new(PathBuf::from(&section.dir));
    options.max_bytes = section.max_bytes;
    options.min_free_bytes = section.min_free_bytes;
    options.dead_max = section.dead_max as u64;
    // Group commit takes everything queued up to this: a storm of 10,000 appends is 3 commits,
    // not 10 (measured: 63 % -> 71 % of spool-off in the storm of docs/benchmarks.md).
    options.max_batch = MAX_BATCH;
    options
}

/// Operations per write transaction (hook-spool's default is 1,024).
const MAX_BATCH: usize = 4_096;
/// Acks sent to the writer together (one wake-up of its thread instead of one per event).
const ACK_BATCH: usize = 128;
/// How long an ack waits in the buffer for company at most.
const ACK_LINGER: Duration = Duration::from_millis(5);

/// Opens the spool of `section` (blocking: takes the lock, verifies the file) and logs what the
/// opening found: a damaged file set aside (ERROR), events to replay (INFO).
pub(crate) fn open(
    section: &SpoolSection,
    counters: &Counters,
) -> Result<(Durable, Feeders), SpoolError> {
    let (spool, report) = Spool::open(spool_options(section))?;
    log_open(&spool, &report, counters);
    let (spill_tx, spill_rx) = mpsc::unbounded_channel();
    let durable = Durable {
        spool: Arc::new(spool),
        schedule: Schedule {
            min: section.redeliver_min(),
            max: section.redeliver_max(),
            max_age: section.max_age(),
        },
        wake: Notify::new(),
        replay_until: report.replay_until,
        spill_tx,
        bypass_log: BypassLog::new(),
        acks: std::sync::Mutex::new(Vec::with_capacity(ACK_BATCH)),
        ack_wake: Notify::new(),
    };
    Ok((durable, Feeders { spill_rx }))
}

fn log_open(spool: &Spool, report: &OpenReport, counters: &Counters) {
    if let Some(corrupt) = &report.corrupt {
        counters.spool_corrupt.fetch_add(1, Release);
        tracing::error!(
            dir = %spool.dir().display(),
            renamed_to = %corrupt.renamed_to.display(),
            size = corrupt.size,
            reason = %corrupt.reason,
            "post-disconnect hook spool file was damaged: set aside as {}, starting with a new spool \
             (the events it held are not replayed)",
            corrupt.renamed_to.display()
        );
    }
    if report.pending + report.deferred + report.dead > 0 {
        tracing::info!(
            dir = %spool.dir().display(),
            pending = report.pending,
            deferred = report.deferred,
            dead = report.dead,
            "post-disconnect hook spool opened: replaying pending events"
        );
    }
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn salt(id: EventId) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// The fire refusal kind for a spool error.
pub(crate) fn refusal_kind(e: &SpoolError) -> crate::FireErrorKind {
    match e.kind() {
        SpoolErrorKind::Full | SpoolErrorKind::Busy => crate::FireErrorKind::SpoolFull,
        _ => crate::FireErrorKind::SpoolUnavailable,
    }
}

impl Durable {
    /// Moves the record of a spooled event after its outcome; says what became of it.
    pub(crate) fn settle(&self, job: &Job, outcome: &Result<Delivery, HookError>) -> Settled {
        let id = job.event.id();
        let err = match outcome {
            Ok(_) => {
                self.ack(id);
                return Settled::Delivered;
            }
            Err(err) => err,
        };
        match err.redelivery() {
            Redelivery::Transient => {
                let now = SystemTime::now();
                if self.schedule.expired(id.unix_ms(), unix_ms(now)) {
                    let _ = self
                        .spool
                        .mark_dead(id, &self.expired_reason(&err.to_string()));
                    Settled::Dead
                } else {
                    let wait = self
                        .schedule
                        .wait(job.attempts, salt(id), err.retry_after());
                    let due = now + wait;
                    let _ = self.spool.defer(id, due, &err.to_string());
                    self.wake.notify_one();
                    Settled::Deferred(due)
                }
            }
            Redelivery::Permanent => {
                let _ = self
                    .spool
                    .mark_dead(id, &format!("permanent failure: {err}"));
                Settled::Dead
            }
            Redelivery::Ran => {
                self.ack(id);
                Settled::Failed
            }
            // Cancelled (shutdown), or a class added later: the record stays pending.
            _ => Settled::Kept,
        }
    }

    /// Queues an ack: sent to the writer with up to [`ACK_BATCH`] others, or after
    /// [`ACK_LINGER`]. (A crash loses at most those: they are redelivered, like the acks the
    /// writer had not committed yet.)
    fn ack(&self, id: EventId) {
        let mut acks = self
            .acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        acks.push(id);
        match acks.len() {
            1 => {
                drop(acks);
                self.ack_wake.notify_one();
            }
            n if n >= ACK_BATCH => {
                let batch = std::mem::replace(&mut *acks, Vec::with_capacity(ACK_BATCH));
                drop(acks);
                let _ = self.spool.ack_many(batch);
            }
            _ => {}
        }
    }

    /// Hands every buffered ack to the writer.
    pub(crate) fn flush_acks(&self) {
        let batch = std::mem::take(
            &mut *self
                .acks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if !batch.is_empty() {
            let _ = self.spool.ack_many(batch);
        }
    }

    fn expired_reason(&self, last: &str) -> String {
        format!(
            "expired: undelivered for hooks.spool.max_age ({}s); last error: {last}",
            self.schedule.max_age.as_secs_f64()
        )
    }

    /// Counts and logs (summarised) an event the spool refused and that is delivered from memory.
    pub(crate) fn bypassed(&self, err: &SpoolError, counters: &Counters) {
        counters.bypassed.fetch_add(1, Release);
        self.bypass_log.record(err, counters);
    }
}

/// A job for a record read back from the spool.
fn job_of(record: hook_spool::SpoolRecord) -> Job {
    let attempts = record.attempts();
    let mut job = Job::new(record.into_event(), true);
    job.attempts = attempts;
    job
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.flush_acks();
    }
}

/// Sends buffered acks to the writer at most [`ACK_LINGER`] after the first of a batch.
/// How often the spool's gauges are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Samples the spool's counts, file size and commits into the metrics every second (a read
/// transaction: table lengths, no scan). Aborted with the other feeders at shutdown.
pub(crate) async fn sample_metrics(durable: Arc<Durable>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(status) = durable.spool.status() else {
            continue;
        };
        shared.metrics.spool_sample(
            [
                status.pending,
                status.deferred,
                status.dead,
                status.file_bytes,
            ],
            status.counters.commits,
        );
    }
}

pub(crate) async fn flush_acks_lingering(durable: Arc<Durable>) {
    loop {
        durable.ack_wake.notified().await;
        tokio::time::sleep(ACK_LINGER).await;
        durable.flush_acks();
    }
}

/// Sends `job` into the backlog; `false` when the dispatcher is stopping.
async fn feed(backlog: &mpsc::Sender<Job>, job: Job) -> bool {
    backlog.send(job).await.is_ok()
}

/// Runs `f` on the blocking pool (store reads do I/O); `None` when the runtime is shutting down.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// The start-up replay (pending events of the previous run, oldest first), then the redelivery
/// of deferred events as they fall due. The replay goes first so that a record is never both
/// replayed and redelivered.
pub(crate) async fn replay_then_redeliver(
    durable: Arc<Durable>,
    backlog: mpsc::Sender<Job>,
    shared: Arc<Shared>,
) {
    if let Some(until) = durable.replay_until {
        let mut after = None;
        'replay: loop {
            let spool = Arc::clone(&durable.spool);
            let Some(Ok(page)) = blocking(move || spool.list(State::Pending, after, PAGE)).await
            else {
                tracing::error!(
                    dir = %durable.spool.dir().display(),
                    "post-disconnect hook spool: cannot read pending events to replay; they stay \
                     pending for the next start"
                );
                break;
            };
            let last = page.last().map(|r| r.id());
            for record in page {
                if record.id() > until {
                    break 'replay;
                }
                shared.counters.replayed.fetch_add(1, Release);
                shared
                    .metrics
                    .spool(crate::metrics::SpoolEvent::Replayed, 1);
                if !feed(&backlog, job_of(record)).await {
                    return;
                }
            }
            match last {
                Some(last) if last < until => after = Some(last),
                _ => break,
            }
        }
    }
    redeliver(durable, backlog, shared).await;
}

/// Redelivers deferred events as they fall due. While the endpoint is down, one event probes it
/// per step: when the probe fails transiently, everything else that falls due before the probe's
/// next attempt is deferred to that time without a call; when it succeeds (or fails otherwise),
/// the rest follows at once.
async fn redeliver(durable: Arc<Durable>, backlog: mpsc::Sender<Job>, shared: Arc<Shared>) {
    // Committed state may lag a defer by a commit: never sleep longer than this without looking.
    let poll = durable
        .schedule
        .min
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    // Set after a failed probe: the endpoint counts as down until then.
    let mut down_until: Option<SystemTime> = None;
    loop {
        let spool = Arc::clone(&durable.spool);
        let Some(next) = blocking(move || spool.next_due()).await else {
            return;
        };
        let now = SystemTime::now();
        let wait = match next {
            Ok(Some(due)) => due.duration_since(now).unwrap_or_default().min(poll),
            Ok(None) => poll,
            Err(e) if e.kind() == SpoolErrorKind::Closed => return,
            Err(_) => poll,
        };
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = durable.wake.notified() => {}
            }
            continue;
        }
        let batch = match durable.spool.take_due(SystemTime::now(), PAGE).await {
            Ok(batch) => batch,
            Err(e) if e.kind() == SpoolErrorKind::Closed => return,
            Err(_) => {
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        let mut rest = batch.into_iter();
        if let Some(until) = down_until.filter(|until| *until > SystemTime::now()) {
            // Down: nobody calls before the probe's time.
            defer_uncalled(&durable, &shared, rest, until);
            continue;
        }
        let Some(probe) = rest.next() else { continue };
        let (reply_tx, reply_rx) = oneshot::channel();
        let mut job = job_of(probe);
        job.reply = Some(reply_tx);
        shared.counters.redelivered.fetch_add(1, Release);
        if !feed(&backlog, job).await {
            return;
        }
        let Ok(settled) = reply_rx.await else { return };
        if let Settled::Deferred(due) = settled {
            down_until = Some(due);
            defer_uncalled(&durable, &shared, rest, due);
        } else {
            down_until = None;
            for record in rest {
                shared.counters.redelivered.fetch_add(1, Release);
                if !feed(&backlog, job_of(record)).await {
                    return;
                }
            }
        }
    }
}

/// Defers `records` to `until` (spread over 50 ms) without calling the endpoint, or makes them
/// dead when past `max_age`.
fn defer_uncalled(
    durable: &Durable,
    shared: &Shared,
    records: impl Iterator<Item = hook_spool::SpoolRecord>,
    until: SystemTime,
) {
    let now_ms = unix_ms(SystemTime::now());
    for record in records {
        let id = record.id();
        let last = record
            .last_error()
            .unwrap_or("not delivered yet")
            .to_owned();
        if durable.schedule.expired(id.unix_ms(), now_ms) {
            let reason = durable.expired_reason(&last);
            let _ = durable.spool.mark_dead(id, &reason);
            let err = HookError::new(ErrorKind::DeadlineExceeded, reason);
            shared.report(record.event(), &Err(err));
            shared.counters.dead.fetch_add(1, Release);
            shared.counters.failed.fetch_add(1, Release);
        } else {
            let spread = Duration::from_millis(salt(id) % 50);
            let _ = durable.spool.defer(id, until + spread, &last);
            shared.counters.deferred.fetch_add(1, Release);
        }
    }
}

/// Reads spilled events back once committed, in firing order, into the backlog (which takes them
/// as slots allow: the queue has drained by then).
pub(crate) async fn read_back_spilled(
    durable: Arc<Durable>,
    mut spill_rx: mpsc::UnboundedReceiver<Spilled>,
    backlog: mpsc::Sender<Job>,
) {
    let mut ids = Vec::with_capacity(PAGE);
    while let Some(first) = spill_rx.recv().await {
        ids.clear();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            if let Some(committed) = item.committed {
                // Failed commit: the event was not kept; nothing to read back.
                if committed.await.is_err() {
                    tracing::error!(
                        event_id = %item.id,
                        "post-disconnect hook spool: a spilled event could not be committed; it is lost"
                    );
                    if let Ok(more) = spill_rx.try_recv() {
                        next = Some(more);
                    }
                    continue;
                }
            }
            ids.push(item.id);
            if ids.len() < PAGE
                && let Ok(more) = spill_rx.try_recv()
            {
                next = Some(more);
            }
        }
        let spool = Arc::clone(&durable.spool);
        let batch = std::mem::take(&mut ids);
        let Some(records) = blocking(move || {
            let records: Vec<_> = batch
                .iter()
                .filter_map(|id| spool.get(*id).ok().flatten())
                .filter(|r| r.state() == State::Pending)
                .collect();
            (records, batch)
        })
        .await
        else {
            return;
        };
        let (records, batch) = records;
        ids = batch;
        for record in records {
            if !feed(&backlog, job_of(record)).await {
                return;
            }
        }
    }
}

/// WARN logs for bypassed events, at most one a second, each summarising those since the last.
pub(crate) struct BypassLog {
    epoch: std::time::Instant,
    last_ms: AtomicU64,
    pending: AtomicUsize,
}

impl BypassLog {
    fn new() -> Self {
        BypassLog {
            epoch: std::time::Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
            pending: AtomicUsize::new(0),
        }
    }

    fn record(&self, err: &SpoolError, counters: &Counters) {
        self.pending.fetch_add(1, AcqRel);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.last_ms.load(Acquire);
        let due = last == u64::MAX || now.saturating_sub(last) >= 1_000;
        if !due
            || self
                .last_ms
                .compare_exchange(last, now, AcqRel, Acquire)
                .is_err()
        {
            return;
        }
        let bypassed = self.pending.swap(0, AcqRel);
        tracing::warn!(
            bypassed,
            total_bypassed = counters.bypassed.load(Acquire),
            reason = %err,
            "post-disconnect hook events not spooled (delivered from memory only, not kept across \
             a restart): {bypassed} since the last report"
        );
    }
}

/// What the spool keeps for the next start (pending and deferred records, after a flush); then
/// closes it (commits, stops the writer, releases the file) so that the next start, in this
/// process or another, can open it.
pub(crate) async fn keep_and_close(durable: &Durable) -> u64 {
    durable.flush_acks();
    let spool = &durable.spool;
    let _ = spool.flush().await;
    let kept = spool.status().map_or(0, |s| s.pending + s.deferred);
    let spool = Arc::clone(spool);
    let _ = tokio::task::spawn_blocking(move || spool.close()).await;
    kept
}
