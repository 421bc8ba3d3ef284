//! [`StartError`]: why [`Dispatcher::try_new`](crate::Dispatcher::try_new) could not start.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a dispatcher with a spool could not start: the spool could not be opened (locked by
/// another process, an unusable directory, a file of a newer format), or the `spool` feature is
/// off. The message names the spool directory.
///
/// A damaged spool file is **not** an error: it is set aside and a new spool started.
pub struct StartError {
    message: String,
    dir: Option<PathBuf>,
    locked: bool,
    #[cfg(feature = "spool")]
    source: Option<Box<hook_spool::SpoolError>>,
}

impl StartError {
    #[cfg(feature = "spool")]
    pub(crate) fn spool(err: hook_spool::SpoolError) -> StartError {
        StartError {
            message: format!("cannot open the post-disconnect hook spool: {err}"),
            dir: err.path().map(Path::to_path_buf),
            locked: err.is_locked(),
            source: Some(Box::new(err)),
        }
    }

    #[cfg(not(feature = "spool"))]
    pub(crate) fn no_spool_feature(dir: &str) -> StartError {
        StartError {
            message: format!(
                "hooks.spool.dir is {dir:?} but this build of the hooks crate has no `spool` feature"
            ),
            dir: Some(PathBuf::from(dir)),
            locked: false,
        }
    }

    /// The spool directory (or file) concerned, when known.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether another process (or another dispatcher of this one) holds the spool's lock.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// The spool's own error, when the spool failed.
    #[cfg(feature = "spool")]
    pub fn spool_error(&self) -> Option<&hook_spool::SpoolError> {
        self.source.as_deref()
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartError")
            .field("message", &self.message)
            .field("dir", &self.dir)
            .field("locked", &self.locked)
            .finish()
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        #[cfg(feature = "spool")]
        if let Some(source) = &self.source {
            return Some(&**source);
        }
        None
    }
}
