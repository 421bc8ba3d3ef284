//! What [`Dispatcher::fire`](crate::Dispatcher::fire) answers: [`Fired`] or [`FireError`].

use std::fmt;

use hook_core::DisconnectEvent;

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
}

impl Fired {
    /// Whether the event was queued for delivery.
    pub fn is_queued(self) -> bool {
        self == Fired::Queued
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
}

impl FireErrorKind {
    /// A short lower-case name (`queue_full`, `shutting_down`), stable for logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            FireErrorKind::QueueFull => "queue_full",
            FireErrorKind::ShuttingDown => "shutting_down",
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
}

impl FireError {
    pub(crate) fn new(kind: FireErrorKind, capacity: usize, event: DisconnectEvent) -> Self {
        FireError {
            kind,
            capacity,
            event,
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
        }
    }
}

impl fmt::Debug for FireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FireError")
            .field("kind", &self.kind)
            .field("capacity", &self.capacity)
            .field("event", &self.event)
            .finish()
    }
}

impl std::error::Error for FireError {}
