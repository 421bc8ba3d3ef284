//! What the spool reports: [`OpenReport`], [`CorruptFile`], [`SpoolStatus`], [`SpoolCounters`].

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use hook_core::EventId;

/// A damaged store file found at open and set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptFile {
    /// Where the file is now: `dir/spool.redb.corrupt-<unix time>`.
    pub renamed_to: PathBuf,
    /// What was wrong with it (the store's words: "the file is empty", a checksum failure, ...).
    pub reason: String,
    /// Its size in bytes.
    pub size: u64,
}

impl fmt::Display for CorruptFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "damaged spool file ({} bytes) set aside as {}: {}; starting with an empty spool",
            self.size,
            self.renamed_to.display(),
            self.reason
        )
    }
}

/// What [`Spool::open`](crate::Spool::open) found.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Whether a new, empty spool file was created (first start, or after a damaged one).
    pub created: bool,
    /// The damaged file set aside, if any: log it at ERROR and count it.
    pub corrupt: Option<CorruptFile>,
    /// Pending records found: events in flight or queued when the last process stopped. Replay
    /// them ([`Spool::list`](crate::Spool::list) with [`State::Pending`](crate::State::Pending)).
    pub pending: u64,
    /// Deferred records found (they keep their due times).
    pub deferred: u64,
    /// Dead letters found.
    pub dead: u64,
    /// The largest pending id at open: replaying pending records up to and including it replays
    /// exactly what the previous process left (later ids are this process's own appends).
    pub replay_until: Option<EventId>,
}

/// A snapshot of the spool's content (from the store) and counters (since open).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Pending records (committed).
    pub pending: u64,
    /// Deferred records.
    pub deferred: u64,
    /// Dead letters.
    pub dead: u64,
    /// Bytes of all live records (keys and values, every state).
    pub bytes: u64,
    /// Size of the store file in bytes.
    pub file_bytes: u64,
    /// When the oldest pending or deferred record was first seen.
    pub oldest: Option<SystemTime>,
    /// The earliest due time of a deferred record.
    pub next_due: Option<SystemTime>,
    /// The counters since open.
    pub counters: SpoolCounters,
}

impl SpoolStatus {
    /// How long ago the oldest pending or deferred record was first seen (zero if it is "in the
    /// future" by the clock).
    pub fn oldest_age(&self, now: SystemTime) -> Option<Duration> {
        self.oldest
            .map(|t| now.duration_since(t).unwrap_or(Duration::ZERO))
    }
}

/// Counters since the spool was opened (no I/O to read them).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolCounters {
    /// Appends accepted (queued for the writer).
    pub appended: u64,
    /// Appends committed to the store.
    pub committed: u64,
    /// Appends refused because a bound was reached ([`SpoolErrorKind::Full`](crate::SpoolErrorKind::Full)).
    pub refused_full: u64,
    /// Appends refused because too many were queued ([`SpoolErrorKind::Busy`](crate::SpoolErrorKind::Busy)).
    pub refused_busy: u64,
    /// Acks applied (records removed).
    pub acked: u64,
    /// Events acked before their append was committed: neither was written (no I/O).
    pub acked_before_commit: u64,
    /// Records deferred.
    pub deferred: u64,
    /// Records marked dead.
    pub dead: u64,
    /// Dead letters evicted to keep `dead_max`.
    pub dead_evicted: u64,
    /// Write transactions committed.
    pub commits: u64,
    /// Commits that failed (each is retried after a reopen).
    pub failed_commits: u64,
    /// Times the store was reopened after a failed commit.
    pub reopened: u64,
    /// Appends lost because their batch could not be committed even after a reopen (their
    /// durable waiters got the error; the events were still delivered from memory).
    pub lost_appends: u64,
    /// Times the ballast file was released because the disk was full.
    pub ballast_released: u64,
    /// Damaged store files set aside (at open, or at a reopen after a failed commit).
    pub corrupt_files: u64,
    /// Compactions that reclaimed space.
    pub compactions: u64,
}

/// The live counters, updated by the callers and the writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appended: AtomicU64,
    pub(crate) committed: AtomicU64,
    pub(crate) refused_full: AtomicU64,
    pub(crate) refused_busy: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) acked_before_commit: AtomicU64,
    pub(crate) deferred: AtomicU64,
    pub(crate) dead: AtomicU64,
    pub(crate) dead_evicted: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
    pub(crate) reopened: AtomicU64,
    pub(crate) lost_appends: AtomicU64,
    pub(crate) ballast_released: AtomicU64,
    pub(crate) corrupt_files: AtomicU64,
    pub(crate) compactions: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> SpoolCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SpoolCounters {
            appended: get(&self.appended),
            committed: get(&self.committed),
            refused_full: get(&self.refused_full),
            refused_busy: get(&self.refused_busy),
            acked: get(&self.acked),
            acked_before_commit: get(&self.acked_before_commit),
            deferred: get(&self.deferred),
            dead: get(&self.dead),
            dead_evicted: get(&self.dead_evicted),
            commits: get(&self.commits),
            failed_commits: get(&self.failed_commits),
            reopened: get(&self.reopened),
            lost_appends: get(&self.lost_appends),
            ballast_released: get(&self.ballast_released),
            corrupt_files: get(&self.corrupt_files),
            compactions: get(&self.compactions),
        }
    }
}
