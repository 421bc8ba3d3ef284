//! [`Spool`]: the handle callers use; the writer thread lives in [`crate::writer`].

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use hook_core::{DisconnectEvent, EventId};

use crate::completion::{Completion, completion};
use crate::fsutil::{self, DirLock};
use crate::options::SpoolOptions;
use crate::record::{Encoded, SpoolRecord, State, from_ms, to_ms};
use crate::redb_store::{OpenFailure, RedbStore};
use crate::status::{CorruptFile, Counters, OpenReport, SpoolCounters, SpoolStatus, bump};
use crate::store::{Store, StoreError, StoreOp};
use crate::writer::{Msg, Opener, Reply, Writer};
use crate::{SpoolError, SpoolErrorKind};

/// What [`Spool::purge`] removes.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purge {
    /// Every dead letter.
    Dead,
    /// Every record, in every state.
    All,
}

/// State shared by the handle and the writer thread.
pub(crate) struct Shared {
    pub(crate) options: SpoolOptions,
    /// The open store; `None` once it failed and could not be reopened.
    pub(crate) store: RwLock<Option<Arc<dyn Store>>>,
    pub(crate) counters: Counters,
    /// Live record bytes as of the last commit.
    pub(crate) live_bytes: AtomicU64,
    /// Bytes of appends queued for the writer.
    pub(crate) queued_bytes: AtomicU64,
    /// Appends queued for the writer.
    pub(crate) queued: AtomicUsize,
    /// Size of the store file as of the last commit.
    pub(crate) file_bytes: AtomicU64,
    /// Set while the free-space floor is crossed or the disk was found full.
    pub(crate) low_space: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// Set once the store failed and could not be reopened.
    pub(crate) broken: AtomicBool,
    /// Told how long each write transaction took (see [`Spool::set_commit_observer`]).
    pub(crate) commit_observer: OnceLock<CommitObserver>,
}

/// A function told how long each committed write transaction took, fsync included: what
/// [`Spool::set_commit_observer`] takes. It runs on the writer thread, so it must be quick
/// (record a histogram sample, bump a counter).
pub type CommitObserver = Box<dyn Fn(Duration) + Send + Sync>;

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("dir", &self.options.dir)
            .finish_non_exhaustive()
    }
}

/// The size of an empty store file (redb's header, allocator state and empty tables; 72 KiB
/// measured), allowed on top of `max_bytes` so that a small bound still holds records.
pub(crate) const FILE_OVERHEAD: u64 = 128 * 1024;

impl Shared {
    /// The most bytes the store file may reach before appends are refused.
    pub(crate) fn file_limit(&self) -> u64 {
        self.options.max_bytes.saturating_add(FILE_OVERHEAD)
    }

    pub(crate) fn store(&self) -> Result<Arc<dyn Store>, SpoolError> {
        let guard = self.store.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(store) => Ok(Arc::clone(store)),
            None => Err(self.unavailable()),
        }
    }

    pub(crate) fn unavailable(&self) -> SpoolError {
        SpoolError::new(
            SpoolErrorKind::Unavailable,
            format!(
                "spool {} is unavailable: its store failed and could not be reopened",
                self.options.dir.display()
            ),
        )
        .with_path(&self.options.dir)
    }

    pub(crate) fn closed_error(&self) -> SpoolError {
        SpoolError::new(
            SpoolErrorKind::Closed,
            format!("spool {} is closed", self.options.dir.display()),
        )
        .with_path(&self.options.dir)
    }
}

/// A durable event log in one directory, written by one background thread.
///
/// Open it with [`Spool::open`]; share it behind an `Arc`. Every method takes `&self` and is
/// safe to call from any thread or async task:
///
/// * [`append`](Spool::append), [`ack`](Spool::ack), [`defer`](Spool::defer),
///   [`mark_dead`](Spool::mark_dead) never block and do no I/O: they queue an operation for the
///   writer thread, which commits everything queued since its last commit in one transaction
///   (group commit). An event acked before its append was committed is never written.
/// * [`append_durable`](Spool::append_durable), [`flush`](Spool::flush), [`retry`](Spool::retry),
///   [`purge`](Spool::purge), [`take_due`](Spool::take_due) return a [`Completion`] resolved
///   after the commit that carries them.
/// * [`list`](Spool::list), [`get`](Spool::get), [`status`](Spool::status) read a consistent
///   snapshot of what is committed, concurrently with the writer.
///
/// Dropping the spool (or [`close`](Spool::close)) commits what is queued and stops the writer;
/// it blocks until that last commit returned, so in async code close it from a blocking thread
/// (`spawn_blocking`).
pub struct Spool {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: DirLock,
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.shared.options.dir)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Opens `dir/spool.redb`: verifies an existing file, sets a damaged one aside, creates a new one
/// (as `spool.redb.tmp`, synced, then renamed, so a crash never leaves a half-created file).
pub(crate) fn open_or_create(
    options: &SpoolOptions,
) -> Result<(RedbStore, bool, Option<CorruptFile>), SpoolError> {
    let path = options.file_path();
    let tmp = options.path(&format!(
        "{}{}",
        crate::options::FILE_NAME,
        fsutil::TMP_SUFFIX
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut corrupt = None;
    if path.exists() {
        match RedbStore::open_file(&path) {
            Ok(store) => return Ok((store, false, None)),
            Err(OpenFailure::Corrupt(reason)) if !options.set_aside_damaged => {
                return Err(SpoolError::new(
                    SpoolErrorKind::Damaged,
                    format!("spool file {} is damaged: {reason}", path.display()),
                )
                .with_path(&path));
            }
            Err(OpenFailure::Corrupt(reason)) => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let renamed_to = fsutil::rename_aside(&path).map_err(|e| {
                    SpoolError::io("cannot set aside the damaged spool file", &path, e)
                })?;
                corrupt = Some(CorruptFile {
                    renamed_to,
                    reason,
                    size,
                });
            }
            Err(OpenFailure::Version(v)) => {
                return Err(SpoolError::new(
                    SpoolErrorKind::UnsupportedVersion,
                    format!(
                        "spool file {} has format version {v}, newer than this program reads ({})",
                        path.display(),
                        crate::redb_store::FORMAT_VERSION
                    ),
                )
                .with_path(&path));
            }
            Err(OpenFailure::Locked) => return Err(locked(&options.dir)),
            Err(OpenFailure::Io(e)) => {
                return Err(store_error("cannot open the spool file", &path, e));
            }
        }
    }
    let store = RedbStore::create_file(&tmp).map_err(|f| match f {
        OpenFailure::Io(e) => store_error("cannot create the spool file", &tmp, e),
        other => SpoolError::new(
            SpoolErrorKind::Storage,
            format!("cannot create the spool file {}: {other:?}", tmp.display()),
        )
        .with_path(&tmp),
    })?;
    drop(store);
    std::fs::rename(&tmp, &path)
        .and_then(|()| fsutil::sync_dir(&options.dir))
        .map_err(|e| SpoolError::io("cannot create the spool file", &path, e))?;
    let store = RedbStore::open_file(&path).map_err(|f| {
        SpoolError::new(
            SpoolErrorKind::Storage,
            format!("cannot open the new spool file {}: {f:?}", path.display()),
        )
        .with_path(&path)
    })?;
    Ok((store, true, corrupt))
}

fn locked(dir: &Path) -> SpoolError {
    SpoolError::new(
        SpoolErrorKind::Locked,
        format!(
            "spool directory {} is in use by another process",
            dir.display()
        ),
    )
    .with_path(dir)
}

pub(crate) fn store_error(what: &str, path: &Path, e: StoreError) -> SpoolError {
    let kind = if e.io.is_some() {
        SpoolErrorKind::Io
    } else {
        SpoolErrorKind::Storage
    };
    SpoolError::new(kind, format!("{what} {}: {e}", path.display())).with_path(path)
}

impl Spool {
    /// Opens (creating if needed) the spool in `options.dir` and starts its writer thread.
    ///
    /// Takes the directory's exclusive lock (a second process gets [`SpoolErrorKind::Locked`],
    /// naming the directory), verifies every page of an existing file (`check_integrity`), and
    /// sets a damaged, truncated, empty or foreign file aside as
    /// `spool.redb.corrupt-<unix time>`, reported in [`OpenReport::corrupt`], before starting
    /// with a new, empty spool: damage never makes `open` fail or panic. It fails only when the
    /// directory cannot be used (permissions, I/O errors), is locked, or holds a file of a newer
    /// format.
    pub fn open(options: SpoolOptions) -> Result<(Spool, OpenReport), SpoolError> {
        options
            .validate()
            .map_err(|m| SpoolError::new(SpoolErrorKind::InvalidOptions, m))?;
        std::fs::create_dir_all(&options.dir)
            .map_err(|e| SpoolError::io("cannot create the spool directory", &options.dir, e))?;
        let lock = fsutil::lock_dir(&options.dir)?;
        let (store, created, corrupt) = open_or_create(&options)?;
        let opener: Opener = {
            let options = options.clone();
            Box::new(move || {
                open_or_create(&options).map(|(store, _, corrupt)| {
                    (Box::new(store) as Box<dyn Store>, corrupt.is_some())
                })
            })
        };
        Spool::start(options, lock, Box::new(store), created, corrupt, opener)
    }

    /// Starts the writer on an opened store.
    pub(crate) fn start(
        options: SpoolOptions,
        lock: DirLock,
        store: Box<dyn Store>,
        created: bool,
        corrupt: Option<CorruptFile>,
        opener: Opener,
    ) -> Result<(Spool, OpenReport), SpoolError> {
        let dir = options.dir.clone();
        let counts = store
            .counts()
            .map_err(|e| store_error("cannot read the spool", &options.file_path(), e))?;
        let replay_until = store
            .last_id(State::Pending)
            .map_err(|e| store_error("cannot read the spool", &options.file_path(), e))?;
        let file_bytes = store.file_len().unwrap_or(0);
        let shared = Arc::new(Shared {
            options,
            store: RwLock::new(Some(Arc::from(store))),
            counters: Counters::default(),
            live_bytes: AtomicU64::new(counts.bytes),
            queued_bytes: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            file_bytes: AtomicU64::new(file_bytes),
            low_space: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            commit_observer: OnceLock::new(),
        });
        if corrupt.is_some() {
            bump(&shared.counters.corrupt_files, 1);
        }
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer::new(Arc::clone(&shared), rx, opener);
        writer.prepare();
        let handle = std::thread::Builder::new()
            .name("hook-spool-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| SpoolError::io("cannot start the spool writer thread for", &dir, e))?;
        let report = OpenReport {
            created,
            corrupt,
            pending: counts.pending,
            deferred: counts.deferred,
            dead: counts.dead,
            replay_until,
        };
        Ok((
            Spool {
                shared,
                tx,
                writer: Mutex::new(Some(handle)),
                _lock: lock,
            },
            report,
        ))
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.shared.options.dir
    }

    /// The options the spool was opened with.
    pub fn options(&self) -> &SpoolOptions {
        &self.shared.options
    }

    fn send(&self, msg: Msg) -> Result<(), SpoolError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(self.shared.closed_error());
        }
        self.tx.send(msg).map_err(|_| self.shared.unavailable())
    }

    /// Checks the bounds for an append of `bytes`, and reserves them.
    fn admit(&self, bytes: u64) -> Result<(), SpoolError> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(shared.closed_error());
        }
        if shared.broken.load(Ordering::Acquire) {
            return Err(shared.unavailable());
        }
        let max = shared.options.max_bytes;
        let live = shared.live_bytes.load(Ordering::Relaxed);
        let queued = shared.queued_bytes.load(Ordering::Relaxed);
        let file = shared.file_bytes.load(Ordering::Relaxed);
        let file_limit = shared.file_limit();
        let full = |why: String| {
            bump(&shared.counters.refused_full, 1);
            Err(SpoolError::new(SpoolErrorKind::Full, why).with_path(&shared.options.dir))
        };
        if live + queued + bytes > max {
            return full(format!(
                "spool {} is full: {} bytes of records would exceed max_bytes {max}",
                shared.options.dir.display(),
                live + queued + bytes
            ));
        }
        if file > file_limit {
            return full(format!(
                "spool {} is full: its file has grown to {file} bytes, over max_bytes {max} \
                 (+ {FILE_OVERHEAD} bytes for an empty store)",
                shared.options.dir.display()
            ));
        }
        if shared.low_space.load(Ordering::Relaxed) {
            return full(format!(
                "spool {} is full: less than min_free_bytes {} free on its file system",
                shared.options.dir.display(),
                shared.options.min_free_bytes
            ));
        }
        if shared.queued.load(Ordering::Relaxed) >= shared.options.max_queued {
            bump(&shared.counters.refused_busy, 1);
            return Err(SpoolError::new(
                SpoolErrorKind::Busy,
                format!(
                    "spool {} is busy: {} appends wait for the writer (max_queued)",
                    shared.options.dir.display(),
                    shared.options.max_queued
                ),
            ));
        }
        shared.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        shared.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn append_msg(
        &self,
        event: &DisconnectEvent,
        done: Option<crate::completion::Completer<()>>,
    ) -> Result<(), SpoolError> {
        let record = Encoded::pending(event, to_ms(SystemTime::now()));
        let bytes = record.stored_bytes() as u64;
        self.admit(bytes)?;
        if let Err(e) = self.send(Msg::Append { record, done }) {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        bump(&self.shared.counters.appended, 1);
        Ok(())
    }

    /// Queues `event` (under its [`EventId`]) as a pending record; never blocks, does no I/O.
    ///
    /// The writer commits it with the next group commit (typically within a millisecond or two).
    /// Refused with [`SpoolErrorKind::Full`] when a bound is reached (`max_bytes`,
    /// `min_free_bytes`, disk full), [`SpoolErrorKind::Busy`] when `max_queued` appends wait,
    /// [`SpoolErrorKind::Closed`]/[`SpoolErrorKind::Unavailable`] when the spool cannot take
    /// anything: the caller then delivers the event from memory only (bypass). Nothing spooled
    /// is ever evicted to make room. Appending an id that is already spooled replaces it (as a
    /// new pending record).
    pub fn append(&self, event: &DisconnectEvent) -> Result<(), SpoolError> {
        self.append_msg(event, None)
    }

    /// Like [`append`](Spool::append), and returns a [`Completion`] resolved once the commit
    /// holding the event returned (it is durable then), or once the event was acked before its
    /// append was committed (it was delivered: nothing left to keep). The completion fails if
    /// the commit failed even after a reopen of the store.
    pub fn append_durable(&self, event: &DisconnectEvent) -> Result<Completion<()>, SpoolError> {
        let (completion, completer) = completion();
        self.append_msg(event, Some(completer))?;
        Ok(completion)
    }

    /// The event `id` was delivered: remove its record (pending or deferred; dead records stay).
    ///
    /// Acks are batched: an ack-only batch waits up to `ack_flush_interval` for company and is
    /// committed without a sync of its own. An ack that reaches the writer while the event's
    /// append is still queued cancels both (no I/O at all). Acking an unknown id does nothing.
    pub fn ack(&self, id: EventId) -> Result<(), SpoolError> {
        self.send(Msg::Ack(id))
    }

    /// [`ack`](Spool::ack) for every id of `ids`.
    pub fn ack_many(&self, ids: impl IntoIterator<Item = EventId>) -> Result<(), SpoolError> {
        for id in ids {
            self.ack(id)?;
        }
        Ok(())
    }

    /// A delivery of `id` failed transiently: the record becomes deferred, due at `due`, with
    /// one more failed attempt and `error` as its last error (at most 1 KiB kept). Unknown or
    /// dead ids are ignored.
    pub fn defer(&self, id: EventId, due: SystemTime, error: &str) -> Result<(), SpoolError> {
        bump(&self.shared.counters.deferred, 1);
        self.send(Msg::Op(
            StoreOp::Defer {
                id,
                due_ms: to_ms(due),
                error: crate::record::truncate(error, crate::record::MAX_ERROR_BYTES).to_owned(),
            },
            None,
        ))
    }

    /// The event `id` is given up (expired, or failed permanently): the record becomes dead,
    /// with one more failed attempt and `reason` as its last error. The oldest dead letters
    /// beyond `dead_max` are evicted (counted in [`SpoolCounters::dead_evicted`]).
    pub fn mark_dead(&self, id: EventId, reason: &str) -> Result<(), SpoolError> {
        bump(&self.shared.counters.dead, 1);
        self.send(Msg::Op(
            StoreOp::Dead {
                id,
                reason: crate::record::truncate(reason, crate::record::MAX_ERROR_BYTES).to_owned(),
            },
            None,
        ))
    }

    fn count(&self, op: StoreOp) -> Completion<usize> {
        let (completion, completer) = completion();
        match self.send(Msg::Op(op, Some(Reply::Count(completer)))) {
            Ok(()) => completion,
            Err(e) => Completion::ready(Err(e)),
        }
    }

    /// Moves the dead records `ids` back to pending (for redelivery); resolves with how many
    /// moved (unknown or not-dead ids are skipped).
    pub fn retry(&self, ids: &[EventId]) -> Completion<usize> {
        self.count(StoreOp::Retry(Some(ids.to_vec())))
    }

    /// Moves every dead record back to pending; resolves with how many moved.
    pub fn retry_dead(&self) -> Completion<usize> {
        self.count(StoreOp::Retry(None))
    }

    /// Removes every dead record ([`Purge::Dead`]) or every record ([`Purge::All`]); resolves
    /// with how many were removed.
    pub fn purge(&self, what: Purge) -> Completion<usize> {
        self.count(StoreOp::Purge {
            all: what == Purge::All,
        })
    }

    /// Moves up to `limit` deferred records due at or before `now` to pending, earliest due
    /// first, and resolves with them (in their new, pending state), for redelivery.
    ///
    /// Taken records are pending: if the process dies before they are acked or deferred again,
    /// the next start replays them.
    pub fn take_due(&self, now: SystemTime, limit: usize) -> Completion<Vec<SpoolRecord>> {
        let (completion, completer) = completion();
        let op = StoreOp::TakeDue {
            now_ms: to_ms(now),
            limit,
        };
        match self.send(Msg::Op(op, Some(Reply::Records(completer)))) {
            Ok(()) => completion,
            Err(e) => Completion::ready(Err(e)),
        }
    }

    /// Commits everything queued so far (acks too) durably; resolves after that commit.
    pub fn flush(&self) -> Completion<()> {
        let (completion, completer) = completion();
        match self.send(Msg::Flush(completer)) {
            Ok(()) => completion,
            Err(e) => Completion::ready(Err(e)),
        }
    }

    /// Committed records in `state`, oldest first, after `after` (exclusive; `None` = from the
    /// start), at most `limit`: page through with the last id of each page.
    ///
    /// Records come in id order (UUIDv7: creation time, to the millisecond), so the cursor stays
    /// valid while records change state; the due order of deferred records is
    /// [`take_due`](Spool::take_due)'s.
    pub fn list(
        &self,
        state: State,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<SpoolRecord>, SpoolError> {
        let store = self.shared.store()?;
        crate::guard::unwind(|| store.list(state, after, limit))
            .map_err(|e| store_error("cannot read the spool", &self.shared.options.file_path(), e))
    }

    /// The committed record of `id`, in any state.
    pub fn get(&self, id: EventId) -> Result<Option<SpoolRecord>, SpoolError> {
        Ok(self.get_many(&[id])?.pop().flatten())
    }

    /// The committed records of `ids` (in that order; `None` where there is none), read in one
    /// snapshot: cheaper than one [`get`](Spool::get) per id for a batch.
    pub fn get_many(&self, ids: &[EventId]) -> Result<Vec<Option<SpoolRecord>>, SpoolError> {
        let store = self.shared.store()?;
        crate::guard::unwind(|| store.get_many(ids))
            .map_err(|e| store_error("cannot read the spool", &self.shared.options.file_path(), e))
    }

    /// The earliest due time of a deferred record (for the redelivery timer).
    pub fn next_due(&self) -> Result<Option<SystemTime>, SpoolError> {
        Ok(self.status()?.next_due)
    }

    /// Counts per state, bytes, oldest and next-due times (committed), and the counters.
    pub fn status(&self) -> Result<SpoolStatus, SpoolError> {
        let counts = self.shared.store()?.counts().map_err(|e| {
            store_error("cannot read the spool", &self.shared.options.file_path(), e)
        })?;
        Ok(SpoolStatus {
            pending: counts.pending,
            deferred: counts.deferred,
            dead: counts.dead,
            bytes: counts.bytes,
            file_bytes: self.shared.file_bytes.load(Ordering::Relaxed),
            oldest: counts.oldest_ms.map(from_ms),
            next_due: counts.next_due_ms.map(from_ms),
            counters: self.counters(),
        })
    }

    /// Has `observer` told the duration of every write transaction committed from now on
    /// (appends, acks, state changes; fsync included), for a latency histogram. It runs on
    /// the writer thread: keep it quick. Only the first observer set is kept: `false` when one
    /// was already set.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::Duration;
    /// use hook_core::{DisconnectEvent, Protocol};
    /// use hook_spool::{Spool, SpoolOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (spool, _report) = Spool::open(SpoolOptions::new(dir.path().join("spool")))?;
    /// let commits = Arc::new(AtomicU64::new(0));
    /// let seen = Arc::clone(&commits);
    /// assert!(spool.set_commit_observer(Box::new(move |_took| {
    ///     seen.fetch_add(1, Ordering::Relaxed);
    /// })));
    /// let event = DisconnectEvent::new("203.0.113.7", Protocol::Sftp, "alice", Duration::from_millis(1234));
    /// spool.append_durable(&event)?.wait()?;
    /// assert!(commits.load(Ordering::Relaxed) >= 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_commit_observer(&self, observer: CommitObserver) -> bool {
        self.shared.commit_observer.set(observer).is_ok()
    }

    /// The counters since open (no I/O).
    pub fn counters(&self) -> SpoolCounters {
        self.shared.counters.snapshot()
    }

    /// Appends queued for the writer and not yet committed.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Commits what is queued, stops the writer and refuses everything afterwards
    /// ([`SpoolErrorKind::Closed`]). The lock is released when the `Spool` is dropped.
    /// Calling it again does nothing.
    pub fn close(&self) -> Result<(), SpoolError> {
        let flushed = if self.shared.closed.load(Ordering::Acquire) {
            Ok(())
        } else {
            let flushed = self.flush();
            self.shared.closed.store(true, Ordering::Release);
            let _ = self.tx.send(Msg::Close);
            flushed.wait()
        };
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // Release the store (and its file) now.
        self.shared
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        flushed
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Spool>();
}
