//! A small but real SFTP server on `russh` + `russh-sftp` that fires SFTPGo-compatible
//! post-disconnect hooks: one event per SSH channel, however the channel ends.
//!
//! **Who should depend on this crate:** nobody; copy from it. It is the worked example of
//! wiring the `hooks` crate into a server whose SSH library has no disconnect callback, and the
//! server the end-to-end tests drive with OpenSSH's `sftp` and `ssh`. The binary
//! (`sftp-server`, `src/main.rs`) adds command-line arguments and signal handling; the library
//! is the server itself, so tests can run it in-process.
//!
//! The hook-relevant parts are small:
//!
//! * [`SftpServer::bind`] loads nothing itself: it takes the [`HookConfig`](hooks::HookConfig)
//!   the caller loaded (`hooks::Loader`: config file + `SFTPGO_` variables), builds the hook
//!   and starts a [`Dispatcher`](hooks::Dispatcher).
//! * A [`ChannelHook`] is started when a channel's `subsystem sftp` or `exec` request arrives
//!   (SFTPGo's start instants) and finished by whichever sees the channel's end first: the SFTP
//!   loop dropping its state, russh's `channel_close` callback, or the per-connection handler's
//!   `Drop` (a killed client or a dropped TCP connection). It fires exactly once.
//! * [`SftpServer::run`] stops on a future (the binary passes Ctrl-C/SIGTERM): it closes the
//!   listener, disconnects the clients, then drains the dispatcher with
//!   `hooks.shutdown_deadline` and returns the [`ShutdownReport`](hooks::ShutdownReport).
//!
//! ```no_run
//! use sftp_server_example::{Settings, SftpServer, load_authorized_keys};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = hooks::Loader::new().config_dir("/etc/sftpgo").load()?.config;
//! let mut settings = Settings::new("127.0.0.1:2022".parse()?, "/srv/sftp", "alice");
//! settings.authorized_keys = load_authorized_keys("/etc/sftp/alice.pub".as_ref())?;
//! let server = SftpServer::bind(settings, &config).await?;
//! println!("listening on {}", server.local_addr()?);
//! let ctrl_c = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! if let Some(report) = server.run(ctrl_c).await {
//!     println!("hooks: {} delivered, {} failed, {} abandoned", report.delivered, report.failed, report.abandoned);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What is served: one directory, as `/`, to one user, with public-key authentication
//! (Ed25519 and ECDSA keys; enable russh's `rsa` feature for RSA keys) and optionally a
//! password. Commands: a built-in `echo` (no shell is ever run), which fires an `SSH` event,
//! and legacy SCP (`scp -O`: `scp -t`/`scp -f` with `-p` and `-r`, run by the example's own
//! implementation of the protocol), which fires an `SCP` event; SFTPGo's rule decides which is
//! which (exactly `scp` with at least two arguments is `SCP`). Crypto: russh's `ring` backend
//! (no aws-lc, no OpenSSL).
//!
//! Metrics: [`install_metrics_exporter`] (the binary's `--metrics-address ADDR:PORT`) serves the
//! hooks' metrics (docs/metrics.md) at `/metrics` with `metrics-exporter-prometheus`.
//!
//! Feature flags: none. MSRV: the workspace's `rust-version` (1.90).

#![forbid(unsafe_code)]

mod channel_hook;
mod metrics;
mod scp;
mod server;
mod sftp;
mod ssh;

pub use channel_hook::ChannelHook;
pub use metrics::install_metrics_exporter;
pub use server::{Error, Settings, SftpServer, load_authorized_keys, load_host_key};
