//! The durable event log behind the hooks dispatcher: disconnect events kept in an embedded ACID
//! store so that they survive kill -9, crashes, power loss and long endpoint outages.
//!
//! **Who should depend on this crate:** the `hooks` facade (its `spool` feature) and tools that
//! inspect a spool (`hookctl spool ...`). A server author normally configures `hooks.spool` and
//! never touches this crate directly. It depends on `hook-core`, [redb] (a pure-Rust, ACID,
//! copy-on-write B-tree store with checksummed commits) and `rustix` (free space via `statvfs`).
//!
//! What it gives:
//!
//! * records keyed by the event's [`EventId`](hook_core::EventId), in three [`State`]s (pending,
//!   deferred with a due time, dead with a reason), with attempts, last error and first-seen time
//!   (the layout is documented and versioned in `docs/architecture.md`);
//! * one writer thread doing group commit: [`Spool::append`], [`Spool::ack`], [`Spool::defer`],
//!   [`Spool::mark_dead`] only queue (no blocking, no I/O on the caller); everything queued since
//!   the last commit goes into one transaction; [`Spool::append_durable`] returns a
//!   [`Completion`] resolved after the commit; an event acked before its append was committed
//!   costs no I/O;
//! * replay and inspection: [`Spool::list`] (oldest first), [`Spool::take_due`],
//!   [`Spool::status`] (counts per state, bytes, oldest age); [`Spool::counters`], and
//!   [`Spool::set_commit_observer`] for a commit-latency histogram (this crate records no metrics
//!   itself);
//! * bounds: `max_bytes`, a free-space floor, `dead_max`; a ballast file released on `ENOSPC`; a
//!   failed commit reopens the store and applies the batch again;
//! * an exclusive directory lock, `check_integrity` at open, and a damaged file set aside as
//!   `spool.redb.corrupt-<unix time>` ([`OpenReport::corrupt`]) instead of a panic or a refusal.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use hook_core::{DisconnectEvent, Protocol};
//! use hook_spool::{Spool, SpoolOptions, State};
//!
//! # fn main() -> Result<(), hook_spool::SpoolError> {
//! # let tmp = std::env::temp_dir().join(format!("hook-spool-doc-{}", std::process::id()));
//! let (spool, report) = Spool::open(SpoolOptions::new(&tmp))?;
//! assert!(report.corrupt.is_none());
//!
//! let event = DisconnectEvent::new("10.0.0.1", Protocol::Sftp, "alice", Duration::from_millis(1200));
//! // fire(): queue it (no I/O here) ...
//! spool.append(&event)?;
//! // ... or wait until it is durable (await it in async code):
//! let other = DisconnectEvent::new("10.0.0.2", Protocol::Ftp, "bob", Duration::ZERO);
//! spool.append_durable(&other)?.wait()?;
//!
//! // Outcomes move the records: delivered -> removed, transient failure -> deferred.
//! spool.ack(event.id())?;
//! spool.defer(other.id(), SystemTime::now() + Duration::from_secs(30), "HTTP 503")?;
//! spool.flush().wait()?;
//!
//! let status = spool.status()?;
//! assert_eq!((status.pending, status.deferred, status.dead), (0, 1, 0));
//! let deferred = spool.list(State::Deferred, None, 100)?;
//! assert_eq!(deferred[0].last_error(), Some("HTTP 503"));
//! # spool.close()?; drop(spool); std::fs::remove_dir_all(&tmp).ok();
//! # Ok(()) }
//! ```
//!
//! Feature flags: none. MSRV: the workspace's `rust-version` (1.90, what redb 4 needs).
//!
//! [redb]: https://www.redb.org

#![forbid(unsafe_code)]

mod completion;
mod error;
mod fsutil;
mod guard;
mod options;
mod record;
mod redb_store;
mod spool;
mod status;
mod store;
mod writer;

pub use completion::Completion;
pub use error::{SpoolError, SpoolErrorKind};
pub use options::{
    DEFAULT_ACK_FLUSH_INTERVAL, DEFAULT_BALLAST_BYTES, DEFAULT_DEAD_MAX, DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_QUEUED, DEFAULT_MIN_FREE_BYTES, SpoolOptions,
};
pub use record::{SpoolRecord, State};
pub use spool::{CommitObserver, Purge, Spool};
pub use status::{CorruptFile, OpenReport, SpoolCounters, SpoolStatus};

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod testing;
