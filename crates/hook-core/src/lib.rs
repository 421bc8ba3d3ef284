//! The vocabulary of SFTPGo-compatible post-disconnect hooks: the event, the protocol, the
//! object-safe [`Hook`] trait, and typed outcomes ([`Delivery`], [`HookError`]).
//!
//! **Who should depend on this crate:** anyone writing a hook backend of their own (a message
//! queue, a database) and anyone who only needs the types. It depends on `async-trait` alone: no
//! runtime, no HTTP, no serde. Servers usually depend on the `hooks` facade instead, which
//! re-exports everything here; the `hook-exec` and `hook-http` crates are the two stock backends.
//!
//! ```
//! use std::time::Duration;
//! use hook_core::{DisconnectEvent, Field, Protocol};
//!
//! // At disconnect, the server builds the event (the duration is fixed now).
//! let event = DisconnectEvent::from_remote_addr(
//!     "[2001:db8::1]:50000", Protocol::Scp, "john", Duration::from_millis(1234));
//!
//! // Both backends project it the same way: SFTPGo's four values.
//! let fields = event.sftpgo_fields();
//! assert_eq!(fields.get(Field::Ip), "2001:db8::1");
//! assert_eq!(fields.get(Field::Duration), "1234");
//! assert_eq!(Field::Ip.env_var(), "SFTPGO_CONNECTION_IP");
//! assert_eq!(Field::Duration.query_key(), "connection_duration");
//! ```
//!
//! Feature flags: none. MSRV: the workspace's `rust-version` (1.90).

#![forbid(unsafe_code)]

pub mod civil;
mod error;
mod escape;
mod event;
mod fields;
mod hook;
mod id;
mod outcome;
mod protocol;

pub use async_trait::async_trait;
pub use error::{ErrorKind, HookError, Redelivery, is_transient_http_status};
pub use escape::escape_control_chars;
pub use event::{DisconnectEvent, DisconnectEventBuilder, ip_from_remote_addr};
pub use fields::{Field, SftpgoFields};
pub use hook::Hook;
pub use id::{EventId, ParseEventIdError};
pub use outcome::{Backend, CapturedOutput, Delivery, HookStatus};
pub use protocol::{ParseProtocolError, Protocol};
