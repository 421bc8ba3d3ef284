//! Helpers: load from a directory with an explicit environment map.

use std::path::{Path, PathBuf};

use hook_config::{ConfigError, LoadedConfig, Loader};

/// The directory holding the fixture files.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hook-config/fixtures")
}

/// Loads from `dir` (optional `file`) with exactly the variables `env`.
pub(crate) fn load_with(
    dir: &Path,
    file: Option<&str>,
    env: &[(&str, &str)],
) -> Result<LoadedConfig, ConfigError> {
    let mut loader = Loader::new().config_dir(dir).env_vars(env.iter().copied());
    if let Some(file) = file {
        loader = loader.config_file(file);
    }
    loader.load()
}

/// A temporary config dir holding `sftpgo.json` with `json`.
pub(crate) fn dir_with_json(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sftpgo.json"), json).unwrap();
    dir
}

/// Loads `json` as `sftpgo.json` with the variables `env`.
pub(crate) fn load_json(json: &str, env: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
    let dir = dir_with_json(json);
    load_with(dir.path(), None, env)
}

/// The error text of loading `json` with `env`.
pub(crate) fn load_err(json: &str, env: &[(&str, &str)]) -> ConfigError {
    match load_json(json, env) {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.config),
        Err(e) => e,
    }
}
