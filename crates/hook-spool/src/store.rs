//! The internal store trait: what the writer and the readers need from an embedded store, so
//! that another store (a segment log, SQLite) can replace redb without touching the rest.

use hook_core::EventId;

use crate::record::{Encoded, SpoolRecord, State};

/// One change, applied in order inside one write transaction.
#[derive(Debug)]
pub(crate) enum StoreOp {
    /// Insert (or replace) a record in its state (appends: pending), already encoded.
    Put(Encoded),
    /// Does nothing (an append taken out of a batch after the disk was found full).
    Nothing,
    /// Remove a pending or deferred record (delivered). Dead records are kept.
    Remove(EventId),
    /// Pending or deferred -> deferred, due at `due_ms`, one more failed attempt.
    Defer {
        id: EventId,
        due_ms: u64,
        error: String,
    },
    /// Pending or deferred -> dead, one more failed attempt, `reason` as last error.
    Dead { id: EventId, reason: String },
    /// Dead -> pending (attempts kept, error kept); `None` = every dead record.
    Retry(Option<Vec<EventId>>),
    /// Remove every dead record, or every record.
    Purge { all: bool },
    /// Deferred records due at or before `now_ms` -> pending, at most `limit`, oldest due first.
    TakeDue { now_ms: u64, limit: usize },
}

/// What one [`StoreOp`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpResult {
    /// How many records it changed (0 or 1 for the single-record ops).
    Count(usize),
    /// The records it moved (`TakeDue`), in their new state.
    Records(Vec<SpoolRecord>),
}

/// What one transaction did, besides the per-op results.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// One result per op, in order.
    pub(crate) results: Vec<OpResult>,
    /// Dead letters evicted to keep `dead_max`.
    pub(crate) evicted: u64,
    /// The live record bytes after the transaction, when it changed them (`None`: unchanged).
    pub(crate) live_bytes: Option<u64>,
}

/// Counts and sizes, read in one snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) pending: u64,
    pub(crate) deferred: u64,
    pub(crate) dead: u64,
    /// Bytes of every live record (key + value), all states.
    pub(crate) bytes: u64,
    /// First-seen time (ms) of the oldest pending or deferred record.
    pub(crate) oldest_ms: Option<u64>,
    /// Earliest due time (ms) of a deferred record.
    pub(crate) next_due_ms: Option<u64>,
}

/// A store error, classified so the writer knows whether a reopen can help.
#[derive(Debug)]
pub(crate) struct StoreError {
    pub(crate) message: String,
    /// The I/O error kind underneath, when there is one.
    pub(crate) io: Option<std::io::ErrorKind>,
    /// The disk is full (ENOSPC), or the store needs space it cannot get.
    pub(crate) no_space: bool,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The store underneath the spool: records keyed by [`EventId`] in three states.
///
/// Writes come from one thread (the writer); reads may come from any thread at the same time.
pub(crate) trait Store: Send + Sync + std::fmt::Debug {
    /// Applies `ops` in order in one transaction and commits it (durably when `durable`),
    /// evicting the oldest dead letters beyond `dead_max`. On error nothing is applied.
    fn apply(&self, ops: &[StoreOp], durable: bool, dead_max: u64) -> Result<Applied, StoreError>;

    /// Records in `state`, oldest (smallest id) first, starting after `after`, at most `limit`.
    fn list(
        &self,
        state: State,
        after: Option<EventId>,
        limit: usize,
    ) -> Result<Vec<SpoolRecord>, StoreError>;

    /// The largest id in `state`'s table (the newest record).
    fn last_id(&self, state: State) -> Result<Option<EventId>, StoreError>;

    /// The records with `ids`, in any state, in one snapshot (`None` where there is none).
    fn get_many(&self, ids: &[EventId]) -> Result<Vec<Option<SpoolRecord>>, StoreError>;

    /// Counts per state, live bytes, oldest and next-due times.
    fn counts(&self) -> Result<Counts, StoreError>;

    /// The size of the store's file(s) in bytes.
    fn file_len(&self) -> Result<u64, StoreError>;

    /// Reclaims free space in the file if that is worth it; whether it did.
    fn compact(&mut self) -> Result<bool, StoreError>;
}
