//! SFTPGo's HTTP post-disconnect hook, byte-compatible on the wire: a `GET` of the hook URL with
//! SFTPGo's exact query, its retry schedule, configured headers and TLS options, over one pooled
//! rustls client shared by every event.
//!
//! **Who should depend on this crate:** a server that wants HTTP hooks only (it pulls in no
//! process-spawning code: `hook-exec` is not in its dependency tree), or anyone building on the
//! Go-compatible pieces ([`query`], [`retry`]). Servers that pick the backend from the
//! configuration usually depend on the `hooks` facade instead.
//!
//! A server using `HttpHook` alone:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Instant;
//! use hook_config::{HookConfig, HookTarget};
//! use hook_core::{DisconnectEvent, Hook, Protocol};
//! use hook_http::HttpHook;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = HookConfig::default();
//! config.common.post_disconnect_hook = "https://hooks.example.com/disconnect?token=t".into();
//! let HookTarget::Http(url) = HookTarget::parse(&config.common.post_disconnect_hook)? else {
//!     return Ok(()); // disabled, or a program: not this crate's job
//! };
//! // Built once: reads the CA/client-certificate files and creates the pooled client.
//! let hook: Arc<dyn Hook> = Arc::new(HttpHook::from_config(&url, &config.http, &config.hooks)?);
//!
//! // In the connection task, at disconnect:
//! let started = Instant::now(); // when the SFTP channel started
//! let peer = "192.168.1.5:2022".parse()?;
//! let event = DisconnectEvent::from_socket_addr(peer, Protocol::Sftp, "nicola", started);
//! let hook = hook.clone();
//! tokio::spawn(async move {
//!     // GET /disconnect?connection_duration=..&ip=192.168.1.5&protocol=SFTP&token=t&username=nicola
//!     match hook.on_disconnect(&event).await {
//!         Ok(delivery) => println!("delivered after {} attempt(s)", delivery.attempts()),
//!         Err(err) => eprintln!("{:?}: {err}", err.kind()), // also logged at WARN
//!     }
//! });
//! # Ok(()) }
//! ```
//!
//! # What is sent (spec 4.1-4.3)
//! * `GET`, no body. The target is Go's escaped path of the hook URL and the hook URL's query
//!   re-encoded as Go's `url.Values` does ([`query`]) with `ip`, `protocol`, `username` and
//!   `connection_duration` added: keys sorted, `+` for space, upper-case hex, malformed pairs
//!   dropped. The fragment is never sent.
//! * Headers: `User-Agent: Go-http-client/1.1` (changeable), `Accept-Encoding: gzip`, header names
//!   in Go's canonical case on HTTP/1.1; URL user-info as `Authorization: Basic ...` unless a
//!   matching configured header sets `Authorization`; every configured header whose `url` prefix
//!   matches at a boundary ([`header_url_matches`], D9), later entries winning.
//! * Redirects: same-origin ones are followed (at most ten requests, Go's `stopped after 10
//!   redirects`), with the headers and Go's `Referer` (the previous URL); a redirect to another origin is not followed and the event
//!   fails with [`ErrorKind::Redirect`](hook_core::ErrorKind::Redirect), so configured headers
//!   never reach another origin (D9).
//!
//! # Outcome
//! A 2xx final response is a [`Delivery`](hook_core::Delivery) with the status, the attempts and
//! the elapsed time. Anything else is a [`HookError`](hook_core::HookError), logged at WARN:
//! `HttpStatus` (with the status), `Transport`, `Tls` (certificate problems are not retried),
//! `Timeout` (the last attempt timed out), `Redirect`, or `DeadlineExceeded` (the event's overall
//! `hooks.delivery_deadline` passed, or the next retry would start after it). Retries follow
//! [`retry::RetryPolicy`]. URL passwords and header values never appear in logs, errors or
//! `Debug` output (D11).
//!
//! # Connections
//! One pooled client per hook, built once. Plain `http://` hooks that no proxy applies to use
//! hyper's client directly (the one reqwest wraps: reqwest parses every request URL twice more,
//! which was about a fifth of the work per event); `https://` and proxied hooks use reqwest.
//! Both: HTTP/1.1 keep-alive (HTTP/2 when a TLS server offers
//! it), `TCP_NODELAY`, up to `hooks.max_in_flight` idle connections. SFTPGo opens a new
//! connection per event (D5). The status decides an attempt: the body is drained afterwards,
//! without waiting (up to 64 KiB within 1 s, in the background), so the connection is reused; a
//! longer or slower body is dropped with its connection. A request that failed on a reused
//! connection the server had closed, before any response, is re-sent at once on a new connection
//! and not counted as a retry, as Go's transport does. Response heads are bounded by size (1 MiB;
//! hyper's buffer, about 408 KiB, on reqwest's HTTP/1.1 path) and up to 1,000 headers (hyper's
//! default is 100).
//! Proxies come from `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` by Go's rules (`host:port`, `.domain`,
//! `*`, IP and CIDR entries; `ALL_PROXY` is not read), and never for `localhost` or a loopback
//! address.
//!
//! # TLS (spec 4.6, D13, D14)
//! rustls with the `ring` provider, TLS 1.2 and 1.3. Trusted: the system's roots (none is fine),
//! plus every certificate of every `ca_certificates` file; a server certificate byte-identical to
//! one of those is trusted as the server's own even when it is a `CA:TRUE` self-signed
//! certificate, host name and validity still checked. `certificates`: mutual TLS, the pair chosen
//! per handshake from the CA names the server sends, as Go chooses (none when no pair fits).
//! `skip_tls_verify`: any certificate, any name.
//!
//! # Known differences from Go on the wire
//! Dot segments (`/a/../b`) in the hook path are resolved before sending (the `url` crate always
//! does); the `Host` header is lower-cased and omits a default port (`:80`, `:443`); for
//! `https://` and proxied hooks reqwest adds `Accept: */*`; a `Retry-After` date's zone
//! abbreviation is taken as UTC.
//!
//! Feature flags: none for users (`fuzzing` is not part of the API: it exposes private parsers
//! to the fuzz targets in `fuzz/`). MSRV: the workspace's `rust-version` (1.90).

#![forbid(unsafe_code)]

mod conn;
mod direct;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gourl;
mod headers;
mod hook;
mod proxy;
pub mod query;
pub mod retry;
mod template;

pub use headers::header_url_matches;
pub use hook::{GO_USER_AGENT, HttpHook, HttpHookBuilder};
