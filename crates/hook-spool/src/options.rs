//! [`SpoolOptions`]: where the spool lives and its bounds.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default [`SpoolOptions::max_bytes`]: 256 MiB (about 1.8 million events).
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default [`SpoolOptions::min_free_bytes`]: 64 MiB left free on the file system.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;
/// Default [`SpoolOptions::dead_max`]: 100,000 dead letters.
pub const DEFAULT_DEAD_MAX: u64 = 100_000;
/// Default [`SpoolOptions::ballast_bytes`]: 8 MiB.
pub const DEFAULT_BALLAST_BYTES: u64 = 8 * 1024 * 1024;
/// Default [`SpoolOptions::ack_flush_interval`]: 100 ms.
pub const DEFAULT_ACK_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Default [`SpoolOptions::max_batch`]: 1,024 operations per commit.
pub const DEFAULT_MAX_BATCH: usize = 1024;
/// Default [`SpoolOptions::max_queued`]: 65,536 appends waiting for the writer.
pub const DEFAULT_MAX_QUEUED: usize = 65_536;

/// Where the spool lives and its bounds. Build with [`SpoolOptions::new`], then set fields.
///
/// ```
/// use hook_spool::SpoolOptions;
///
/// let mut options = SpoolOptions::new("/var/spool/sftp-hooks");
/// options.max_bytes = 64 * 1024 * 1024;
/// options.dead_max = 10_000;
/// assert_eq!(options.dir.to_str(), Some("/var/spool/sftp-hooks"));
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// The spool directory (created if missing). It holds `spool.redb`, `spool.lock`,
    /// `spool.ballast` and any `spool.redb.corrupt-<unix time>` files set aside.
    pub dir: PathBuf,
    /// The most bytes the spool may hold: appends are refused ([`SpoolErrorKind::Full`]) once
    /// the live records (pending, deferred, dead) or the file would exceed it.
    ///
    /// [`SpoolErrorKind::Full`]: crate::SpoolErrorKind::Full
    pub max_bytes: u64,
    /// Appends are refused while the file system holding `dir` has less free space than this
    /// (`0` disables the check).
    pub min_free_bytes: u64,
    /// The most dead letters kept; beyond it the oldest (by event id) are evicted and counted.
    pub dead_max: u64,
    /// Size of the ballast file kept in `dir` and removed when the disk is full, so that acks
    /// (copy-on-write deletes need free pages) can still commit. `0` disables it.
    pub ballast_bytes: u64,
    /// How long a batch holding only acks may wait for other operations before it commits.
    /// An ack lost in a crash only causes a duplicate delivery, so acks need not be committed
    /// at once; this bounds the duplicates after a crash to about this much time of acks.
    pub ack_flush_interval: Duration,
    /// The most operations in one write transaction (group commit takes everything queued, up
    /// to this).
    pub max_batch: usize,
    /// The most appends waiting for the writer; beyond it appends are refused
    /// ([`SpoolErrorKind::Busy`](crate::SpoolErrorKind::Busy)).
    pub max_queued: usize,
    /// What [`Spool::open`](crate::Spool::open) does with a damaged store file: `true` (the
    /// default, for servers) sets it aside and starts a new spool; `false` (for inspection tools
    /// such as `hookctl spool status`) leaves it untouched and fails with
    /// [`SpoolErrorKind::Damaged`](crate::SpoolErrorKind::Damaged).
    pub set_aside_damaged: bool,
}

impl SpoolOptions {
    /// Options for a spool in `dir`, every bound at its default.
    pub fn new(dir: impl Into<PathBuf>) -> SpoolOptions {
        SpoolOptions {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            dead_max: DEFAULT_DEAD_MAX,
            ballast_bytes: DEFAULT_BALLAST_BYTES,
            ack_flush_interval: DEFAULT_ACK_FLUSH_INTERVAL,
            max_batch: DEFAULT_MAX_BATCH,
            max_queued: DEFAULT_MAX_QUEUED,
            set_aside_damaged: true,
        }
    }

    /// The path of the store file, `dir/spool.redb`.
    pub fn file_path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.dir.as_os_str().is_empty() {
            return Err("spool dir is empty".into());
        }
        if self.max_batch == 0 {
            return Err("spool max_batch must be at least 1".into());
        }
        if self.max_queued == 0 {
            return Err("spool max_queued must be at least 1".into());
        }
        if self.max_bytes < 64 * 1024 {
            return Err(format!(
                "spool max_bytes {} is below the minimum of 65536",
                self.max_bytes
            ));
        }
        Ok(())
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        Path::new(&self.dir).join(name)
    }
}

/// The store file's name in the spool directory.
pub(crate) const FILE_NAME: &str = "spool.redb";
