//! The spool directory: its lock, free space, ballast file, and setting damaged files aside.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{SpoolError, SpoolErrorKind};

pub(crate) const LOCK_NAME: &str = "spool.lock";
pub(crate) const BALLAST_NAME: &str = "spool.ballast";
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Holds the exclusive lock on a spool directory for as long as it lives.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the exclusive lock of `dir` (`dir/spool.lock`), without waiting.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, SpoolError> {
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| SpoolError::io("cannot open the spool lock", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(SpoolError::new(
            SpoolErrorKind::Locked,
            format!(
                "spool directory {} is in use by another process (its lock {} is held)",
                dir.display(),
                path.display()
            ),
        )
        .with_path(dir)),
        Err(fs::TryLockError::Error(e)) => {
            Err(SpoolError::io("cannot lock the spool directory", dir, e))
        }
    }
}

/// Free bytes available to this user on the file system holding `dir`.
pub(crate) fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Flushes `dir`'s entries (a rename or a new file in it) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Renames the damaged `file` to `file.corrupt-<unix time>` (with `-N` if that exists).
pub(crate) fn rename_aside(file: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("{}.corrupt-{secs}", file.display());
    let mut target = PathBuf::from(&base);
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    fs::rename(file, &target)?;
    if let Some(dir) = file.parent() {
        sync_dir(dir)?;
    }
    Ok(target)
}

/// Whether the ballast file is in `dir`.
pub(crate) fn has_ballast(dir: &Path) -> bool {
    dir.join(BALLAST_NAME).exists()
}

/// Creates the ballast file of `bytes` zero bytes (really allocated: written, then synced).
pub(crate) fn create_ballast(dir: &Path, bytes: u64) -> io::Result<()> {
    let path = dir.join(BALLAST_NAME);
    let tmp = dir.join(format!("{BALLAST_NAME}{TMP_SUFFIX}"));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        let chunk = vec![0u8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the ballast file; whether there was one.
pub(crate) fn release_ballast(dir: &Path) -> bool {
    fs::remove_file(dir.join(BALLAST_NAME)).is_ok()
}
