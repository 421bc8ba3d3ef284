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
//! With the `load` feature, [`Loader`] reads a configuration as SFTPGo does: the file (here
//! `sftpgo.yaml`, found in the config dir), then `env.d` files, then `SFTPGO_` variables (passed
//! explicitly here; by default the process environment), then validation:
//!
//! ```
//! # #[cfg(feature = "load")] {
//! use hook_config::{HookTarget, Loader};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(
//!     dir.path().join("sftpgo.yaml"),
//!     "sftpd:\n  bindings: [{port: 2022}]\n\
//!      common:\n  post_disconnect_hook: /usr/local/bin/on-disconnect\n\
//!      command:\n  timeout: \"10\"\n  commands:\n    - path: /usr/local/bin/on-disconnect\n",
//! )
//! .unwrap();
//! let loaded = Loader::new()
//!     .config_dir(dir.path())
//!     .env_vars([
//!         ("SFTPGO_COMMAND__COMMANDS__0__ARGS", "--verbose, --json"),
//!         ("SFTPGO_HTTP__CA_CERTIFICATES", "ca.pem"),
//!     ])
//!     .load()
//!     .unwrap();
//! let config = &loaded.config;
//! assert!(matches!(config.target().unwrap(), HookTarget::Program(_)));
//! assert_eq!(config.command.timeout, 10);
//! assert_eq!(config.command.commands[0].args, ["--verbose", "--json"]);
//! assert_eq!(loaded.config_file, Some(loaded.config_dir.join("sftpgo.yaml")));
//! assert_eq!(config.http.ca_certificates, [loaded.config_dir.join("ca.pem").display().to_string()]);
//!
//! // Errors name the key and the value.
//! let err = Loader::new()
//!     .config_dir(dir.path())
//!     .env_vars([("SFTPGO_COMMAND__ENV", "FOO")])
//!     .load()
//!     .unwrap_err();
//! assert_eq!(err.to_string(), r#"command.env[0]: "FOO" has no '='"#);
//! # }
//! ```
//!
//! Every key, its default, its validation and its variable are listed in
//! `docs/configuration.md`.
//!
//! Feature flags: `load` (default) adds [`Loader`], the file and environment loader (depends on
//! `config`). Without it the crate has the types, validation and [`HookTarget`] only. `fuzzing` is
//! not part of the API: it exposes private parsers to the fuzz targets in `fuzz/`.
//!
//! MSRV: the workspace's `rust-version` (1.90).

#![forbid(unsafe_code)]

mod error;
#[cfg(feature = "load")]
mod load;
mod nats;
mod redact;
mod target;
mod types;
mod validate;

pub use error::{ConfigError, ConfigErrorKind};
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use load::fuzzing;
#[cfg(feature = "load")]
pub use load::{DEFAULT_CONFIG_NAME, LoadedConfig, Loader, MAX_CONFIG_FILE_SIZE};
pub use nats::NatsSection;
pub use redact::{REDACTED, redact_query, redact_url};
pub use target::{HOOK_KEY, HookTarget, HookUrl, NatsServers};
pub use types::{
    CommandEntry, CommandSection, CommonSection, HookConfig, HooksSection, HttpClientsSection,
    HttpHeader, SpoolSection, TlsKeyPair,
};
pub use validate::{COMMAND_HOOK_NAMES, COMMAND_TIMEOUT_RANGE, MAX_DISPATCHER_LIMIT};
