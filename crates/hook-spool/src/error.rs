//! [`SpoolError`]: why the spool refused or failed an operation.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What kind of failure a [`SpoolError`] is.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpoolErrorKind {
    /// Another process (or another [`Spool`](crate::Spool) in this one) holds the spool
    /// directory's lock. The message names the directory.
    Locked,
    /// An append was refused because a bound is reached: `max_bytes` (live data or file size),
    /// the free-space floor `min_free_bytes`, or the disk is full. Nothing already spooled is
    /// evicted; the caller delivers the event from memory instead (bypass).
    Full,
    /// An append was refused because `max_queued` appends are waiting for the writer.
    Busy,
    /// The spool was closed ([`Spool::close`](crate::Spool::close)) or dropped.
    Closed,
    /// The store failed and could not be reopened: the spool accepts nothing more. The caller
    /// bypasses it; a restart opens it again.
    Unavailable,
    /// The file was written by a newer version of this crate (its format version is unknown).
    UnsupportedVersion,
    /// The store file is damaged and [`SpoolOptions::set_aside_damaged`](crate::SpoolOptions)
    /// is off, so it was left as it is (the message names the file and the damage).
    Damaged,
    /// The options are invalid (the message names the option).
    InvalidOptions,
    /// An I/O error on the spool directory or its files (the message names the path).
    Io,
    /// The embedded store reported an error (the message says which).
    Storage,
}

impl SpoolErrorKind {
    /// A short lower-case name (`locked`, `full`, ...), stable for logs, metrics and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpoolErrorKind::Locked => "locked",
            SpoolErrorKind::Full => "full",
            SpoolErrorKind::Busy => "busy",
            SpoolErrorKind::Closed => "closed",
            SpoolErrorKind::Unavailable => "unavailable",
            SpoolErrorKind::UnsupportedVersion => "unsupported_version",
            SpoolErrorKind::Damaged => "damaged",
            SpoolErrorKind::InvalidOptions => "invalid_options",
            SpoolErrorKind::Io => "io",
            SpoolErrorKind::Storage => "storage",
        }
    }
}

impl fmt::Display for SpoolErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the spool refused or failed an operation.
///
/// Opaque: inspect it with [`kind`](SpoolError::kind), [`path`](SpoolError::path) and the
/// `is_*` helpers. It is `Clone` (the source is shared), so one commit failure can be handed to
/// every waiter of that commit.
///
/// ```
/// use hook_spool::{SpoolError, SpoolErrorKind};
///
/// let err = SpoolError::new(SpoolErrorKind::Full, "spool is full (max_bytes 65536)");
/// assert!(err.is_full());
/// assert_eq!(err.kind().as_str(), "full");
/// assert_eq!(err.to_string(), "spool is full (max_bytes 65536)");
/// ```
#[derive(Clone)]
pub struct SpoolError {
    kind: SpoolErrorKind,
    message: String,
    path: Option<PathBuf>,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl SpoolError {
    /// An error of `kind` with `message`.
    pub fn new(kind: SpoolErrorKind, message: impl Into<String>) -> SpoolError {
        SpoolError {
            kind,
            message: message.into(),
            path: None,
            source: None,
        }
    }

    /// The same error, about `path` (the message should already name it).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> SpoolError {
        self.path = Some(path.into());
        self
    }

    /// The same error, caused by `source`.
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> SpoolError {
        self.source = Some(Arc::new(source));
        self
    }

    /// An I/O error about `path`: "`what` `path`: `err`".
    pub(crate) fn io(what: &str, path: &Path, err: io::Error) -> SpoolError {
        SpoolError::new(
            SpoolErrorKind::Io,
            format!("{what} {}: {err}", path.display()),
        )
        .with_path(path)
        .with_source(err)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> SpoolErrorKind {
        self.kind
    }

    /// The directory or file the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether a bound refused an append ([`SpoolErrorKind::Full`]).
    pub fn is_full(&self) -> bool {
        self.kind == SpoolErrorKind::Full
    }

    /// Whether the spool directory is locked by another process ([`SpoolErrorKind::Locked`]).
    pub fn is_locked(&self) -> bool {
        self.kind == SpoolErrorKind::Locked
    }

    /// Whether the spool can accept nothing more ([`SpoolErrorKind::Closed`] or
    /// [`SpoolErrorKind::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.kind,
            SpoolErrorKind::Closed | SpoolErrorKind::Unavailable
        )
    }
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SpoolError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(path) = &self.path {
            d.field("path", path);
        }
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for SpoolError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
