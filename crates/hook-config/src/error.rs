//! [`ConfigError`]: a configuration problem, naming the key and the value.

use std::error::Error as StdError;
use std::fmt;

/// What kind of problem a [`ConfigError`] is.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A value breaks a validation rule (range, format, unknown name, ...).
    Invalid,
    /// A value has the wrong type or cannot be decoded (`"abc"` for an integer).
    Parse,
    /// A file could not be found or read (configuration file, certificate, key).
    Io,
}

/// A configuration problem. `Display` is `<dotted key>: <problem>`, for example
/// `command.commands[1].env[0]: "FOO" has no '='`. Secrets (URL passwords, header values) never
/// appear in it.
#[derive(Debug)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    key: String,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl ConfigError {
    /// A problem with `key`, described by `message` (which must already be redacted).
    pub fn new(kind: ConfigErrorKind, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            kind,
            key: key.into(),
            message: message.into(),
            source: None,
        }
    }

    /// An [`ConfigErrorKind::Invalid`] problem.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::new(ConfigErrorKind::Invalid, key, message)
    }

    /// Records the underlying error (its text must not contain secrets).
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of problem.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The dotted key, e.g. `http.headers[2].value`; empty for a whole-file problem.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The problem, without the key.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
