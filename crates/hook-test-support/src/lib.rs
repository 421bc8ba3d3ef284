//! Test fixtures for the hook crates: a recording loopback HTTP(S) server, a throw-away rcgen
//! PKI, executable script fixtures and ready-made disconnect events.
//!
//! **Who should depend on this crate:** the workspace's own tests only (`[dev-dependencies]`
//! of `hook-http`, `hook-exec`, `hooks`, `hook-cli` and the end-to-end tests). It is not
//! published.
//!
//! ```no_run
//! use std::time::Duration;
//! use hook_test_support::{Pki, Response, TestServer, sample_event};
//!
//! # async fn demo() {
//! // Plain HTTP: answer 500, 500, then 200 (the default) to everything after.
//! let server = TestServer::builder()
//!     .respond_seq([Response::status(500), Response::status(500).header("Retry-After", "1")])
//!     .start()
//!     .await;
//! let url = server.url("/hook"); // "http://127.0.0.1:<port>/hook"
//! // ... point the hook at `url` and fire `sample_event()` ...
//! # let _ = (url, sample_event());
//! let requests = server.wait_for_requests(3, Duration::from_secs(10)).await;
//! assert_eq!(requests[0].path(), "/hook");
//! assert_eq!(requests[0].query_param("username").as_deref(), Some("nicola"));
//! assert_eq!(server.accepted_connections(), 1); // keep-alive reused the connection
//!
//! // HTTPS with a CA-issued certificate; mutual TLS with `pki.mtls_server_tls()`.
//! let pki = Pki::new();
//! let tls_server = TestServer::builder().tls(pki.server_tls()).start().await;
//! let ca_file = pki.ca().cert_path(); // trust this in the client
//! # let _ = (tls_server, ca_file);
//! # }
//! ```
//!
//! The pieces:
//! * [`TestServer`]: records every request ([`RecordedRequest`]: method, exact target,
//!   headers, arrival instant, connection id, client certificate CN) and answers from a script
//!   of [`Response`]s (status, headers, delay, or closing without answering). Waits:
//!   [`TestServer::wait_for_requests`]. Connection-refused targets: [`RefusedPort`],
//!   [`free_port`].
//! * [`MisbehavingServer`]: endpoints that [misbehave](Misbehaviour) as real ones do: close
//!   every connection after its response without `Connection: close`, close idle connections
//!   after 0-1 ms, trickle or never end a body; plain or over TLS (with `close_notify`).
//! * [`Pki`]: CA, server certificate for `127.0.0.1`/`::1`/`localhost`, a self-signed
//!   `CA:TRUE` server certificate, client CA and client certificates, as PEM files; and the
//!   [`ServerTls`] configurations built from them. [`client_config`] for rustls clients.
//! * [`write_script`], [`write_file_safely`], [`record_script_body`], [`read_records`]: scripts
//!   for exec tests.
//! * [`Prometheus`]: Debian's real `prometheus` on a free loopback port, 1 s scrapes, queried
//!   through its HTTP API, stopped by PID; [`http_get`] to scrape an exporter.
//! * [`ServerThread`]: an example server under test on a runtime of its own, stopped as its
//!   binary stops on SIGTERM.

//! * [`NatsServer`], [`NatsCluster`]: Debian's real `nats-server` with JetStream, one node or
//!   a 3-node loopback cluster, each with a temporary store, stopped by PID.
//! * [`sample_event`] and friends: [`hook_core::DisconnectEvent`] values.
//! * [`cargo_tree`]: the workspace's dependency graph, for the tests that hold its promises
//!   (no russh, libunftp, HTTP or process code where a crate must not have it; no aws-lc).
//!
//! Feature flags: none. MSRV: the workspace's `rust-version` (1.90). Unix only.

#![forbid(unsafe_code)]

mod events;
mod misbehaving;

mod nats;
mod pki;
mod prometheus;
mod scripts;
mod server;
mod thread_server;
mod tls;
mod tree;

pub use events::{
    anonymous_ftp_event, event, numbered_events, one_event_per_protocol, sample_event, tricky_event,
};
pub use misbehaving::{MisbehavingServer, Misbehaviour};

pub use nats::{NatsCluster, NatsServer, NatsTls, nats_server_bin};
pub use pki::{Ca, Identity, Pki, SERVER_NAMES};
pub use prometheus::{PROMETHEUS_WAIT, Prometheus, http_get};
pub use scripts::{
    ScriptRecord, read_records, record_script_body, sh_quote, wait_for_records, write_file_safely,
    write_script,
};
pub use server::{
    RecordedRequest, RefusedPort, Response, TestServer, TestServerBuilder, WaitTimedOut, free_port,
};
pub use thread_server::{Bound, SERVER_START_WAIT, ServerThread, StopSignal};
pub use tls::{ServerTls, client_config};
pub use tree::cargo_tree;
