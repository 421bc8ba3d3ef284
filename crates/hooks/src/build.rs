//! [`build_hook`]: the configured backend as an `Arc<dyn Hook>`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use hook_config::{ConfigError, HOOK_KEY, HookConfig, HookTarget};
use hook_core::Hook;

/// What kind of problem a [`BuildError`] is.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildErrorKind {
    /// The configuration is invalid: the hook target, or a setting of its backend (a certificate
    /// that cannot be read, an out-of-range timeout, ...). [`BuildError::key`] names the key.
    Config,
    /// The target needs a backend this build of `hooks` leaves out: a program without the `exec`
    /// feature, a URL without the `http` feature, NATS servers without the `nats` feature.
    BackendDisabled,
}

/// Why [`build_hook`] could not build the hook. `Display` names the configuration key and never
/// shows a URL password or a header value.
pub struct BuildError {
    inner: Box<Inner>,
}

struct Inner {
    kind: BuildErrorKind,
    key: String,
    message: String,
    source: Option<ConfigError>,
}

impl BuildError {
    /// The kind of problem.
    pub fn kind(&self) -> BuildErrorKind {
        self.inner.kind
    }

    /// The configuration key at fault, e.g. `common.post_disconnect_hook` or
    /// `http.ca_certificates[0]` (empty for a whole-file problem).
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The configuration error behind a [`BuildErrorKind::Config`] error.
    pub fn config_error(&self) -> Option<&ConfigError> {
        self.inner.source.as_ref()
    }

    #[cfg_attr(
        all(feature = "exec", feature = "http", feature = "nats"),
        allow(dead_code)
    )]
    fn backend_disabled(key: &str, target: &HookTarget, backend: &str, feature: &str) -> Self {
        BuildError::new(
            BuildErrorKind::BackendDisabled,
            key,
            format!(
                "{key}: {target:?} needs the {backend} backend, but the `hooks` crate was built \
                 without its `{feature}` feature"
            ),
            None,
        )
    }

    fn new(
        kind: BuildErrorKind,
        key: impl Into<String>,
        message: String,
        source: Option<ConfigError>,
    ) -> Self {
        BuildError {
            inner: Box::new(Inner {
                kind,
                key: key.into(),
                message,
                source,
            }),
        }
    }
}

impl From<ConfigError> for BuildError {
    fn from(err: ConfigError) -> Self {
        BuildError::new(
            BuildErrorKind::Config,
            err.key().to_owned(),
            err.to_string(),
            Some(err),
        )
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildError")
            .field("kind", &self.inner.kind)
            .field("key", &self.inner.key)
            .field("message", &self.inner.message)
            .finish()
    }
}

impl StdError for BuildError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Builds the hook `common.post_disconnect_hook` names: `Ok(None)` when it is empty (disabled),
/// an `ExecHook` for an absolute program path (feature `exec`), an `HttpHook` for an
/// `http(s)://` URL (feature `http`), a `NatsHook` for `nats://`/`tls://` servers (feature
/// `nats`; it connects at the first event), with the `command`, `http` or `nats` section and
/// the `hooks` section.
///
/// First it runs [`validate_config`], the whole of a server's start-up validation, whatever the
/// target (a bad `http` section fails even with a program hook or none, as SFTPGo fails to
/// start; spec 5.1): this is what `hookctl check` and `hookctl fire` run too.
///
/// ```
/// let config = hooks::HookConfig::default(); // no hook configured
/// assert!(hooks::build_hook(&config).unwrap().is_none());
/// ```
pub fn build_hook(config: &HookConfig) -> Result<Option<Arc<dyn Hook>>, BuildError> {
    let target = HookTarget::parse(&config.common.post_disconnect_hook)?;
    validate_for_target(HOOK_KEY, &target, config)?;
    build_with_key(HOOK_KEY, &target, config)
}

/// The validation a server's start-up runs, in this order, the first error winning:
///
/// 1. `common.post_disconnect_hook` (D1), then the `http`, `command` and `hooks` sections
///    ([`HookConfig::validate`], what the loader already ran), including the dispatcher limits
///    [`DispatcherOptions::from_config`](crate::DispatcherOptions::from_config) enforces;
/// 2. the `http` section's TLS files, read and parsed (every `ca_certificates` entry, every
///    `certificates` pair: missing, empty, not PEM, a directory, a key that does not match),
///    **whatever the target**: SFTPGo loads the `http` section at start and refuses to start
///    when it is bad, even with a program hook or none (spec 5.1);
/// 3. a program target exists, is a regular file and is executable.
///
/// [`build_hook`] runs it before building anything, so a server's start-up (`Loader`, then
/// `DispatcherOptions::from_config`, then `build_hook`), `hookctl check` and `hookctl fire`
/// accept and refuse exactly the same configurations.
///
/// ```
/// let mut config = hooks::HookConfig::default(); // no hook configured
/// config.http.ca_certificates = vec!["/nonexistent/ca.pem".into()];
/// let err = hooks::validate_config(&config).unwrap_err();
/// assert_eq!(err.key(), "http.ca_certificates[0]");
/// ```
pub fn validate_config(config: &HookConfig) -> Result<(), BuildError> {
    let target = HookTarget::parse(&config.common.post_disconnect_hook)?;
    validate_for_target(HOOK_KEY, &target, config)
}

/// [`validate_config`] for a target given elsewhere (`key` names it, e.g. `--hook`):
/// `config`'s own `common.post_disconnect_hook` is not looked at.
fn validate_for_target(
    key: &str,
    target: &HookTarget,
    config: &HookConfig,
) -> Result<(), BuildError> {
    config.http.validate()?;
    config.command.validate()?;
    config.hooks.validate()?;
    crate::DispatcherOptions::from_config(&config.hooks)?;
    check_tls_files(config)?;
    if let HookTarget::Program(path) = target {
        check_program(key, path)?;
    }
    Ok(())
}

/// The largest TLS file read at start-up (a CA bundle is a few hundred KiB).
const MAX_TLS_FILE_SIZE: u64 = 16 << 20;

/// Every TLS file of the `http` section with its key and what it is.
fn tls_files(config: &HookConfig) -> Vec<(String, &'static str, &str)> {
    let http = &config.http;
    let mut files = Vec::new();
    for (i, path) in http.ca_certificates.iter().enumerate() {
        files.push((
            format!("http.ca_certificates[{i}]"),
            "CA certificate",
            path.as_str(),
        ));
    }
    for (i, pair) in http.certificates.iter().enumerate() {
        files.push((
            format!("http.certificates[{i}].cert"),
            "certificate",
            pair.cert.as_str(),
        ));
        files.push((
            format!("http.certificates[{i}].key"),
            "key",
            pair.key.as_str(),
        ));
    }
    files
}

/// Checks the `http` section's TLS files: first that each existing one is a regular file of a
/// sane size (a FIFO would block the start-up forever, a device never end), then, with the
/// `http` backend, reads and parses them exactly as an HTTP hook does, by building one (for a
/// fixed loopback URL no proxy applies to, with the configuration's TLS settings and nothing
/// else, so that only the files can fail); errors name `http.ca_certificates[i]` or
/// `http.certificates[i].cert`/`.key`.
fn check_tls_files(config: &HookConfig) -> Result<(), BuildError> {
    for (key, what, path) in tls_files(config) {
        let problem = match std::fs::metadata(path) {
            // A missing or unreadable file: reported by the backend's own loading below.
            Err(_) => None,
            Ok(m) if !m.is_file() => Some("not a regular file".to_owned()),
            Ok(m) if m.len() > MAX_TLS_FILE_SIZE => {
                Some(format!("larger than {MAX_TLS_FILE_SIZE} bytes"))
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            return Err(ConfigError::new(
                hook_config::ConfigErrorKind::Io,
                key,
                format!("unable to load {what} {path:?}: {problem}"),
            )
            .into());
        }
    }
    parse_tls_files(config)
}

#[cfg(feature = "http")]
fn parse_tls_files(config: &HookConfig) -> Result<(), BuildError> {
    if config.http.ca_certificates.is_empty() && config.http.certificates.is_empty() {
        return Ok(());
    }
    let mut http = config.http.clone();
    http.headers.clear();
    // (Only the files matter here; the hook itself warns about skip_tls_verify when built.)
    http.skip_tls_verify = false;
    let HookTarget::Http(url) = HookTarget::parse("http://127.0.0.1/")? else {
        return Ok(()); // (never: a loopback http URL is an HTTP target)
    };
    hook_http::HttpHook::from_config(&url, &http, &config.hooks)?;
    Ok(())
}

/// Without the `http` backend the files cannot be parsed as it would; each must at least be a
/// readable, non-empty file.
#[cfg(not(feature = "http"))]
fn parse_tls_files(config: &HookConfig) -> Result<(), BuildError> {
    for (key, what, path) in tls_files(config) {
        let problem = match std::fs::metadata(path) {
            Err(e) => Some(e.to_string()),
            Ok(m) if m.len() == 0 => Some("empty".to_owned()),
            Ok(_) => std::fs::File::open(path).err().map(|e| e.to_string()),
        };
        if let Some(problem) = problem {
            return Err(ConfigError::new(
                hook_config::ConfigErrorKind::Io,
                key,
                format!("unable to load {what} {path:?}: {problem}"),
            )
            .into());
        }
    }
    Ok(())
}

/// A program target must exist, be a regular file and be executable (by someone: whether this
/// process may run it is found when it runs).
fn check_program(key: &str, path: &std::path::Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let invalid =
        |kind, message: String| -> BuildError { ConfigError::new(kind, key, message).into() };
    let meta = std::fs::metadata(path).map_err(|e| {
        invalid(
            hook_config::ConfigErrorKind::Io,
            format!("program {shown:?}: {e}"),
        )
    })?;
    if !meta.is_file() {
        return Err(invalid(
            hook_config::ConfigErrorKind::Invalid,
            format!("program {shown:?} is not a regular file"),
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(invalid(
            hook_config::ConfigErrorKind::Invalid,
            format!("program {shown:?} is not executable"),
        ));
    }
    Ok(())
}

/// Like [`build_hook`], for a target given elsewhere (a command-line flag, code): the `command`,
/// `http` and `hooks` sections come from `config` and are validated as [`validate_config`]
/// does, its `common.post_disconnect_hook` is ignored. `key` names the target's origin in
/// errors (e.g. `--hook`).
pub fn build_hook_for_target(
    key: &str,
    target: &HookTarget,
    config: &HookConfig,
) -> Result<Option<Arc<dyn Hook>>, BuildError> {
    validate_for_target(key, target, config)?;
    build_with_key(key, target, config)
}

#[cfg_attr(not(all(feature = "exec", feature = "http")), allow(unused_variables))]
fn build_with_key(
    key: &str,
    target: &HookTarget,
    config: &HookConfig,
) -> Result<Option<Arc<dyn Hook>>, BuildError> {
    match target {
        HookTarget::Disabled => Ok(None),
        HookTarget::Program(path) => {
            #[cfg(feature = "exec")]
            {
                let hook =
                    hook_exec::ExecHook::from_config(path.clone(), &config.command, &config.hooks)?;
                Ok(Some(Arc::new(hook)))
            }
            #[cfg(not(feature = "exec"))]
            {
                let _ = path;
                Err(BuildError::backend_disabled(
                    key,
                    target,
                    "program (exec)",
                    "exec",
                ))
            }
        }
        HookTarget::Http(url) => {
            #[cfg(feature = "http")]
            {
                let hook = hook_http::HttpHook::from_config(url, &config.http, &config.hooks)?;
                Ok(Some(Arc::new(hook)))
            }
            #[cfg(not(feature = "http"))]
            {
                let _ = url;
                Err(BuildError::backend_disabled(key, target, "HTTP", "http"))
            }
        }
        HookTarget::Nats(servers) => {
            #[cfg(feature = "nats")]
            {
                let hook = hook_nats::NatsHook::from_config(servers, &config.nats, &config.hooks)?;
                Ok(Some(Arc::new(hook)))
            }
            #[cfg(not(feature = "nats"))]
            {
                let _ = servers;
                Err(BuildError::backend_disabled(key, target, "NATS", "nats"))
            }
        }
        // HookTarget is non_exhaustive; a new kind of target needs a new backend here.
        _ => Err(BuildError::new(
            BuildErrorKind::BackendDisabled,
            key,
            format!("{key}: {target:?} has no backend in this version of `hooks`"),
            None,
        )),
    }
}
