//! A small but real FTP server on `libunftp` that fires SFTPGo-compatible post-disconnect
//! hooks: one `FTP` event per control connection, however the connection ends.
//!
//! **Who should depend on this crate:** nobody; copy from it. It is the worked example of
//! wiring the `hooks` crate into a libunftp server, and the server the end-to-end tests drive
//! with `curl`, `lftp` and Python's `ftplib`. The binary (`ftp-server`, `src/main.rs`) adds
//! command-line arguments, signal handling and the `log`-to-`tracing` bridge; the library is
//! the server itself, so tests can run it in-process.
//!
//! libunftp's `PresenceListener` cannot produce SFTPGo's event on its own: it carries no IP
//! and no start instant, and sends no `LoggedOut` after a reset, an idle timeout, a TLS
//! failure or a handler error. So the example runs its **own accept loop** and drives **one
//! libunftp `Server` per connection** with `Server::service(stream)`, which returns however the
//! connection ended. Then it fires one event:
//!
//! * IP: the accepted socket's peer address;
//! * username: from the last successful login (libunftp's `LoggedIn`), else `""`;
//! * start: the instant of that login, else the accept (SFTPGo's rule, spec 1.3-1.4);
//! * protocol: `FTP`.
//!
//! ```no_run
//! use ftp_server_example::{FtpServer, Settings};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = hooks::Loader::new().config_dir("/etc/sftpgo").load()?.config;
//! let settings = Settings::new("127.0.0.1:2121".parse()?, "/srv/ftp", "alice", "secret");
//! let server = FtpServer::bind(settings, &config).await?;
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
//! What is served: one directory, as `/`, to one user with a password ([`DirStorage`], a
//! small backend over a local directory), in passive mode (PASV/EPSV; active mode is off, as
//! libunftp defaults), plain FTP (no FTPS configured), with libunftp's idle timeout.
//! Crypto, were FTPS configured: rustls on `ring` (no aws-lc, no OpenSSL).
//!
//! What one `Server` per connection gives up, compared with libunftp's `listen`: its shutdown
//! grace (replaced here: [`FtpServer::run`] cuts sessions itself), the PROXY protocol, pooled
//! passive ports, the connection helper, and a failed-logins cache shared across connections.
//!
//! Feature flags: none. MSRV: the workspace's `rust-version`.

#![forbid(unsafe_code)]

mod auth;
mod connection_hook;
mod server;
mod storage;

pub use server::{Error, FtpServer, Settings};
pub use storage::{DirStorage, Meta};
