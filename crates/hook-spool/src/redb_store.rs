//! The redb implementation of [`Store`]: one file, five tables, one write transaction per batch.
//!
//! Tables (format version 1):
//!
//! * `meta: &str -> u64`: `format_version` (1), `created_ms`, `bytes` (live record bytes, kept in
//!   the same transactions as the records), `dead_evicted` (dead letters evicted, ever).
//! * `pending`, `deferred`, `dead: [u8; 16] -> &[u8]`: the records of each state, keyed by the
//!   event id's bytes, valued in the layout of [`crate::record`]. A state change moves the record
//!   from one table to another in the same transaction; redb keeps each table's length, so the
//!   counts per state cost nothing.
//! * `due: (u64, [u8; 16]) -> ()`: (next attempt ms, id) of every deferred record, the index the
//!   redelivery timer scans.

use std::io;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use hook_core::EventId;
use redb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    StorageBackend, Table, TableDefinition, WriteTransaction,
};

use crate::record::{Encoded, SpoolRecord, State};
use crate::store::{Applied, Counts, OpResult, Store, StoreError, StoreOp};

/// The store format this crate writes (the `meta.format_version` value).
pub(crate) const FORMAT_VERSION: u64 = 1;

const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");
const PENDING: TableDefinition<'static, [u8; 16], &[u8]> = TableDefinition::new("pending");
const DEFERRED: TableDefinition<'static, [u8; 16], &[u8]> = TableDefinition::new("deferred");
const DEAD: TableDefinition<'static, [u8; 16], &[u8]> = TableDefinition::new("dead");
const DUE: TableDefinition<'static, (u64, [u8; 16]), ()> = TableDefinition::new("due");

/// Page cache for the spool: the working set is the recent tail and the due index.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Why a file could not be opened as a spool.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// The file is damaged, truncated, empty or not a spool: set it aside.
    Corrupt(String),
    /// Written by a newer format version: refuse (do not destroy what a newer binary wrote).
    Version(u64),
    /// Another handle holds it.
    Locked,
    /// An I/O error not about the content (permissions, EIO while reading).
    Io(StoreError),
}

/// The redb store.
#[derive(Debug)]
pub(crate) struct RedbStore {
    db: Database,
    /// The file, for its size (`None` on a test backend).
    path: Option<std::path::PathBuf>,
}

fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// Runs `f`, turning a panic inside redb (damaged files can trigger one) into `Corrupt`.
fn guarded<T>(f: impl FnOnce() -> Result<T, OpenFailure>) -> Result<T, OpenFailure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(OpenFailure::Corrupt(format!(
            "the store panicked: {}",
            crate::guard::panic_text(&*panic)
        ))),
    }
}

fn classify_open(err: redb::DatabaseError) -> OpenFailure {
    match err {
        redb::DatabaseError::DatabaseAlreadyOpen => OpenFailure::Locked,
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if !matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            OpenFailure::Io(StoreError::from_io(&io))
        }
        other => OpenFailure::Corrupt(other.to_string()),
    }
}

impl RedbStore {
    /// Creates a new, empty spool in a file at `path` (which must not exist or be empty).
    pub(crate) fn create_file(path: &Path) -> Result<RedbStore, OpenFailure> {
        guarded(|| {
            let db = builder().create(path).map_err(classify_open)?;
            RedbStore::init(db).map(|s| s.at(path))
        })
    }

    /// Opens the existing spool file at `path` and verifies every page (`check_integrity`).
    pub(crate) fn open_file(path: &Path) -> Result<RedbStore, OpenFailure> {
        let len = std::fs::metadata(path)
            .map_err(|e| OpenFailure::Io(StoreError::from_io(&e)))?
            .len();
        if len == 0 {
            return Err(OpenFailure::Corrupt("the file is empty".into()));
        }
        guarded(|| {
            let db = builder().open(path).map_err(classify_open)?;
            RedbStore::verify(db).map(|s| s.at(path))
        })
    }

    /// Opens (or, when empty, creates) a spool on `backend`; verifies an existing one.
    #[allow(dead_code)] // used by the fault-injection tests
    pub(crate) fn open_backend(backend: impl StorageBackend) -> Result<RedbStore, OpenFailure> {
        let empty = backend
            .len()
            .map_err(|e| OpenFailure::Io(StoreError::from_io(&e)))?
            == 0;
        guarded(|| {
            let db = builder()
                .create_with_backend(backend)
                .map_err(classify_open)?;
            if empty {
                RedbStore::init(db)
            } else {
                RedbStore::verify(db)
            }
        })
    }

    fn at(mut self, path: &Path) -> RedbStore {
        self.path = Some(path.to_owned());
        self
    }

    fn init(db: Database) -> Result<RedbStore, OpenFailure> {
        let store = RedbStore { db, path: None };
        let now = crate::record::to_ms(std::time::SystemTime::now());
        let init = || -> Result<(), redb::Error> {
            let txn = store.db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                meta.insert("format_version", FORMAT_VERSION)?;
                meta.insert("created_ms", now)?;
                meta.insert("bytes", 0)?;
                meta.insert("dead_evicted", 0)?;
                txn.open_table(PENDING)?;
                txn.open_table(DEFERRED)?;
                txn.open_table(DEAD)?;
                txn.open_table(DUE)?;
            }
            txn.commit()?;
            Ok(())
        };
        init().map_err(|e| OpenFailure::Io(StoreError::from_redb(e)))?;
        Ok(store)
    }

    fn verify(mut db: Database) -> Result<RedbStore, OpenFailure> {
        match db.check_integrity() {
            Ok(_) => {} // Ok(false): repaired after an unclean shutdown, which is fine.
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(io))) => {
                return Err(OpenFailure::Io(StoreError::from_io(&io)));
            }
            Err(e) => return Err(OpenFailure::Corrupt(e.to_string())),
        }
        let store = RedbStore { db, path: None };
        let version = store
            .meta("format_version")
            .map_err(|e| OpenFailure::Corrupt(format!("no spool metadata: {e}")))?;
        match version {
            Some(FORMAT_VERSION) => {}
            Some(v) if v > FORMAT_VERSION => return Err(OpenFailure::Version(v)),
            Some(v) => {
                return Err(OpenFailure::Corrupt(format!("unknown format version {v}")));
            }
            None => {
                return Err(OpenFailure::Corrupt(
                    "not a spool file (no format version)".into(),
                ));
            }
        }
        // Every table must be there.
        let tables = || -> Result<(), redb::Error> {
            let txn = store.db.begin_read()?;
            txn.open_table(PENDING)?;
            txn.open_table(DEFERRED)?;
            txn.open_table(DEAD)?;
            txn.open_table(DUE)?;
            Ok(())
        };
        tables().map_err(|e| OpenFailure::Corrupt(format!("not a spool file: {e}")))?;
        Ok(store)
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, redb::Error> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(key)?.map(|v| v.value()))
    }

    fn apply_inner(
        &self,
        ops: &[StoreOp],
        durable: bool,
        dead_max: u64,
    ) -> Result<Applied, redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let applied = {
            let mut tx = Tx::open(&txn)?;
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                results.push(tx.apply(op)?);
            }
            let evicted = tx.evict_dead(dead_max)?;
            let live_bytes = tx.finish()?;
            Applied {
                results,
                evicted,
                live_bytes,
            }
        };
        txn.commit()?;
        Ok(applied)
    }
}

/// The open tables of one write transaction, and the byte-count delta.
struct Tx<'t> {
    meta: Table<'t, &'static str, u64>,
    pending: Table<'t, [u8; 16], &'static [u8]>,
    deferred: Table<'t, [u8; 16], &'static [u8]>,
    dead: Table<'t, [u8; 16], &'static [u8]>,
    due: Table<'t, (u64, [u8; 16]), ()>,
    bytes: i128,
}

fn decode(key: [u8; 16], value: &[u8]) -> Result<SpoolRecord, redb::Error> {
    SpoolRecord::decode(key, value)
        .map_err(|e| redb::Error::Corrupted(format!("record {}: {e}", EventId::from_bytes(key))))
}

impl<'t> Tx<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Tx<'t>, redb::Error> {
        Ok(Tx {
            meta: txn.open_table(META)?,
            pending: txn.open_table(PENDING)?,
            deferred: txn.open_table(DEFERRED)?,
            dead: txn.open_table(DEAD)?,
            due: txn.open_table(DUE)?,
            bytes: 0,
        })
    }

    /// Writes the live-byte count back; the new count when it changed.
    fn finish(mut self) -> Result<Option<u64>, redb::Error> {
        if self.bytes == 0 {
            return Ok(None);
        }
        let old = self.meta.get("bytes")?.map(|v| v.value()).unwrap_or(0);
        let new = u64::try_from((i128::from(old) + self.bytes).max(0)).unwrap_or(u64::MAX);
        self.meta.insert("bytes", new)?;
        Ok(Some(new))
    }

    fn table(&mut self, state: State) -> &mut Table<'t, [u8; 16], &'static [u8]> {
        match state {
            State::Pending => &mut self.pending,
            State::Deferred => &mut self.deferred,
            State::Dead => &mut self.dead,
        }
    }

    /// Removes the record `id` from `state`'s table (and the due index), returning it.
    fn take(&mut self, state: State, id: [u8; 16]) -> Result<Option<SpoolRecord>, redb::Error> {
        let record = match self.table(state).remove(id)? {
            Some(value) => decode(id, value.value())?,
            None => return Ok(None),
        };
        if state == State::Deferred {
            self.due.remove((record.next_attempt_ms(), id))?;
        }
        self.bytes -= record.stored_bytes() as i128;
        Ok(Some(record))
    }

    /// Takes `id` from pending or deferred.
    fn take_live(&mut self, id: [u8; 16]) -> Result<Option<SpoolRecord>, redb::Error> {
        match self.take(State::Pending, id)? {
            Some(record) => Ok(Some(record)),
            None => self.take(State::Deferred, id),
        }
    }

    /// Deletes `id` from pending or deferred without decoding it (an ack: only its size and,
    /// when deferred, its due-index entry are needed); whether it was there.
    fn remove_live(&mut self, id: [u8; 16]) -> Result<bool, redb::Error> {
        if let Some(value) = self.pending.remove(id)? {
            self.bytes -= (16 + value.value().len()) as i128;
            return Ok(true);
        }
        Ok(self.take(State::Deferred, id)?.is_some())
    }

    fn put(&mut self, record: &SpoolRecord) -> Result<(), redb::Error> {
        self.put_replacing(&record.encoded()).map(|_| ())
    }

    /// Writes `record` into its state's table; the bytes of the value it replaced there, if any.
    fn put_replacing(&mut self, record: &Encoded) -> Result<Option<usize>, redb::Error> {
        let id = *record.id.as_bytes();
        let state = record.state;
        if state == State::Deferred {
            self.due.insert((record.next_attempt_ms, id), ())?;
        }
        let replaced = self
            .table(state)
            .insert(id, record.value.as_slice())?
            .map(|old| old.value().to_vec());
        self.bytes += record.stored_bytes() as i128;
        match replaced {
            None => Ok(None),
            Some(old) => {
                self.bytes -= (16 + old.len()) as i128;
                if state == State::Deferred {
                    // Its old due-index entry, unless the due time is unchanged.
                    let old = decode(id, &old)?;
                    if old.next_attempt_ms() != record.next_attempt_ms {
                        self.due.remove((old.next_attempt_ms(), id))?;
                    }
                }
                Ok(Some(old.len()))
            }
        }
    }

    fn apply(&mut self, op: &StoreOp) -> Result<OpResult, redb::Error> {
        match op {
            StoreOp::Put(record) => {
                let id = *record.id.as_bytes();
                // Replacing: drop whatever state it had. The record's own table is replaced by
                // the insert (no lookup first: an append is almost always new).
                let target = record.state;
                for state in State::ALL {
                    if state != target {
                        self.take(state, id)?;
                    }
                }
                self.put_replacing(record)?;
                Ok(OpResult::Count(1))
            }
            StoreOp::Nothing => Ok(OpResult::Count(0)),
            StoreOp::Remove(id) => Ok(OpResult::Count(usize::from(
                self.remove_live(*id.as_bytes())?,
            ))),
            StoreOp::Defer { id, due_ms, error } => {
                match self.take_live(*id.as_bytes())? {
                    Some(record) => {
                        // 0 means "no due time" in the layout: keep due times non-zero.
                        let record = record
                            .failed(error)
                            .moved(State::Deferred, (*due_ms).max(1));
                        self.put(&record)?;
                        Ok(OpResult::Count(1))
                    }
                    None => Ok(OpResult::Count(0)),
                }
            }
            StoreOp::Dead { id, reason } => match self.take_live(*id.as_bytes())? {
                Some(record) => {
                    self.put(&record.failed(reason).moved(State::Dead, 0))?;
                    Ok(OpResult::Count(1))
                }
                None => Ok(OpResult::Count(0)),
            },
            StoreOp::Retry(ids) => {
                let ids: Vec<[u8; 16]> = match ids {
                    Some(ids) => ids.iter().map(|id| *id.as_bytes()).collect(),
                    None => {
                        let mut all = Vec::new();
                        for entry in self.dead.iter()? {
                            all.push(entry?.0.value());
                        }
                        all
                    }
                };
                let mut moved = 0;
                for id in ids {
                    if let Some(record) = self.take(State::Dead, id)? {
                        self.put(&record.moved(State::Pending, 0))?;
                        moved += 1;
                    }
                }
                Ok(OpResult::Count(moved))
            }
            StoreOp::Purge { all } => {
                let mut removed = 0;
                let states: &[State] = if *all { &State::ALL } else { &[State::Dead] };
                for &state in states {
                    removed += self.table(state).len()? as usize;
                    self.table(state).retain(|_, _| false)?;
                }
                if *all {
                    self.due.retain(|_, _| false)?;
                    let old = self.meta.get("bytes")?.map(|v| v.value()).unwrap_or(0);
                    self.bytes = -i128::from(old);
                } else {
                    // Recount what is left: cheaper than decoding every dead record.
                    let mut left: i128 = 0;
                    for table in [&self.pending, &self.deferred] {
                        for entry in table.iter()? {
                            left += (16 + entry?.1.value().len()) as i128;
                        }
                    }
                    let old = self.meta.get("bytes")?.map(|v| v.value()).unwrap_or(0);
                    self.bytes = left - i128::from(old);
                }
                Ok(OpResult::Count(removed))
            }
            StoreOp::TakeDue { now_ms, limit } => {
                let mut keys = Vec::new();
                for entry in self.due.range(..=(*now_ms, [0xFF; 16]))?.take(*limit) {
                    keys.push(entry?.0.value());
                }
                let mut records = Vec::with_capacity(keys.len());
                for (_, id) in keys {
                    if let Some(record) = self.take(State::Deferred, id)? {
                        let record = record.moved(State::Pending, 0);
                        self.put(&record)?;
                        records.push(record);
                    }
                }
                Ok(OpResult::Records(records))
            }
        }
    }

    fn evict_dead(&mut self, dead_max: u64) -> Result<u64, redb::Error> {
        let mut evicted = 0;
        let len = self.dead.len()?;
        for _ in dead_max..len {
            let popped = self
                .dead
                .pop_first()?
                .map(|(_, v)| (16 + v.value().len()) as i128);
            match popped {
                Some(size) => {
                    self.bytes -= size;
                    evicted += 1;
                }
                None => break,
            }
        }
        if evicted > 0 {
            let old = self
                .meta
                .get("dead_evicted")?
                .map(|v| v.value())
                .unwrap_or(0);
            self.meta.insert("dead_evicted", old + evicted)?;
        }
        Ok(evicted)
    }
}

impl StoreError {
    pub(crate) fn from_io(err: &io::Error) -> StoreError {
        StoreError {
            message: err.to_string(),
            io: Some(err.kind()),
            no_space: is_no_space(err),
        }
    }

    pub(crate) fn from_redb(err: impl Into<redb::Error>) -> StoreError {
        let err = err.into();
        match &err {
            redb::Error::Io(io) => StoreError {
                message: err.to_string(),
                io: Some(io.kind()),
                no_space: is_no_space(io),
            },
            redb::Error::PreviousIo => StoreError {
                message: err.to_string(),
                io: Some(io::ErrorKind::Other),
                no_space: false,
            },
            _ => StoreError {
                message: err.to_string(),
                io: None,
                no_space: false,
            },
        }
    }
}

pub(crate) fn is_no_space(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::StorageFull
        || err.kind() == io::ErrorKind::QuotaExceeded
        || err.raw_os_error() == Some(28) // ENOSPC where the kind is not mapped
}

impl Store for RedbStore {
    fn apply(&self, ops: &[StoreOp], durable: bool, dead_max: u64) -> Result<Applied, StoreError> {
        self.apply_inner(ops, durable, dead_max)
            .map_err(StoreError::from_redb)
    }

    fn list(
        &self,
        state: State,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<SpoolRecord>, StoreError> {
        let run = || -> Result<Vec<SpoolRecord>, redb::Error> {
            let txn = self.db.begin_read()?;
            let mut out = Vec::new();
            let table = txn.open_table(match state {
                State::Pending => PENDING,
                State::Deferred => DEFERRED,
                State::Dead => DEAD,
            })?;
            let range = match after {
                Some(id) => table.range((Bound::Excluded(*id.as_bytes()), Bound::Unbounded))?,
                None => table.range::<[u8; 16]>(..)?,
            };
            for entry in range.take(limit) {
                let (k, v) = entry?;
                out.push(decode(k.value(), v.value())?);
            }
            Ok(out)
        };
        run().map_err(StoreError::from_redb)
    }

    fn last_id(&self, state: State) -> Result<Option<EventId>, StoreError> {
        let run = || -> Result<Option<EventId>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(match state {
                State::Pending => PENDING,
                State::Deferred => DEFERRED,
                State::Dead => DEAD,
            })?;
            Ok(table.last()?.map(|(k, _)| EventId::from_bytes(k.value())))
        };
        run().map_err(StoreError::from_redb)
    }

    fn get_many(&self, ids: &[EventId]) -> Result<Vec<Option<SpoolRecord>>, StoreError> {
        let run = || -> Result<Vec<Option<SpoolRecord>>, redb::Error> {
            let txn = self.db.begin_read()?;
            let tables = [
                txn.open_table(PENDING)?,
                txn.open_table(DEFERRED)?,
                txn.open_table(DEAD)?,
            ];
            let mut out = Vec::with_capacity(ids.len());
            'ids: for id in ids {
                let key = *id.as_bytes();
                for table in &tables {
                    if let Some(v) = table.get(key)? {
                        out.push(Some(decode(key, v.value())?));
                        continue 'ids;
                    }
                }
                out.push(None);
            }
            Ok(out)
        };
        run().map_err(StoreError::from_redb)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let run = || -> Result<Counts, redb::Error> {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            let pending = txn.open_table(PENDING)?;
            let deferred = txn.open_table(DEFERRED)?;
            let dead = txn.open_table(DEAD)?;
            let due = txn.open_table(DUE)?;
            let mut oldest_ms: Option<u64> = None;
            for table in [&pending, &deferred] {
                if let Some((k, v)) = table.first()? {
                    let ms = decode(k.value(), v.value())?.first_seen_ms();
                    oldest_ms = Some(oldest_ms.map_or(ms, |o| o.min(ms)));
                }
            }
            Ok(Counts {
                pending: pending.len()?,
                deferred: deferred.len()?,
                dead: dead.len()?,
                bytes: meta.get("bytes")?.map(|v| v.value()).unwrap_or(0),
                oldest_ms,
                next_due_ms: due.first()?.map(|(k, _)| k.value().0),
            })
        };
        run().map_err(StoreError::from_redb)
    }

    fn file_len(&self) -> Result<u64, StoreError> {
        match &self.path {
            Some(path) => std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| StoreError::from_io(&e)),
            None => Ok(0),
        }
    }

    fn compact(&mut self) -> Result<bool, StoreError> {
        // redb compacts iteratively until no progress, then shrinks the file.
        self.db.compact().map_err(StoreError::from_redb)
    }
}
