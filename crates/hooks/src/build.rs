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
/// ```
/// let config = hooks::HookConfig::default(); // no hook configured
/// assert!(hooks::build_hook(&config).unwrap().is_none());
/// ```
pub fn build_hook(config: &HookConfig) -> Result<Option<Arc<dyn Hook>>, BuildError> {
    let target = HookTarget::parse(&config.common.post_disconnect_hook)?;
    build_with_key(HOOK_KEY, &target, config)
}

/// Like [`build_hook`], for a target given elsewhere (a command-line flag, code): the `command`,
/// `http` and `hooks` sections come from `config`, its `common.post_disconnect_hook` is ignored.
/// `key` names the target's origin in errors (e.g. `--hook`).
pub fn build_hook_for_target(
    key: &str,
    target: &HookTarget,
    config: &HookConfig,
) -> Result<Option<Arc<dyn Hook>>, BuildError> {
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
