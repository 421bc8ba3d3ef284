//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, see `docs/fuzzing.md`).
//!
//! **Not part of the API**: hidden from the documentation, no stability promise, never enable
//! the feature in a server. These functions only forward to the loader's private parsers so that
//! `cargo fuzz` can drive them without a file system; the configuration files themselves are
//! fuzzed through the public [`Loader`](crate::Loader).

use std::collections::BTreeMap;

use crate::{ConfigError, HookConfig};

/// The `env.d` dotenv parser: the variables `text` defines, with `$VAR` expanded from earlier
/// lines then `env`; on error, the 1-based line and the reason.
pub fn parse_dotenv(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, (usize, String)> {
    super::dotenv::parse(text, env)
}

/// The `SFTPGO_` overrides: applies every `SFTPGO_` variable of `env` to `config` (before
/// validation, as the loader does).
pub fn apply_sftpgo_env(
    config: &mut HookConfig,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    super::sftpgo_env::apply(config, env)
}

/// The largest `env.d` file the loader reads, in bytes.
pub const MAX_ENV_FILE_SIZE: u64 = super::dotenv::MAX_ENV_FILE_SIZE;

/// The most bytes of values one `env.d` file may define, after expansion.
pub const MAX_EXPANDED_SIZE: usize = super::dotenv::MAX_EXPANDED_SIZE;
