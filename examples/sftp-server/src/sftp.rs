//! The SFTP subsystem: a `russh_sftp` handler serving one directory, and holding the channel's
//! [`ChannelHook`] so that the end of the SFTP loop fires the event.

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::ChannelHook;

/// Bytes a single `read` request may return (OpenSSH asks for 32 KiB at a time).
const MAX_READ: u32 = 256 * 1024;

/// One SFTP channel's state: the served root, its open handles, and the channel's hook.
///
/// The russh-sftp loop owns this value and drops it when the channel's stream ends (the client
/// sent end-of-file or closed the channel, or the connection is gone); `Drop` then finishes the
/// hook. Paths are confined to the root lexically (`..` cannot climb above `/`); symbolic
/// links inside the root are followed, so do not place links pointing outside it.
pub(crate) struct SftpSession {
    root: Arc<Path>,
    handles: HashMap<String, OpenHandle>,
    next_handle: u64,
    hook: Option<ChannelHook>,
}

enum OpenHandle {
    File(tokio::fs::File),
    /// A directory listing, sent in one `readdir` answer; `None` once sent.
    Dir(Option<Vec<File>>),
}

impl SftpSession {
    pub(crate) fn new(root: Arc<Path>, hook: Option<ChannelHook>) -> Self {
        SftpSession {
            root,
            handles: HashMap::new(),
            next_handle: 0,
            hook,
        }
    }

    /// The local path for a client path: relative paths start at the root (the home
    /// directory is `/`); `.` and `..` are resolved without leaving it.
    fn local(&self, path: &str) -> PathBuf {
        self.root.join(virtual_path(path).trim_start_matches('/'))
    }

    fn add_handle(&mut self, handle: OpenHandle) -> String {
        self.next_handle += 1;
        let name = self.next_handle.to_string();
        self.handles.insert(name.clone(), handle);
        name
    }

    fn file(&mut self, handle: &str) -> Result<&mut tokio::fs::File, StatusReply> {
        match self.handles.get_mut(handle) {
            Some(OpenHandle::File(file)) => Ok(file),
            _ => Err(StatusCode::Failure.with_message("invalid file handle")),
        }
    }
}

impl Drop for SftpSession {
    fn drop(&mut self) {
        if let Some(hook) = &self.hook {
            hook.finish("SFTP stream ended");
        }
    }
}

/// `path` as an absolute, normalised virtual path (`/` is the served root).
pub(crate) fn virtual_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// The SFTP status for an I/O error; the message is the error's text, without local paths.
fn status(err: io::Error) -> StatusReply {
    let code = match err.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    code.with_message(err.kind().to_string())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".to_owned(),
        language_tag: "en-US".to_owned(),
    }
}

/// Applies the permissions and times of `attrs` that are set.
async fn apply_attrs(path: &Path, attrs: &FileAttributes) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(mode) = attrs.permissions {
        let perms = std::fs::Permissions::from_mode(mode & 0o7777);
        tokio::fs::set_permissions(path, perms).await?;
    }
    if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
        let file = std::fs::File::options().write(true).open(path)?;
        file.set_times(file_times(atime, mtime))?;
    }
    Ok(())
}

/// Access and modification times from SFTP's seconds since the epoch.
fn file_times(atime: u32, mtime: u32) -> std::fs::FileTimes {
    let at = |secs: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.into());
    std::fs::FileTimes::new()
        .set_accessed(at(atime))
        .set_modified(at(mtime))
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        Ok(Name {
            id,
            files: vec![File::dummy(virtual_path(&path))],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let meta = tokio::fs::metadata(self.local(&path))
            .await
            .map_err(status)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let meta = tokio::fs::symlink_metadata(self.local(&path))
            .await
            .map_err(status)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let meta = self.file(&handle)?.metadata().await.map_err(status)?;
        Ok(Attrs {
            id,
            attrs: FileAttributes::from(&meta),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        apply_attrs(&self.local(&path), &attrs)
            .await
            .map_err(status)?;
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        let file = self.file(&handle)?;
        if let Some(mode) = attrs.permissions {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(mode & 0o7777);
            file.set_permissions(perms).await.map_err(status)?;
        }
        if let (Some(atime), Some(mtime)) = (attrs.atime, attrs.mtime) {
            let std_file = file.try_clone().await.map_err(status)?.into_std().await;
            std_file
                .set_times(file_times(atime, mtime))
                .map_err(status)?;
        }
        Ok(ok(id))
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        attrs: FileAttributes,
    ) -> Result<Handle, Self::Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = std::fs::OpenOptions::from(pflags);
        if let Some(mode) = attrs.permissions {
            options.mode(mode & 0o777);
        }
        let file = tokio::fs::OpenOptions::from(options)
            .open(self.local(&filename))
            .await
            .map_err(status)?;
        let handle = self.add_handle(OpenHandle::File(file));
        Ok(Handle { id, handle })
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, Self::Error> {
        let file = self.file(&handle)?;
        file.seek(SeekFrom::Start(offset)).await.map_err(status)?;
        let mut data = vec![0; len.min(MAX_READ) as usize];
        let mut filled = 0;
        while filled < data.len() {
            match file.read(&mut data[filled..]).await.map_err(status)? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 && !data.is_empty() {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        data.truncate(filled);
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, Self::Error> {
        let file = self.file(&handle)?;
        file.seek(SeekFrom::Start(offset)).await.map_err(status)?;
        file.write_all(&data).await.map_err(status)?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        match self.handles.remove(&handle) {
            Some(OpenHandle::File(mut file)) => {
                file.flush().await.map_err(status)?;
                Ok(ok(id))
            }
            Some(OpenHandle::Dir(_)) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let mut entries = tokio::fs::read_dir(self.local(&path))
            .await
            .map_err(status)?;
        let mut files = Vec::new();
        while let Some(entry) = entries.next_entry().await.map_err(status)? {
            let Ok(meta) = entry.metadata().await else {
                continue; // removed meanwhile
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push(File::new(name, FileAttributes::from(&meta)));
        }
        let handle = self.add_handle(OpenHandle::Dir(Some(files)));
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        match self.handles.get_mut(&handle) {
            Some(OpenHandle::Dir(listing)) => match listing.take() {
                Some(files) if !files.is_empty() => Ok(Name { id, files }),
                _ => Err(StatusReply::new(StatusCode::Eof)),
            },
            _ => Err(StatusCode::Failure.with_message("invalid directory handle")),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        tokio::fs::remove_file(self.local(&filename))
            .await
            .map_err(status)?;
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, Self::Error> {
        tokio::fs::create_dir(self.local(&path))
            .await
            .map_err(status)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        tokio::fs::remove_dir(self.local(&path))
            .await
            .map_err(status)?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, Self::Error> {
        tokio::fs::rename(self.local(&oldpath), self.local(&newpath))
            .await
            .map_err(status)?;
        Ok(ok(id))
    }
}

#[cfg(test)]
mod tests {
    use super::virtual_path;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(virtual_path("."), "/");
        assert_eq!(virtual_path(""), "/");
        assert_eq!(virtual_path("a/b/../c"), "/a/c");
        assert_eq!(virtual_path("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(virtual_path("../.."), "/");
        assert_eq!(virtual_path("/a/./b/"), "/a/b");
    }
}
