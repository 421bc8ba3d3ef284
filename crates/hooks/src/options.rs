//! [`DispatcherOptions`]: the queue, the in-flight limit, the protocol filter and the outcome
//! callback of a [`Dispatcher`](crate::Dispatcher).

use std::fmt;
use std::sync::Arc;

use hook_config::{ConfigError, HooksSection, SpoolSection};
use hook_core::{Delivery, DisconnectEvent, HookError, Protocol};

/// The largest queue capacity and in-flight limit a dispatcher can hold: tokio's semaphores (the
/// queue's and the slots') refuse more permits than `usize::MAX >> 3`.
pub(crate) const MAX_LIMIT: usize = hook_config::MAX_DISPATCHER_LIMIT;

/// The callback a [`Dispatcher`](crate::Dispatcher) calls once per accepted event with its
/// outcome. See [`DispatcherOptions::with_on_outcome`].
pub(crate) type OutcomeCallback =
    Arc<dyn Fn(&DisconnectEvent, &Result<Delivery, HookError>) + Send + Sync + 'static>;

/// How a [`Dispatcher`](crate::Dispatcher) queues and runs events.
///
/// The defaults are those of the `hooks` configuration section ([`HooksSection`]): a queue of
/// 10,000 events, 150 hooks in flight (SFTPGo's slots), and SFTPGo's protocol filter (`SFTP`,
/// `SCP`, `SSH`, `FTP`; spec 1.2 and Part A D15).
///
/// ```
/// use hooks::{DispatcherOptions, Protocol};
///
/// // From the loaded configuration (`hooks.queue_capacity`, `hooks.max_in_flight`, `hooks.protocols`):
/// let options = DispatcherOptions::from_config(&hooks::HooksSection::default()).unwrap();
/// assert_eq!(options.queue_capacity(), 10_000);
/// assert_eq!(options.max_in_flight(), 150);
/// assert!(options.fires(Protocol::Ftp) && !options.fires(Protocol::Dav));
///
/// // In code, widening the filter to every protocol and observing each outcome:
/// let options = DispatcherOptions::default()
///     .with_queue_capacity(1_000)
///     .with_max_in_flight(16)
///     .with_all_protocols()
///     .with_on_outcome(|event, outcome| {
///         if let Err(err) = outcome {
///             eprintln!("hook for {} failed: {err}", event.ip());
///         }
///     });
/// assert!(options.fires(Protocol::Dav));
/// ```
#[derive(Clone)]
pub struct DispatcherOptions {
    queue_capacity: usize,
    max_in_flight: usize,
    protocols: Vec<Protocol>,
    on_outcome: Option<OutcomeCallback>,
    spool: Option<SpoolSection>,
    paused: bool,
}

impl Default for DispatcherOptions {
    /// Queue 10,000, in flight 150, protocols `SFTP`, `SCP`, `SSH`, `FTP`, no callback: the same
    /// as [`from_config`](DispatcherOptions::from_config) of a default [`HooksSection`].
    fn default() -> Self {
        DispatcherOptions {
            queue_capacity: 10_000,
            max_in_flight: 150,
            protocols: Protocol::FIRES_BY_DEFAULT.to_vec(),
            on_outcome: None,
            spool: None,
            paused: false,
        }
    }
}

impl DispatcherOptions {
    /// Options read from the `hooks` section: `queue_capacity`, `max_in_flight`, `protocols`,
    /// and the `hooks.spool` section when `hooks.spool.dir` is set (see
    /// [`with_spool`](DispatcherOptions::with_spool)).
    ///
    /// The whole section is checked by [`HooksSection::validate`], the rule the loader applies:
    /// errors name the key: `hooks.queue_capacity` or `hooks.max_in_flight` when zero or above
    /// [`MAX_DISPATCHER_LIMIT`](hook_config::MAX_DISPATCHER_LIMIT) (`usize::MAX >> 3`, the most a
    /// tokio queue or semaphore can hold), `hooks.protocols[i]` when an entry is not one of
    /// `SFTP`, `SCP`, `SSH`, `FTP`, `DAV`, `HTTP`, `OIDC` (exact, case-sensitive, as SFTPGo
    /// compares them), `hooks.protocols` when the list is empty, and the durations.
    pub fn from_config(hooks: &HooksSection) -> Result<Self, ConfigError> {
        // The section's own rules, the ones the loader applies: a limit the loader accepts is
        // one a dispatcher can hold, and the other way round.
        hooks.validate()?;
        let mut protocols = Vec::with_capacity(hooks.protocols.len());
        for protocol in hooks.parsed_protocols()? {
            if !protocols.contains(&protocol) {
                protocols.push(protocol);
            }
        }
        hooks.spool.validate()?;
        Ok(DispatcherOptions {
            queue_capacity: hooks.queue_capacity,
            max_in_flight: hooks.max_in_flight,
            protocols,
            on_outcome: None,
            spool: hooks.spool.enabled().then(|| hooks.spool.clone()),
            paused: false,
        })
    }

    /// Puts a durable event log (spool) behind the dispatcher: `hooks.spool.dir` and its bounds
    /// and redelivery schedule (a relative `dir` is relative to the current directory here; the
    /// loader makes it absolute against the config dir). A section whose `dir` is empty removes
    /// the spool. Start the dispatcher with [`Dispatcher::try_new`](crate::Dispatcher::try_new)
    /// to get the error when the spool cannot be opened (for example, locked by another
    /// process). Needs the `spool` feature; without it [`Dispatcher::try_new`](crate::Dispatcher::try_new)
    /// refuses such options.
    pub fn with_spool(mut self, spool: SpoolSection) -> Self {
        self.spool = spool.enabled().then_some(spool);
        self
    }

    /// Starts the dispatcher with delivery paused: events are accepted (and spooled) but no hook
    /// runs until [`Dispatcher::resume`](crate::Dispatcher::resume). For tools that must make
    /// a batch durable before delivering it.
    pub fn with_paused_start(mut self) -> Self {
        self.paused = true;
        self
    }

    pub(crate) fn without_spool(mut self) -> Self {
        self.spool = None;
        self
    }

    /// The spool section, when a spool is configured.
    pub fn spool(&self) -> Option<&SpoolSection> {
        self.spool.as_ref()
    }

    /// Whether delivery starts paused.
    pub fn starts_paused(&self) -> bool {
        self.paused
    }

    /// Sets how many accepted events may wait for a free slot; when that many wait,
    /// [`fire`](crate::Dispatcher::fire) refuses with [`FireErrorKind::QueueFull`](crate::FireErrorKind::QueueFull).
    ///
    /// A capacity above `usize::MAX >> 3` (the most a tokio queue can hold) is capped to it.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "the dispatcher's queue capacity must be at least 1"
        );
        self.queue_capacity = capacity.min(MAX_LIMIT);
        self
    }

    /// Sets how many hooks run at once. A hook holds its slot for its whole
    /// [`on_disconnect`](hook_core::Hook::on_disconnect) call, retries and backoff waits included.
    ///
    /// A limit above `usize::MAX >> 3` (the most a tokio semaphore can hold) is capped to it.
    ///
    /// # Panics
    ///
    /// If `max` is 0.
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        assert!(
            max > 0,
            "the dispatcher's in-flight limit must be at least 1"
        );
        self.max_in_flight = max.min(MAX_LIMIT);
        self
    }

    /// Sets the protocols whose events are delivered; events of other protocols are
    /// [filtered](crate::Fired::Filtered) (counted, not delivered).
    pub fn with_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols.clear();
        for protocol in protocols {
            if !self.protocols.contains(&protocol) {
                self.protocols.push(protocol);
            }
        }
        self
    }

    /// Delivers the events of every protocol, `DAV`, `HTTP` and `OIDC` included.
    pub fn with_all_protocols(self) -> Self {
        self.with_protocols(Protocol::ALL)
    }

    /// Sets the callback called once for every accepted event, with its outcome: the
    /// [`Delivery`], the hook's [`HookError`], or an error of kind
    /// [`Cancelled`](hook_core::ErrorKind::Cancelled) when the event was abandoned (shutdown
    /// deadline passed, or the dispatcher was dropped) before or while its hook ran.
    ///
    /// It runs on the hook's task right after the hook returns (before the counters move), so it
    /// must be quick and must not block: to process outcomes asynchronously, send them into a
    /// channel from here (for example a tokio `mpsc::UnboundedSender`). A panic in the callback
    /// is caught and logged; it changes nothing else.
    pub fn with_on_outcome<F>(mut self, callback: F) -> Self
    where
        F: Fn(&DisconnectEvent, &Result<Delivery, HookError>) + Send + Sync + 'static,
    {
        self.on_outcome = Some(Arc::new(callback));
        self
    }

    /// The queue capacity.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// The in-flight limit.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The protocols whose events are delivered.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// Whether events of `protocol` are delivered.
    pub fn fires(&self, protocol: Protocol) -> bool {
        self.protocols.contains(&protocol)
    }

    pub(crate) fn take_on_outcome(&mut self) -> Option<OutcomeCallback> {
        self.on_outcome.take()
    }
}

impl fmt::Debug for DispatcherOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherOptions")
            .field("queue_capacity", &self.queue_capacity)
            .field("max_in_flight", &self.max_in_flight)
            .field("protocols", &self.protocols)
            .field("on_outcome", &self.on_outcome.as_ref().map(|_| "Fn(..)"))
            .field("spool", &self.spool)
            .field("paused", &self.paused)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_default_section() {
        let from = DispatcherOptions::from_config(&HooksSection::default()).unwrap();
        let def = DispatcherOptions::default();
        assert_eq!(from.queue_capacity(), def.queue_capacity());
        assert_eq!(from.max_in_flight(), def.max_in_flight());
        assert_eq!(from.protocols(), def.protocols());
        assert_eq!(def.protocols(), Protocol::FIRES_BY_DEFAULT);
    }

    #[test]
    fn from_config_errors_name_the_key() {
        let mut section = HooksSection::default();
        section.protocols = vec!["SFTP".into(), "sftp".into()];
        let err = DispatcherOptions::from_config(&section).unwrap_err();
        assert_eq!(err.key(), "hooks.protocols[1]");
        assert!(err.to_string().contains("\"sftp\""), "{err}");

        let mut section = HooksSection::default();
        section.queue_capacity = 0;
        assert_eq!(
            DispatcherOptions::from_config(&section).unwrap_err().key(),
            "hooks.queue_capacity"
        );
        let mut section = HooksSection::default();
        section.max_in_flight = 0;
        assert_eq!(
            DispatcherOptions::from_config(&section).unwrap_err().key(),
            "hooks.max_in_flight"
        );
    }

    #[test]
    fn from_config_widens_and_dedups() {
        let mut section = HooksSection::default();
        section.protocols = vec!["DAV".into(), "SFTP".into(), "DAV".into()];
        section.queue_capacity = 7;
        section.max_in_flight = 3;
        let opts = DispatcherOptions::from_config(&section).unwrap();
        assert_eq!(opts.protocols(), [Protocol::Dav, Protocol::Sftp]);
        assert_eq!((opts.queue_capacity(), opts.max_in_flight()), (7, 3));
        assert!(!opts.fires(Protocol::Ftp));
    }

    #[test]
    fn builder_setters() {
        let opts = DispatcherOptions::default().with_all_protocols();
        assert_eq!(opts.protocols(), Protocol::ALL);
        let opts = opts
            .with_protocols([Protocol::Oidc])
            .with_on_outcome(|_, _| {});
        assert_eq!(opts.protocols(), [Protocol::Oidc]);
        assert!(format!("{opts:?}").contains("Fn(..)"));
    }

    #[test]
    fn from_config_rejects_limits_beyond_what_a_dispatcher_can_hold() {
        let mut section = HooksSection::default();
        section.queue_capacity = usize::MAX;
        let err = DispatcherOptions::from_config(&section).unwrap_err();
        assert_eq!(err.key(), "hooks.queue_capacity");
        assert!(err.to_string().contains("at most"), "{err}");
        let mut section = HooksSection::default();
        section.max_in_flight = usize::MAX;
        let err = DispatcherOptions::from_config(&section).unwrap_err();
        assert_eq!(err.key(), "hooks.max_in_flight");
        let mut section = HooksSection::default();
        (section.queue_capacity, section.max_in_flight) = (MAX_LIMIT, MAX_LIMIT);
        let opts = DispatcherOptions::from_config(&section).unwrap();
        assert_eq!(
            (opts.queue_capacity(), opts.max_in_flight()),
            (MAX_LIMIT, MAX_LIMIT)
        );
    }

    #[test]
    fn builder_limits_are_capped() {
        let opts = DispatcherOptions::default()
            .with_queue_capacity(usize::MAX)
            .with_max_in_flight(usize::MAX);
        assert_eq!(
            (opts.queue_capacity(), opts.max_in_flight()),
            (MAX_LIMIT, MAX_LIMIT)
        );
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn zero_queue_panics() {
        let _ = DispatcherOptions::default().with_queue_capacity(0);
    }
}
