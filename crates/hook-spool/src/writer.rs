//! The writer thread: group commit of everything queued, failure handling, maintenance.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use hook_core::EventId;

use crate::completion::Completer;
use crate::fsutil;
use crate::record::{Encoded, SpoolRecord};
use crate::spool::Shared;
use crate::status::bump;
use crate::store::{OpResult, Store, StoreError, StoreOp};
use crate::{SpoolError, SpoolErrorKind};

/// Reopens the store after a failed commit: the store, and whether a damaged file was set aside.
pub(crate) type Opener = Box<dyn FnMut() -> Result<(Box<dyn Store>, bool), SpoolError> + Send>;

/// How often the free space is measured (and after every failed commit).
const SPACE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often at most an idle spool tries to compact its file.
const COMPACT_INTERVAL: Duration = Duration::from_secs(10);
/// Commit attempts for one batch (the first, then after each reopen).
const COMMIT_ATTEMPTS: usize = 3;

/// One message to the writer.
pub(crate) enum Msg {
    Append {
        record: Encoded,
        done: Option<Completer<()>>,
    },
    Ack(EventId),
    Op(StoreOp, Option<Reply>),
    Flush(Completer<()>),
    Close,
}

/// Where the result of an admin op goes.
pub(crate) enum Reply {
    Count(Completer<usize>),
    Records(Completer<Vec<SpoolRecord>>),
}

/// Everything drained for one transaction.
#[derive(Default)]
struct Batch {
    ops: Vec<Option<StoreOp>>,
    /// Puts of this batch by id (index in `ops`): an ack for one of them cancels both.
    appends: HashMap<EventId, usize>,
    append_waiters: Vec<(EventId, Completer<()>)>,
    replies: Vec<(usize, Reply)>,
    flushes: Vec<Completer<()>>,
    appended: usize,
    appended_bytes: u64,
    msgs: usize,
    only_acks: bool,
    cancelled: u64,
}

impl Batch {
    /// Empties the batch for the next transaction, keeping its buffers (a storm's batches hold
    /// thousands of operations: allocating them again each time showed in the writer's profile).
    fn reset(&mut self) {
        self.ops.clear();
        self.appends.clear();
        self.append_waiters.clear();
        self.replies.clear();
        self.flushes.clear();
        self.appended = 0;
        self.appended_bytes = 0;
        self.msgs = 0;
        self.only_acks = true;
        self.cancelled = 0;
    }

    /// Adds `msg`; whether it asks the writer to stop.
    fn push(&mut self, msg: Msg) -> bool {
        self.msgs += 1;
        match msg {
            Msg::Append { record, done } => {
                self.only_acks = false;
                self.appended += 1;
                self.appended_bytes += record.stored_bytes() as u64;
                let id = record.id;
                if let Some(old) = self.appends.insert(id, self.ops.len()) {
                    self.ops[old] = None; // replaced by the newer append
                }
                self.ops.push(Some(StoreOp::Put(record)));
                if let Some(done) = done {
                    self.append_waiters.push((id, done));
                }
            }
            Msg::Ack(id) => match self.appends.remove(&id) {
                Some(index) => {
                    self.ops[index] = None;
                    self.cancelled += 1;
                }
                None => self.ops.push(Some(StoreOp::Remove(id))),
            },
            Msg::Op(op, reply) => {
                self.only_acks = false;
                if let StoreOp::Defer { id, .. } | StoreOp::Dead { id, .. } = &op {
                    // Its append (if in this batch) stays: a later ack must remove the record.
                    self.appends.remove(id);
                }
                if let Some(reply) = reply {
                    self.replies.push((self.ops.len(), reply));
                }
                self.ops.push(Some(op));
            }
            Msg::Flush(done) => {
                self.only_acks = false;
                self.flushes.push(done);
            }
            Msg::Close => return true,
        }
        false
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    rx: Receiver<Msg>,
    opener: Opener,
    last_space_check: Option<Instant>,
    last_compact: Option<Instant>,
    dirty_since_compact: bool,
    /// Whether the last commit was not synced (acks only): a flush must sync.
    unsynced: bool,
    /// Set by an ENOSPC: appends stay refused until real room is back (the floor plus the
    /// ballast, at least 1 MiB), not just the few pages the failure left.
    enospc_latched: bool,
    /// Live bytes when the last compaction ran.
    live_at_compact: u64,
    /// The batch being filled, and the surviving ops of the one being committed (both kept
    /// across transactions for their buffers).
    batch: Batch,
    live: Vec<StoreOp>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, rx: Receiver<Msg>, opener: Opener) -> Writer {
        Writer {
            shared,
            rx,
            opener,
            last_space_check: None,
            last_compact: None,
            dirty_since_compact: false,
            unsynced: false,
            enospc_latched: false,
            live_at_compact: 0,
            batch: Batch::default(),
            live: Vec::new(),
        }
    }

    /// Start-up work done before the thread starts: free space, ballast, file size.
    pub(crate) fn prepare(&mut self) {
        self.check_space(true);
        self.refresh_sizes();
    }

    pub(crate) fn run(mut self) {
        let options = self.shared.options.clone();
        loop {
            let first = if self.shared.low_space.load(Ordering::Relaxed) {
                // Appends are refused while space is low: measure it again even when idle.
                match self.rx.recv_timeout(SPACE_CHECK_INTERVAL) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        self.check_space(true);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else if let Some(wait) = self.compaction_due_in() {
                // Idle with a file much larger than its records: compact once the interval is up.
                match self.rx.recv_timeout(wait) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        self.maintain();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            };
            let mut batch = std::mem::take(&mut self.batch);
            batch.reset();
            let mut close = batch.push(first);
            while !close && batch.msgs < options.max_batch {
                match self.rx.try_recv() {
                    Ok(msg) => close |= batch.push(msg),
                    Err(_) => break,
                }
            }
            if batch.only_acks && !close {
                // Acks need no sync of their own: wait for company, up to the interval.
                let deadline = Instant::now() + options.ack_flush_interval;
                while !close && batch.only_acks && batch.msgs < options.max_batch {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self.rx.recv_timeout(left) {
                        Ok(msg) => close |= batch.push(msg),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => close = true,
                    }
                }
                while !close && batch.msgs < options.max_batch {
                    match self.rx.try_recv() {
                        Ok(msg) => close |= batch.push(msg),
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
            }
            self.commit(&mut batch);
            self.batch = batch;
            if close {
                break;
            }
            self.maintain();
        }
        // Anything left (sent after Close) is answered by the dropped completers.
    }

    fn commit(&mut self, batch: &mut Batch) {
        let shared = Arc::clone(&self.shared);
        let append_waiters = std::mem::take(&mut batch.append_waiters);
        let replies = std::mem::take(&mut batch.replies);
        let flushes = std::mem::take(&mut batch.flushes);
        let (appended, appended_bytes, only_acks, cancelled) = (
            batch.appended,
            batch.appended_bytes,
            batch.only_acks,
            batch.cancelled,
        );
        // Keep the surviving ops, and where each reply's op ended up (only replies need it).
        let mut index = if replies.is_empty() {
            Vec::new()
        } else {
            vec![usize::MAX; batch.ops.len()]
        };
        let mut live = std::mem::take(&mut self.live);
        live.clear();
        for (i, op) in batch.ops.drain(..).enumerate() {
            if let Some(op) = op {
                if let Some(slot) = index.get_mut(i) {
                    *slot = live.len();
                }
                live.push(op);
            }
        }
        // After an ENOSPC, appends are not written until real room is back: what is left is
        // kept for acks (deletes need free pages).
        let mut refused: HashSet<EventId> = HashSet::new();
        if self.enospc_latched {
            refuse_puts(&mut live, &mut refused);
        }
        bump(&shared.counters.acked_before_commit, cancelled);
        bump(&shared.counters.acked, cancelled);

        // Acks alone are committed without a sync; a flush syncs them (an empty durable commit).
        let sync_only = live.is_empty() && !flushes.is_empty() && self.unsynced;
        let result = if live.is_empty() && !sync_only {
            shared.store().map(|_| None)
        } else {
            let durable = !only_acks;
            let result = self.apply_with_recovery(&mut live, durable, &mut refused);
            if result.is_ok() {
                self.unsynced = !durable;
            }
            result
        };
        shared.queued.fetch_sub(appended, Ordering::Relaxed);
        shared
            .queued_bytes
            .fetch_sub(appended_bytes, Ordering::Relaxed);
        // Sizes and space first, so that whoever is answered next sees the new bounds; a file
        // over its bound is compacted now (copy-on-write leaves free pages behind). The live
        // bytes come with the commit; only after a failure are they read back from the store.
        match &result {
            Ok(Some(applied)) => {
                if let Some(bytes) = applied.live_bytes {
                    shared.live_bytes.store(bytes, Ordering::Relaxed);
                }
                self.refresh_file_len();
            }
            Ok(None) => {}
            Err(_) => self.refresh_sizes(),
        }
        self.check_space(false);
        let file = shared.file_bytes.load(Ordering::Relaxed);
        let live_bytes = shared.live_bytes.load(Ordering::Relaxed);
        // At most twice a second, unless a quarter of the records went since the last one.
        if file > shared.file_limit()
            && live_bytes.saturating_mul(2) < file
            && (self.since_compact() >= Duration::from_millis(500)
                || live_bytes < self.live_at_compact / 4 * 3)
        {
            self.compact();
        }
        let puts = live
            .iter()
            .filter(|op| matches!(op, StoreOp::Put(_)))
            .count() as u64;
        bump(&shared.counters.lost_appends, refused.len() as u64);
        let full = || {
            SpoolError::new(
                SpoolErrorKind::Full,
                format!(
                    "spool {} is full: the disk ran out of space, the append was not kept",
                    shared.options.dir.display()
                ),
            )
            .with_path(&shared.options.dir)
        };
        match result {
            Ok(applied) => {
                let mut results: Vec<Option<OpResult>> = match applied {
                    Some(applied) => {
                        bump(&shared.counters.commits, 1);
                        bump(&shared.counters.committed, puts);
                        bump(&shared.counters.dead_evicted, applied.evicted);
                        let removed = live
                            .iter()
                            .zip(&applied.results)
                            .filter(|(op, r)| {
                                matches!(op, StoreOp::Remove(_)) && **r == OpResult::Count(1)
                            })
                            .count() as u64;
                        bump(&shared.counters.acked, removed);
                        self.dirty_since_compact = true;
                        applied.results.into_iter().map(Some).collect()
                    }
                    None => Vec::new(),
                };
                for (id, done) in append_waiters {
                    if refused.contains(&id) {
                        done.complete(Err(full()));
                    } else {
                        done.complete(Ok(()));
                    }
                }
                for (i, reply) in replies {
                    let result = results.get_mut(index[i]).and_then(Option::take);
                    match (reply, result) {
                        (Reply::Count(done), Some(OpResult::Count(n))) => done.complete(Ok(n)),
                        (Reply::Records(done), Some(OpResult::Records(r))) => done.complete(Ok(r)),
                        (Reply::Count(done), _) => done.complete(Ok(0)),
                        (Reply::Records(done), _) => done.complete(Ok(Vec::new())),
                    }
                }
                for done in flushes {
                    done.complete(Ok(()));
                }
            }
            Err(err) => {
                bump(&shared.counters.lost_appends, puts);
                for (id, done) in append_waiters {
                    if refused.contains(&id) {
                        done.complete(Err(full()));
                    } else {
                        done.complete(Err(err.clone()));
                    }
                }
                for (_, reply) in replies {
                    match reply {
                        Reply::Count(done) => done.complete(Err(err.clone())),
                        Reply::Records(done) => done.complete(Err(err.clone())),
                    }
                }
                for done in flushes {
                    done.complete(Err(err.clone()));
                }
            }
        }
        live.clear();
        self.live = live;
    }

    /// Applies `ops`; after a failure reopens the store and applies them again (the batch is
    /// still in memory), up to [`COMMIT_ATTEMPTS`] times.
    fn apply_with_recovery(
        &mut self,
        ops: &mut [StoreOp],
        durable: bool,
        refused: &mut HashSet<EventId>,
    ) -> Result<Option<crate::store::Applied>, SpoolError> {
        let shared = Arc::clone(&self.shared);
        let dead_max = shared.options.dead_max;
        let mut last: Option<StoreError> = None;
        for _ in 0..COMMIT_ATTEMPTS {
            let store = shared.store()?;
            // A page damaged after open can make redb panic: treat it as a failed commit (the
            // reopen verifies the file and sets it aside if it is damaged).
            let started = Instant::now();
            let applied = crate::guard::unwind(|| store.apply(&*ops, durable, dead_max));
            match applied {
                Ok(applied) => {
                    if let Some(observe) = shared.commit_observer.get() {
                        observe(started.elapsed());
                    }
                    if last.is_some() {
                        // Recovered: measure the space again before anyone is answered.
                        self.check_space(true);
                    }
                    return Ok(Some(applied));
                }
                Err(e) => {
                    drop(store);
                    bump(&shared.counters.failed_commits, 1);
                    if e.no_space {
                        // The first retry re-applies the whole batch (the ballast just made
                        // room); a second ENOSPC keeps only the acks and state changes.
                        if self.enospc_latched {
                            refuse_puts(ops, refused);
                        }
                        self.enospc_latched = true;
                        shared.low_space.store(true, Ordering::Relaxed);
                        if fsutil::release_ballast(&shared.options.dir) {
                            bump(&shared.counters.ballast_released, 1);
                        }
                    }
                    last = Some(e);
                    self.reopen()?;
                }
            }
        }
        let e = last.map(|e| e.to_string()).unwrap_or_default();
        Err(SpoolError::new(
            if self.shared.low_space.load(Ordering::Relaxed) {
                SpoolErrorKind::Full
            } else {
                SpoolErrorKind::Io
            },
            format!(
                "spool {}: commit failed {COMMIT_ATTEMPTS} times (last: {e})",
                shared.options.dir.display()
            ),
        )
        .with_path(&shared.options.dir))
    }

    /// Drops the store (waiting for readers to let go of it) and opens it again.
    fn reopen(&mut self) -> Result<(), SpoolError> {
        let shared = Arc::clone(&self.shared);
        let old = shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(old) = old {
            // Readers hold clones for the length of one read; the file must be closed before
            // it is opened again.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(old);
        }
        match (self.opener)() {
            Ok((store, corrupt)) => {
                bump(&shared.counters.reopened, 1);
                if corrupt {
                    bump(&shared.counters.corrupt_files, 1);
                }
                *shared.store.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::from(store));
                Ok(())
            }
            Err(e) => {
                shared.broken.store(true, Ordering::Release);
                Err(SpoolError::new(
                    SpoolErrorKind::Unavailable,
                    format!(
                        "spool {} is unavailable: reopening after a failed commit failed: {e}",
                        shared.options.dir.display()
                    ),
                )
                .with_path(&shared.options.dir))
            }
        }
    }

    /// Reads the live bytes and the file's size back from the store (at start-up, after a
    /// compaction or a failed commit).
    fn refresh_sizes(&self) {
        if let Ok(store) = self.shared.store()
            && let Ok(counts) = store.counts()
        {
            self.shared
                .live_bytes
                .store(counts.bytes, Ordering::Relaxed);
        }
        self.refresh_file_len();
    }

    fn refresh_file_len(&self) {
        if let Ok(store) = self.shared.store()
            && let Ok(len) = store.file_len()
        {
            self.shared.file_bytes.store(len, Ordering::Relaxed);
        }
    }

    /// Measures the free space (at most once a second unless `now`) and keeps the ballast.
    fn check_space(&mut self, now: bool) {
        let options = &self.shared.options;
        let due = now
            || self.shared.low_space.load(Ordering::Relaxed)
            || self
                .last_space_check
                .is_none_or(|t| t.elapsed() >= SPACE_CHECK_INTERVAL);
        if !due {
            return;
        }
        self.last_space_check = Some(Instant::now());
        let Ok(free) = fsutil::free_bytes(&options.dir) else {
            return; // not measurable here (a test backend): rely on commit errors
        };
        let has_ballast = options.ballast_bytes == 0 || fsutil::has_ballast(&options.dir);
        if !has_ballast
            && free
                > options
                    .min_free_bytes
                    .saturating_add(options.ballast_bytes * 2)
            && fsutil::create_ballast(&options.dir, options.ballast_bytes).is_ok()
        {
            return self.check_space(true);
        }
        let floor = if self.enospc_latched {
            options
                .min_free_bytes
                .saturating_add(options.ballast_bytes.max(1 << 20))
        } else {
            options.min_free_bytes
        };
        let low = free <= floor;
        if !low {
            self.enospc_latched = false;
        }
        self.shared.low_space.store(low, Ordering::Relaxed);
    }

    /// Whether the file is worth compacting: written since the last compaction and more than
    /// twice its records plus 1 MiB.
    fn worth_compacting(&self) -> bool {
        let live = self.shared.live_bytes.load(Ordering::Relaxed);
        let file = self.shared.file_bytes.load(Ordering::Relaxed);
        self.dirty_since_compact && file > live.saturating_mul(2) + 1024 * 1024
    }

    /// The time since the last compaction; unbounded before the first, so the first is never
    /// held back (a spool filled and drained within half a second of its opening was not
    /// compacted: a CI run found it).
    fn since_compact(&self) -> Duration {
        self.last_compact.map_or(Duration::MAX, |at| at.elapsed())
    }

    /// How long until an idle writer should compact, if the file is worth it.
    fn compaction_due_in(&self) -> Option<Duration> {
        self.worth_compacting()
            .then(|| COMPACT_INTERVAL.saturating_sub(self.since_compact()))
    }

    /// Idle work: compact the file when it is much larger than what it holds (at most once per
    /// [`COMPACT_INTERVAL`]).
    fn maintain(&mut self) {
        if self.worth_compacting() && self.since_compact() >= COMPACT_INTERVAL {
            self.compact();
        }
    }

    /// Compacts the store if no reader holds it at this moment.
    pub(crate) fn compact(&mut self) {
        self.last_compact = Some(Instant::now());
        self.dirty_since_compact = false;
        self.live_at_compact = self.shared.live_bytes.load(Ordering::Relaxed);
        let mut guard = self
            .shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = guard.as_mut().and_then(Arc::get_mut)
            && let Ok(true) = store.compact()
        {
            bump(&self.shared.counters.compactions, 1);
        }
        drop(guard);
        self.refresh_sizes();
    }
}

/// Takes the appends out of `ops` (they become no-ops), noting their ids in `refused`.
fn refuse_puts(ops: &mut [StoreOp], refused: &mut HashSet<EventId>) {
    for op in ops.iter_mut() {
        if let StoreOp::Put(record) = op {
            refused.insert(record.id);
            *op = StoreOp::Nothing;
        }
    }
}
