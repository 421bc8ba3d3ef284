//! The rustls client configuration every hook backend that speaks TLS builds from its section's
//! `ca_certificates`, `certificates` and `skip_tls_verify` keys, with SFTPGo's (Go's) semantics.
//!
//! **Who should depend on this crate:** the backends (`hook-http` for `https://` endpoints,
//! `hook-nats` for `tls://` servers); a server author uses them, not this. It depends on
//! `hook-config` (for [`ConfigError`](hook_config::ConfigError)) and rustls on ring: no HTTP,
//! no NATS, no process code.
//!
//! What [`client_config`] builds:
//!
//! * TLS 1.3 and 1.2 (ring); trust anchors: the system's roots (read once per process) plus every
//!   certificate of every configured CA file;
//! * verification as Go's `crypto/tls`: webpki, and also a server certificate byte-identical to a
//!   configured CA certificate (Go accepts a leaf that is itself in the root pool, which webpki
//!   refuses for a `CA:TRUE` certificate), its host name and validity period still checked; no
//!   trust anchor at all fails every handshake with "unknown issuer"; `skip_tls_verify` accepts
//!   any certificate and name (the handshake signature is always checked);
//! * mutual TLS as Go's `tls.Config.Certificates`: per handshake, the first pair whose key can
//!   sign with a scheme the server accepts and, when the server names acceptable CAs, whose chain
//!   was issued by one of them;
//! * every file read at build time: a missing, unreadable or invalid file is a
//!   [`ConfigError`](hook_config::ConfigError) naming its key and path (Go's
//!   `IsFileInputValid` too: `""`, `.` and `..` are not files).
//!
//! ```
//! use hook_tls::{TlsSources, client_config};
//!
//! // No CA file, no client pair: the system roots only.
//! let config = client_config(&TlsSources { section: "nats".into(), ..TlsSources::default() })?;
//! assert!(config.alpn_protocols.is_empty()); // the caller sets its own protocols
//!
//! // A CA file that is not there: the error names the key and the path.
//! let err = client_config(&TlsSources {
//!     section: "http".into(),
//!     ca_files: vec![("http.ca_certificates[0]".into(), "/nonexistent/ca.pem".into())],
//!     ..TlsSources::default()
//! })
//! .unwrap_err();
//! assert_eq!(err.key(), "http.ca_certificates[0]");
//! assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
//! # Ok::<(), hook_config::ConfigError>(())
//! ```
//!
//! Feature flags: none. MSRV: the workspace's `rust-version` (1.90).

#![forbid(unsafe_code)]

mod config;
mod der;

pub use config::{KeyPairSource, TlsSources, client_config, is_file_input_valid};
