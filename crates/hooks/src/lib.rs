//! SFTPGo-compatible post-disconnect hooks for a Rust SFTP/SSH/FTP server: build the hook from
//! SFTPGo's configuration and hand every disconnect to a [`Dispatcher`] that never blocks the
//! connection's task, loses nothing silently and drains at shutdown.
//!
//! **Who should depend on this crate:** server authors. It re-exports everything a server needs
//! from `hook-core` (the event, [`Protocol`], the [`Hook`] trait, outcomes), `hook-config` (the
//! configuration types and, with `load`, the loader) and the two stock backends. Backend authors
//! depend on `hook-core` alone.
//!
//! The whole wiring is three lines: load the configuration, build the hook, start the dispatcher.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, Protocol};
//!
//! # #[cfg(feature = "load")]
//! # async fn server() -> Result<(), Box<dyn std::error::Error>> {
//! let config = hooks::Loader::new().config_dir("/etc/sftpgo").load()?.config;
//! let options = DispatcherOptions::from_config(&config.hooks)?;
//! let dispatcher = hooks::build_hook(&config)?.map(|hook| Dispatcher::new(hook, options));
//! // (None: `common.post_disconnect_hook` is empty, no hook configured.)
//!
//! // In each connection's task (or its Drop impl), at disconnect: returns at once.
//! # let (peer, started) = ("192.0.2.1:40000".parse()?, Instant::now());
//! if let Some(dispatcher) = &dispatcher {
//!     let _ = dispatcher.fire(DisconnectEvent::from_socket_addr(peer, Protocol::Sftp, "alice", started));
//! }
//!
//! // At shutdown: wait for queued and running hooks, cancel what is left at the deadline.
//! if let Some(dispatcher) = &dispatcher {
//!     let report = dispatcher.shutdown(Duration::from_secs_f64(config.hooks.shutdown_deadline)).await;
//!     eprintln!("hooks: {} delivered, {} failed, {} abandoned", report.delivered, report.failed, report.abandoned);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Feature flags (default: `exec`, `http`, `load`):
//!
//! * `exec`: program hooks (`common.post_disconnect_hook` = an absolute path), with `hook-exec`.
//! * `http`: HTTP(S) hooks (`common.post_disconnect_hook` = a URL), with `hook-http`.
//! * `nats` (not default): NATS JetStream hooks (`common.post_disconnect_hook` = `nats://` or
//!   `tls://` URLs), with `hook-nats`.
//! * `load`: the configuration loader (`sftpgo.{json,yaml,yml,toml}` and `SFTPGO_` variables).
//! * `metrics`: counters, gauges and histograms through the `metrics` facade ([`metrics`]
//!   module; nothing is recorded until the application installs a recorder).

//! * `spool`: durable delivery through an embedded event log (`hook-spool`), used when
//!   `hooks.spool.dir` is set: events survive crashes, `kill -9` and endpoint outages and are
//!   delivered at least once (deduplicate on [`EventId`]). Start the dispatcher with
//!   [`Dispatcher::try_new`] to get the error when the spool cannot be opened; see
//!   [`Dispatcher::fire_durable`] for callers that must know an event is on disk.
//!
//! Without `exec` or `http`, [`build_hook`] refuses a target of that kind with an error naming
//! `common.post_disconnect_hook`; the [`Dispatcher`] works with any [`Hook`] either way.
//!
//! MSRV: the workspace's `rust-version` (1.90).

#![forbid(unsafe_code)]

mod build;
mod dispatcher;
#[cfg(feature = "spool")]
mod durable;
mod fire;
pub mod metrics;
mod options;
mod start;
mod stats;

pub use build::{BuildError, BuildErrorKind, build_hook, build_hook_for_target, validate_config};
pub use dispatcher::Dispatcher;
pub use fire::{FireError, FireErrorKind, Fired};
pub use options::DispatcherOptions;
pub use start::StartError;
pub use stats::{DispatcherStats, ShutdownReport};

pub use hook_core::{
    Backend, CapturedOutput, Delivery, DisconnectEvent, DisconnectEventBuilder, ErrorKind, EventId,
    Field, Hook, HookError, HookStatus, ParseProtocolError, Protocol, Redelivery, SftpgoFields,
    async_trait, escape_control_chars, ip_from_remote_addr,
};

pub use hook_config::{
    CommandEntry, CommandSection, CommonSection, ConfigError, ConfigErrorKind, HOOK_KEY,
    HookConfig, HookTarget, HookUrl, HooksSection, HttpClientsSection, HttpHeader,
    MAX_DISPATCHER_LIMIT, NatsSection, NatsServers, SpoolSection, TlsKeyPair, redact_query,
    redact_url,
};

/// The durable event log (`hook-spool`), for tools that inspect a spool directly (`hookctl
/// spool ...`). Feature `spool`.
#[cfg(feature = "spool")]
pub use hook_spool as spool;

#[cfg(feature = "load")]
pub use hook_config::{DEFAULT_CONFIG_NAME, LoadedConfig, Loader, MAX_CONFIG_FILE_SIZE};

#[cfg(feature = "exec")]
pub use hook_exec::ExecHook;

#[cfg(feature = "http")]
pub use hook_http::HttpHook;

#[cfg(feature = "nats")]
pub use hook_nats::NatsHook;

/// The README's wiring example, compiled as a doctest so it cannot go stale.
#[cfg(all(doctest, feature = "load"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
