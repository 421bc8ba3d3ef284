//! The loader (feature `load`): a configuration file plus `SFTPGO_` environment variables, read
//! as SFTPGo reads them.

mod decode;
mod dotenv;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod sftpgo_env;
mod weak;
mod yaml_aliases;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use config::{FileFormat, Format};

use crate::{ConfigError, ConfigErrorKind, HookConfig};

/// The largest configuration file the loader reads, in bytes (8 MiB; SFTPGo's complete default
/// `sftpgo.json` is about 20 KiB). A bigger file is refused, naming it, before it is parsed.
pub const MAX_CONFIG_FILE_SIZE: u64 = 8 << 20;

/// The name SFTPGo looks for in the config dir, without extension.
pub const DEFAULT_CONFIG_NAME: &str = "sftpgo";

/// The extensions viper tries, in its order; only the first four are supported here.
const SEARCH_EXTENSIONS: [&str; 12] = [
    "json",
    "toml",
    "yaml",
    "yml",
    "properties",
    "props",
    "prop",
    "hcl",
    "tfvars",
    "dotenv",
    "env",
    "ini",
];

/// Loads a [`HookConfig`] from a configuration file and `SFTPGO_` environment variables.
///
/// The steps, as SFTPGo takes them:
///
/// 1. the environment: the map given with [`env_vars`](Loader::env_vars), or the process
///    environment read once when [`load`](Loader::load) runs;
/// 2. `<config dir>/env.d/`: every regular file, dotenv syntax, at most 1 MiB, merged into that
///    map without overriding a variable already set (the process environment is never modified);
/// 3. the file: [`config_file`](Loader::config_file) (relative to the config dir unless absolute;
///    format from its extension: `json`, `yaml`/`yml`, `toml`), or else the first of
///    `sftpgo.json`, `sftpgo.toml`, `sftpgo.yaml`, `sftpgo.yml` found in the config dir (viper's
///    order), or else the defaults. Sections other than `common`, `http`, `command` and `hooks`
///    are ignored; keys are case-insensitive; values are weakly typed (`"30"` for an integer).
///    The file must be a regular file of at most [`MAX_CONFIG_FILE_SIZE`] bytes, and a YAML file
///    must not alias excessively (go-yaml's rule against "billion laughs" documents: a few
///    hundred bytes that expand to billions of nodes); errors name the file;
/// 4. the `SFTPGO_` overrides of spec 5.2 and D12 (see `docs/configuration.md`);
/// 5. validation ([`HookConfig::validate`]), then relative certificate paths are made absolute
///    against the config dir.
///
/// `Debug` shows how many variables the loader was given, never their values.
#[derive(Clone, Default)]
pub struct Loader {
    config_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    env: Option<BTreeMap<String, String>>,
}

impl fmt::Debug for Loader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("config_dir", &self.config_dir)
            .field("config_file", &self.config_file)
            .field("env_vars", &self.env.as_ref().map(BTreeMap::len))
            .finish()
    }
}

/// A loaded and validated configuration, with where it came from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoadedConfig {
    /// The settings: validated, certificate paths absolute.
    pub config: HookConfig,
    /// The config dir, absolute.
    pub config_dir: PathBuf,
    /// The file read, absolute; `None` when none was given and none was found (defaults).
    pub config_file: Option<PathBuf>,
    /// The `env.d` files read, in the order they were merged.
    pub env_files: Vec<PathBuf>,
}

impl Loader {
    /// A loader for the current directory, no explicit file, and the process environment.
    pub fn new() -> Self {
        Loader::default()
    }

    /// The config dir (SFTPGo's `--config-dir`; default `.`).
    pub fn config_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// The configuration file (SFTPGo's `--config-file`), relative to the config dir unless
    /// absolute. An empty path means none.
    pub fn config_file(mut self, file: impl Into<PathBuf>) -> Self {
        let file = file.into();
        self.config_file = (!file.as_os_str().is_empty()).then_some(file);
        self
    }

    /// Uses these variables instead of the process environment.
    pub fn env_vars<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Reads, merges and validates; see the type's documentation for the steps.
    pub fn load(&self) -> Result<LoadedConfig, ConfigError> {
        let mut env = match &self.env {
            Some(env) => env.clone(),
            None => process_env()?,
        };
        let dir = self
            .config_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        let config_dir = std::path::absolute(&dir).map_err(|e| {
            ConfigError::new(
                ConfigErrorKind::Io,
                "",
                format!(
                    "{}: cannot make the config dir absolute: {e}",
                    dir.display()
                ),
            )
        })?;
        let env_files = dotenv::merge_env_dir(&config_dir.join("env.d"), &mut env)?;

        let config_file = match &self.config_file {
            Some(file) => Some(config_dir.join(file)),
            None => find_default_file(&config_dir)?,
        };
        let mut config = match &config_file {
            Some(file) => decode::decode(&read_file(file)?)?,
            None => HookConfig::default(),
        };
        sftpgo_env::apply(&mut config, &env)?;
        config.validate()?;
        config.resolve_paths(&config_dir);
        Ok(LoadedConfig {
            config,
            config_dir,
            config_file,
            env_files,
        })
    }
}

/// The process environment; a non-UTF-8 `SFTPGO_` variable is an error, other non-UTF-8
/// variables are skipped (they could only matter to `$VAR` expansion in env.d files).
fn process_env() -> Result<BTreeMap<String, String>, ConfigError> {
    let mut env = BTreeMap::new();
    for (k, v) in std::env::vars_os() {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => {
                env.insert(k, v);
            }
            (Ok(k), Err(_)) if k.starts_with(sftpgo_env::PREFIX) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::Parse,
                    k,
                    "value is not valid UTF-8",
                ));
            }
            _ => {}
        }
    }
    Ok(env)
}

/// The first `sftpgo.<ext>` regular file in `dir`, in viper's extension order. A file in a format
/// viper reads but we do not (`sftpgo.hcl`, ...) is an error rather than silently skipped.
fn find_default_file(dir: &Path) -> Result<Option<PathBuf>, ConfigError> {
    for ext in SEARCH_EXTENSIONS {
        let candidate = dir.join(format!("{DEFAULT_CONFIG_NAME}.{ext}"));
        if candidate.is_file() {
            format_of(&candidate)?;
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn format_of(file: &Path) -> Result<FileFormat, ConfigError> {
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "json" => Ok(FileFormat::Json),
        "yaml" | "yml" => Ok(FileFormat::Yaml),
        "toml" => Ok(FileFormat::Toml),
        _ => Err(ConfigError::invalid(
            "",
            format!(
                "{}: unsupported configuration format {:?}: expected a .json, .yaml, .yml or .toml file",
                file.display(),
                ext
            ),
        )),
    }
}

fn read_file(file: &Path) -> Result<config::Map<String, config::Value>, ConfigError> {
    let format = format_of(file)?;
    let uri = file.display().to_string();
    let text = read_bounded(file)?;
    if matches!(format, FileFormat::Yaml)
        && let Err(e) = yaml_aliases::check(&text)
    {
        return Err(ConfigError::new(
            ConfigErrorKind::Parse,
            "",
            format!(
                "{uri}: cannot parse the configuration file: document contains excessive \
                 aliasing ({} of {} nodes would come from alias expansion; refused as go-yaml \
                 refuses it)",
                e.aliased, e.decoded
            ),
        ));
    }
    format.parse(Some(&uri), &text).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::Parse,
            "",
            format!(
                "{uri}: cannot parse the configuration file: {}",
                without_snippets(&e.to_string())
            ),
        )
    })
}

/// The file's text: a regular file (a FIFO or a device would block or never end) of at most
/// [`MAX_CONFIG_FILE_SIZE`] bytes, read with that bound whatever its size claims.
fn read_bounded(file: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let io_error = |what: &str, e: std::io::Error| {
        ConfigError::new(
            ConfigErrorKind::Io,
            "",
            format!("{}: {what}: {e}", file.display()),
        )
        .with_source(e)
    };
    let refuse = |problem: String| {
        ConfigError::new(
            ConfigErrorKind::Io,
            "",
            format!("{}: {problem}", file.display()),
        )
    };
    let meta =
        std::fs::metadata(file).map_err(|e| io_error("cannot read the configuration file", e))?;
    if !meta.is_file() {
        return Err(refuse(
            "cannot read the configuration file: not a regular file".to_owned(),
        ));
    }
    let too_big = || {
        refuse(format!(
            "the configuration file is larger than {MAX_CONFIG_FILE_SIZE} bytes (8 MiB), the most \
             the loader reads"
        ))
    };
    if meta.len() > MAX_CONFIG_FILE_SIZE {
        return Err(too_big());
    }
    let opened =
        std::fs::File::open(file).map_err(|e| io_error("cannot read the configuration file", e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    opened
        .take(MAX_CONFIG_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("cannot read the configuration file", e))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_SIZE {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "cannot read the configuration file: not valid UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Parser messages without quoted source lines (TOML errors show the offending line, which could
/// hold a header value).
fn without_snippets(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| {
            let gutter = line
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            !line.is_empty() && !gutter.starts_with('|')
        })
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_snippets_are_dropped() {
        let err = FileFormat::Toml
            .parse(None, "[http]\nheaders = [{ key = \"A\", value = \"s3cret")
            .unwrap_err();
        let shown = without_snippets(&err.to_string());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("line 2"), "{shown}");
    }
}
