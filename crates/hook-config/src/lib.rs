//! SFTPGo's post-disconnect hook configuration: the `common.post_disconnect_hook` key, the `http`
//! and `command` sections, and our `hooks` extension section, with SFTPGo's defaults and
//! validation, and (feature `load`) loading from `sftpgo.{json,yaml,yml,toml}` plus `SFTPGO_`
//! environment variables exactly as SFTPGo reads them.
//!
//! **Who should depend on this crate:** backends (`hook-exec`, `hook-http`) use the section types
//! with `default-features = false`; servers and tools use the loader, usually through the `hooks`
//! facade.
//!
//! ```
//! use hook_config::{HookConfig, HookTarget};
//!
//! let mut config = HookConfig::default();
//! assert_eq!(config.http.timeout, 20.0);
//! assert_eq!(config.command.timeout, 30);
//! config.common.post_disconnect_hook = "https://u:s3cret@hooks.example.com/disc".into();
//! let target = HookTarget::parse(&config.common.post_disconnect_hook).unwrap();
//! assert_eq!(target.to_string(), "https://u:xxxxx@hooks.example.com/disc");
//! ```
//!
//! Feature flags: `load` (default) adds the file and environment loader (depends on `config`).
//! MSRV: the workspace's `rust-version` (1.88).

#![forbid(unsafe_code)]

mod error;
mod redact;
mod target;
mod types;

pub use error::{ConfigError, ConfigErrorKind};
pub use redact::{REDACTED, redact_url};
pub use target::{HOOK_KEY, HookTarget, HookUrl};
pub use types::{
    CommandEntry, CommandSection, CommonSection, HookConfig, HooksSection, HttpClientsSection,
    HttpHeader, TlsKeyPair,
};
