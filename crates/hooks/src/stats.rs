//! The dispatcher's counters: [`DispatcherStats`] (a snapshot at any time) and
//! [`ShutdownReport`] (what [`shutdown`](crate::Dispatcher::shutdown) returns).

use std::sync::atomic::{AtomicU64, Ordering::Acquire};
use std::time::Duration;

/// A snapshot of a [`Dispatcher`](crate::Dispatcher)'s counters since it was created.
///
/// Each field is read atomically but the snapshot as a whole is not: while events flow, an event
/// may be seen in two places or in none for an instant. At rest (after
/// [`shutdown`](crate::Dispatcher::shutdown)) it balances:
/// `fired() == accepted + filtered + refused()` and
/// `accepted == delivered + failed + abandoned() + queued + in_flight`.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DispatcherStats {
    /// Events [`fire`](crate::Dispatcher::fire) queued ([`Fired::Queued`](crate::Fired::Queued)).
    pub accepted: u64,
    /// Events skipped by the protocol filter ([`Fired::Filtered`](crate::Fired::Filtered)).
    pub filtered: u64,
    /// Events refused because the queue was full.
    pub refused_queue_full: u64,
    /// Events refused because shutdown had started.
    pub refused_shutting_down: u64,
    /// Events whose hook returned a [`Delivery`](hook_core::Delivery).
    pub delivered: u64,
    /// Events whose hook returned a [`HookError`](hook_core::HookError).
    pub failed: u64,
    /// Accepted events dropped from the queue before their hook started (shutdown deadline, or
    /// the dispatcher dropped).
    pub abandoned_queued: u64,
    /// Events whose running hook was cancelled (shutdown deadline, or the dispatcher dropped).
    pub abandoned_running: u64,
    /// Events waiting in the queue now.
    pub queued: u64,
    /// Hooks running now.
    pub in_flight: u64,
    /// With a spool: events handed to the spool by `fire`/`fire_durable` (of `accepted`).
    pub spooled: u64,
    /// With a spool: events that found the in-memory queue full and were kept in the spool only,
    /// to be read back when the queue drains (of `spooled`).
    pub spilled: u64,
    /// With a spool: events the spool refused (full, or broken), delivered from memory only.
    pub bypassed: u64,
    /// With a spool: deliveries that failed transiently and were deferred for redelivery (an
    /// event deferred three times counts three).
    pub deferred: u64,
    /// With a spool: events given up as dead letters (expired past `max_age`, or failed
    /// permanently); also counted in `failed`.
    pub dead: u64,
    /// With a spool: pending events of an earlier run replayed at start-up.
    pub replayed: u64,
    /// With a spool: deferred events redelivered when due.
    pub redelivered: u64,
    /// With a spool: damaged spool files set aside at start-up.
    pub spool_corrupt: u64,
}

impl DispatcherStats {
    /// Every call of [`fire`](crate::Dispatcher::fire): accepted, filtered and refused.
    pub fn fired(&self) -> u64 {
        self.accepted + self.filtered + self.refused()
    }

    /// Every refused event: queue full or shutting down.
    pub fn refused(&self) -> u64 {
        self.refused_queue_full + self.refused_shutting_down
    }

    /// Every abandoned event: never started, or cancelled while running.
    pub fn abandoned(&self) -> u64 {
        self.abandoned_queued + self.abandoned_running
    }
}

/// What [`shutdown`](crate::Dispatcher::shutdown) did. The counts cover the dispatcher's whole
/// life, not just the shutdown.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShutdownReport {
    /// Events delivered.
    pub delivered: u64,
    /// Events whose hook failed.
    pub failed: u64,
    /// Accepted events never delivered because the deadline passed (or the dispatcher was being
    /// dropped): queued ones never started plus running ones cancelled. Cancelled programs have
    /// had their process group killed by the exec backend.
    pub abandoned: u64,
    /// Of [`abandoned`](ShutdownReport::abandoned), those whose hook never started.
    pub abandoned_queued: u64,
    /// Of [`abandoned`](ShutdownReport::abandoned), those cancelled while running.
    pub abandoned_running: u64,
    /// Events refused by [`fire`](crate::Dispatcher::fire) (queue full, or after shutdown began).
    pub refused: u64,
    /// Events skipped by the protocol filter.
    pub filtered: u64,
    /// Events accepted.
    pub accepted: u64,
    /// How long the first `shutdown` call took, from its start until nothing was left running.
    pub elapsed: Duration,
    /// With a spool: events left in it, undelivered, for the next start (pending and deferred;
    /// abandoned spooled events are among them). 0 without a spool.
    pub kept: u64,
}

impl ShutdownReport {
    /// Whether every accepted event was delivered or failed: nothing was abandoned.
    pub fn is_complete(&self) -> bool {
        self.abandoned == 0
    }

    pub(crate) fn from_stats(stats: DispatcherStats, elapsed: Duration) -> Self {
        ShutdownReport {
            delivered: stats.delivered,
            failed: stats.failed,
            abandoned: stats.abandoned(),
            abandoned_queued: stats.abandoned_queued,
            abandoned_running: stats.abandoned_running,
            refused: stats.refused(),
            filtered: stats.filtered,
            accepted: stats.accepted,
            elapsed,
            kept: 0,
        }
    }
}

/// The live counters behind [`DispatcherStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) refused_queue_full: AtomicU64,
    pub(crate) refused_shutting_down: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) abandoned_queued: AtomicU64,
    pub(crate) abandoned_running: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) spilled: AtomicU64,
    pub(crate) bypassed: AtomicU64,
    pub(crate) deferred: AtomicU64,
    pub(crate) dead: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) redelivered: AtomicU64,
    pub(crate) spool_corrupt: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> DispatcherStats {
        DispatcherStats {
            accepted: self.accepted.load(Acquire),
            filtered: self.filtered.load(Acquire),
            refused_queue_full: self.refused_queue_full.load(Acquire),
            refused_shutting_down: self.refused_shutting_down.load(Acquire),
            delivered: self.delivered.load(Acquire),
            failed: self.failed.load(Acquire),
            abandoned_queued: self.abandoned_queued.load(Acquire),
            abandoned_running: self.abandoned_running.load(Acquire),
            queued: self.queued.load(Acquire),
            in_flight: self.in_flight.load(Acquire),
            spooled: self.spooled.load(Acquire),
            spilled: self.spilled.load(Acquire),
            bypassed: self.bypassed.load(Acquire),
            deferred: self.deferred.load(Acquire),
            dead: self.dead.load(Acquire),
            replayed: self.replayed.load(Acquire),
            redelivered: self.redelivered.load(Acquire),
            spool_corrupt: self.spool_corrupt.load(Acquire),
        }
    }
}
