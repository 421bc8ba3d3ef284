//! What [`Dispatcher::fire`](crate::Dispatcher::fire) answers: [`Fired`] or [`FireError`].

use std::fmt;

use hook_core::{DisconnectEvent, EventId};

/// What happened to an event [`fire`](crate::Dispatcher::fire) accepted or skipped.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fired {
    /// The event is queued; its hook runs as soon as a slot is free. Its outcome reaches the
    /// [outcome callback](crate::DispatcherOptions::with_on_outcome) and the counters.
    Queued,
    /// The event's protocol is not in the dispatcher's filter (by default only `SFTP`, `SCP`,
    /// `SSH` and `FTP` fire, as in SFTPGo), so no hook runs. This is normal operation, not an
    /// error; it is counted in [`DispatcherStats::filtered`](crate::DispatcherStats::filtered).
    Filtered,
    /// With a spool: the event (this id) is in the durable log (for `fire`: handed to its
    /// writer; for [`fire_durable`](crate::Dispatcher::fire_durable): committed) and queued for
    /// delivery, or, when the in-memory queue was full, *spilled*: kept only in the spool and
    /// read back when the queue drains. It is delivered at least once, across restarts.
    Spooled(EventId),
}

impl Fired {
    /// Whether the event was taken for delivery (queued, spooled or spilled).
    pub fn is_queued(self) -> bool {
        matches!(self, Fired::Queued | Fired::Spooled(_))
    }

    /// The event's id when it is in the spool.
    pub fn spooled_id(self) -> Option<EventId> {
        match self {
            Fired::Spooled(id) => Some(id),
            _ => None,
        }
    }
}

/// Why [`fire`](crate::Dispatcher::fire) refused an event.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FireErrorKind {
    /// The queue holds `queue_capacity` events already.
    QueueFull,
    /// [`shutdown`](crate::Dispatcher::shutdown) has started: no new events are taken.
    ShuttingDown,
    /// [`fire_durable`](crate::Dispatcher::fire_durable): the spool refused the event because a
    /// bound is reached (`hooks.spool.max_bytes`, `hooks.spool.min_free_bytes`, disk full, or
    /// too many appends waiting for the writer). Nothing spooled was evicted; the event was not
    /// queued (hand it to [`fire`](crate::Dispatcher::fire) for memory-only delivery).
    SpoolFull,
    /// [`fire_durable`](crate::Dispatcher::fire_durable): the spool cannot take events (its
    /// store failed and could not be reopened, or it is closed), or the commit failed.
    SpoolUnavailable,
    /// [`fire_durable`](crate::Dispatcher::fire_durable) on a dispatcher without a spool.
    NoSpool,
}

impl FireErrorKind {
    /// A short lower-case name (`queue_full`, `shutting_down`), stable for logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            FireErrorKind::QueueFull => "queue_full",
            FireErrorKind::ShuttingDown => "shutting_down",
            FireErrorKind::SpoolFull => "spool_full",
            FireErrorKind::SpoolUnavailable => "spool_unavailable",
            FireErrorKind::NoSpool => "no_spool",
        }
    }
}

impl fmt::Display for FireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event [`fire`](crate::Dispatcher::fire) refused. The refusal is counted (and logged at
/// WARN, summarised at most once a second); the event is handed back in case the server wants
/// to do something else with it.
///
/// ```
/// # async fn demo(dispatcher: hooks::Dispatcher, event: hooks::DisconnectEvent) {
/// use hooks::FireErrorKind;
///
/// if let Err(err) = dispatcher.fire(event) {
///     assert!(matches!(err.kind(), FireErrorKind::QueueFull | FireErrorKind::ShuttingDown));
///     let _event = err.into_event(); // e.g. write it to a fallback log
/// }
/// # }
/// ```
pub struct FireError {
    kind: FireErrorKind,
    capacity: usize,
    event: DisconnectEvent,
    // Boxed so that `Result<Fired, FireError>` stays small on the `fire` path.
    #[allow(clippy::box_collection)]
    detail: Option<Box<String>>,
}

impl FireError {
    pub(crate) fn new(kind: FireErrorKind, capacity: usize, event: DisconnectEvent) -> Self {
        FireError {
            kind,
            capacity,
            event,
            detail: None,
        }
    }

    /// A refusal by the spool, with its message (which names the spool directory).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn spool(
        kind: FireErrorKind,
        capacity: usize,
        event: DisconnectEvent,
        detail: String,
    ) -> Self {
        FireError {
            kind,
            capacity,
            event,
            detail: Some(Box::new(detail)),
        }
    }

    /// Why the event was refused.
    pub fn kind(&self) -> FireErrorKind {
        self.kind
    }

    /// The refused event.
    pub fn event(&self) -> &DisconnectEvent {
        &self.event
    }

    /// The refused event, by value.
    pub fn into_event(self) -> DisconnectEvent {
        self.event
    }
}

impl fmt::Display for FireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FireErrorKind::QueueFull => write!(
                f,
                "post-disconnect hook queue is full ({} events waiting): {} event refused",
                self.capacity,
                self.event.protocol()
            ),
            FireErrorKind::ShuttingDown => write!(
                f,
                "post-disconnect hook dispatcher is shutting down: {} event refused",
                self.event.protocol()
            ),
            FireErrorKind::SpoolFull | FireErrorKind::SpoolUnavailable => write!(
                f,
                "post-disconnect hook event {} not made durable: {}",
                self.event.id(),
                self.detail
                    .as_deref()
                    .map_or("the spool refused it", String::as_str)
            ),
            FireErrorKind::NoSpool => write!(
                f,
                "post-disconnect hook event {} not made durable: no spool is configured (hooks.spool.dir)",
                self.event.id()
            ),
        }
    }
}

impl fmt::Debug for FireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FireError")
            .field("kind", &self.kind)
            .field("capacity", &self.capacity)
            .field("event", &self.event)
            .field("detail", &self.detail)
            .finish()
    }
}

impl std::error::Error for FireError {}
