//! A post-disconnect hook backend for fleets: each event is published to a NATS JetStream stream
//! and the hook resolves when the stream acknowledged it; `hookctl relay` workers consume the
//! stream and run the program or HTTP hook SFTPGo would have run.
//!
//! **Who should depend on this crate:** servers that want `common.post_disconnect_hook =
//! "nats://..."` (usually through the `hooks` facade's `nats` feature), and tools that consume
//! the stream (the relay). It depends on `hook-core`, `hook-config`, `hook-tls` (the TLS
//! configuration `https://` hooks use too) and `async-nats` (JetStream, rustls on ring): never on
//! process or HTTP code.
//!
//! The message (documented in `docs/configuration.md`, golden-tested):
//!
//! * subject `<nats.subject_prefix>.<protocol in lower case>`, e.g.
//!   `sftpgo.hooks.disconnect.sftp`;
//! * headers `Nats-Msg-Id: <event id>` (the same on every retry: JetStream drops a duplicate
//!   within the stream's `duplicate_window`) and `Content-Type: application/json`;
//! * body a Standard-Webhooks-style envelope ([`encode_body`]).
//!
//! ```
//! use std::time::Duration;
//! use hook_core::{DisconnectEvent, Protocol};
//!
//! let event = DisconnectEvent::new("203.0.113.7", Protocol::Sftp, "alice", Duration::from_millis(1234));
//! let body = hook_nats::encode_body(&event);
//! let text = std::str::from_utf8(&body).unwrap();
//! assert!(text.starts_with(&format!("{{\"id\":\"{}\",\"type\":\"connection.disconnected\"", event.id())));
//! assert!(text.ends_with(r#""data":{"ip":"203.0.113.7","protocol":"SFTP","username":"alice","connection_duration":1234}}"#));
//! // The relay reads it back into the same event.
//! assert_eq!(hook_nats::decode_body(&body).unwrap(), event);
//! ```
//!
//! Delivery is at least once: a hook run by a relay may see an event twice (a relay killed
//! after its hook ran but before its ack reached the server). Hooks that must not double-count
//! deduplicate on the event id.
//!
//! Feature flags: `nkeys` (off) lets `nats.credentials_file` authenticate with a `.creds` file
//! (async-nats' `nkeys`, an ed25519 stack of its own). MSRV: the workspace's `rust-version`.

#![forbid(unsafe_code)]

mod connect;
mod consume;
mod hook;
mod message;
mod stream;

pub use consume::{RedeliverySchedule, RelayBatch, RelaySource};
pub use hook::NatsHook;
pub use message::{CONTENT_TYPE, DecodeError, EVENT_TYPE, decode_body, encode_body};

/// The async-nats JetStream message type the relay acks (re-exported so that users need not
/// depend on async-nats themselves).
pub use async_nats::jetstream::{AckKind, Message};
