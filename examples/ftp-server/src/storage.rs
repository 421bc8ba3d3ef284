//! [`DirStorage`]: a libunftp storage backend over one local directory, served as `/`.
//!
//! About 150 lines instead of `unftp-sbe-fs`: that crate brings the `cap-std` family (and a
//! second `io-lifetimes`) for a confinement this example does lexically, as the SFTP example
//! does. Paths are confined to the root lexically (`..` cannot climb above `/`); symbolic links
//! inside the root are followed, so do not place links pointing outside it.

use std::fmt::Debug;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use unftp_core::auth::DefaultUser;
use unftp_core::storage::{
    Error, ErrorKind, FEATURE_RESTART, Fileinfo, Metadata, Permissions, Result, StorageBackend,
};

/// Serves one directory as `/` to every logged-in user.
#[derive(Debug, Clone)]
pub struct DirStorage {
    root: Arc<Path>,
}

impl DirStorage {
    /// A backend serving `root` (which must exist) as `/`.
    pub fn new(root: impl Into<PathBuf>) -> DirStorage {
        DirStorage {
            root: Arc::from(root.into()),
        }
    }

    /// The local path for a client path: `.` and `..` resolved without leaving the root.
    fn local(&self, path: &Path) -> PathBuf {
        let mut local = self.root.to_path_buf();
        let mut depth = 0usize;
        for component in path.components() {
            match component {
                Component::Normal(part) => {
                    local.push(part);
                    depth += 1;
                }
                Component::ParentDir if depth > 0 => {
                    local.pop();
                    depth -= 1;
                }
                // `/`, `.`, `..` at the root, a Windows prefix: nothing to add.
                _ => {}
            }
        }
        local
    }
}

/// A file's metadata, as libunftp lists it.
#[derive(Debug)]
pub struct Meta(std::fs::Metadata);

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn is_dir(&self) -> bool {
        self.0.is_dir()
    }
    fn is_file(&self) -> bool {
        self.0.is_file()
    }
    fn is_symlink(&self) -> bool {
        self.0.file_type().is_symlink()
    }
    fn modified(&self) -> Result<SystemTime> {
        self.0.modified().map_err(Error::from)
    }
    fn gid(&self) -> u32 {
        std::os::unix::fs::MetadataExt::gid(&self.0)
    }
    fn uid(&self) -> u32 {
        std::os::unix::fs::MetadataExt::uid(&self.0)
    }
    fn links(&self) -> u64 {
        std::os::unix::fs::MetadataExt::nlink(&self.0)
    }
    fn permissions(&self) -> Permissions {
        Permissions(std::os::unix::fs::MetadataExt::mode(&self.0) & 0o7777)
    }
}

#[async_trait]
impl StorageBackend<DefaultUser> for DirStorage {
    type Metadata = Meta;

    fn supported_features(&self) -> u32 {
        FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
    ) -> Result<Meta> {
        Ok(Meta(tokio::fs::metadata(self.local(path.as_ref())).await?))
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>> {
        let dir = self.local(path.as_ref());
        let mut entries = tokio::fs::read_dir(&dir).await?;
        let mut list = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            // An entry removed while listing, or a dangling link: leave it out.
            if let Ok(metadata) = tokio::fs::metadata(entry.path()).await {
                list.push(Fileinfo {
                    path: PathBuf::from(entry.file_name()),
                    metadata: Meta(metadata),
                });
            }
        }
        list.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(list)
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        let mut file = tokio::fs::File::open(self.local(path.as_ref())).await?;
        if !file.metadata().await?.is_file() {
            return Err(ErrorKind::PermanentFileNotAvailable.into());
        }
        if start_pos > 0 {
            file.seek(io::SeekFrom::Start(start_pos)).await?;
        }
        Ok(Box::new(file))
    }

    async fn put<
        P: AsRef<Path> + Send + Debug,
        R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        _user: &DefaultUser,
        mut input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let local = self.local(path.as_ref());
        if local == *self.root {
            return Err(ErrorKind::FileNameNotAllowedError.into());
        }
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(true);
        // A new upload replaces the file; a restarted one (REST) continues at its offset.
        options.truncate(start_pos == 0);
        let mut file = options.open(&local).await?;
        if start_pos > 0 {
            file.set_len(start_pos).await?;
            file.seek(io::SeekFrom::Start(start_pos)).await?;
        }
        let written = tokio::io::copy(&mut input, &mut file).await?;
        file.flush().await?;
        Ok(written)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        Ok(tokio::fs::remove_file(self.local(path.as_ref())).await?)
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        Ok(tokio::fs::create_dir(self.local(path.as_ref())).await?)
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        _user: &DefaultUser,
        from: P,
        to: P,
    ) -> Result<()> {
        let (from, to) = (self.local(from.as_ref()), self.local(to.as_ref()));
        if from == *self.root || to == *self.root {
            return Err(ErrorKind::FileNameNotAllowedError.into());
        }
        Ok(tokio::fs::rename(from, to).await?)
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        let local = self.local(path.as_ref());
        if local == *self.root {
            return Err(ErrorKind::PermissionDenied.into());
        }
        Ok(tokio::fs::remove_dir(local).await?)
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, _user: &DefaultUser, path: P) -> Result<()> {
        if tokio::fs::metadata(self.local(path.as_ref()))
            .await?
            .is_dir()
        {
            Ok(())
        } else {
            Err(ErrorKind::PermanentDirectoryNotAvailable.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let storage = DirStorage::new("/srv/ftp");
        for (client, local) in [
            ("/", "/srv/ftp"),
            ("/a/b.txt", "/srv/ftp/a/b.txt"),
            ("a/./b", "/srv/ftp/a/b"),
            ("/../../etc/passwd", "/srv/ftp/etc/passwd"),
            ("/a/../../b", "/srv/ftp/b"),
        ] {
            assert_eq!(
                storage.local(Path::new(client)),
                Path::new(local),
                "{client}"
            );
        }
    }
}
