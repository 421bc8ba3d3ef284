//! Legacy SCP (`scp -O`, the "rcp" protocol OpenSSH's `scp` spoke before 9.0): the sink
//! (`scp -t`, uploads) and source (`scp -f`, downloads) sides, for regular files, `-p` times and
//! modes, and `-r` directories.
//!
//! The exec request only classifies the command ([`ScpCommand::parse`]); the transfer runs in a
//! task of its own per channel ([`run`]) that reads the channel's stream. It must not run
//! inside a russh handler method: the channel's data arrive through the same session loop that
//! calls the handler, so reading there would wait forever.
//!
//! The wire protocol (one line per message, each answered by a one-byte ack):
//!
//! * acks: `\0` OK; `\1` + text + `\n` a warning (this file failed, go on); `\2` + text + `\n`
//!   fatal;
//! * `T<mtime> 0 <atime> 0` before a file or directory when times are kept (`-p`);
//! * `C<mode> <size> <name>`, then `<size>` bytes and a `\0`: a file;
//! * `D<mode> 0 <name>` ... `E`: a directory and its end (`-r`).
//!
//! Upload: the server acks first, then the client sends lines. Download: the client acks
//! first, then the server sends. Names must be one path component (no `/`, not `.` or `..`);
//! on download the top-level name is the basename of the requested path, as the client checks.
//! Every path is confined to the served root (lexically, like the SFTP side). Errors reach the
//! client as `scp: <path>: <reason>` and make the exit status 1; the exit status is sent
//! before the channel's EOF and close.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::Channel;
use russh::server::Msg;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::sftp::virtual_path;

/// Longest protocol line accepted (a name is at most 255 bytes on common file systems).
const MAX_LINE: u64 = 4096;
/// File data goes out in chunks of this size.
const CHUNK: usize = 32 * 1024;

/// Which side of the protocol the server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// `-t`: the client uploads, the server writes (the sink).
    Sink,
    /// `-f`: the client downloads, the server reads (the source).
    Source,
}

/// A parsed `scp` command line: `scp [-v] [-r] [-p] [-d] -t|-f [--] PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScpCommand {
    pub(crate) direction: Direction,
    /// `-p`: keep modification/access times and modes.
    pub(crate) preserve: bool,
    /// `-r`: directories.
    pub(crate) recursive: bool,
    /// `-d`: the upload target must be a directory.
    pub(crate) target_is_dir: bool,
    /// The path as the client gave it.
    pub(crate) path: String,
}

impl ScpCommand {
    /// The arguments after `scp` (SFTPGo's rule has already checked there are at least two).
    /// Flags may be combined (`-pt`); `--` ends them. The error is the message for the client.
    pub(crate) fn parse(args: &[String]) -> Result<ScpCommand, String> {
        let mut direction = None;
        let (mut preserve, mut recursive, mut target_is_dir) = (false, false, false);
        let mut paths = Vec::new();
        let mut flags_done = false;
        for arg in args {
            if flags_done || !arg.starts_with('-') || arg == "-" {
                paths.push(arg.clone());
                continue;
            }
            if arg == "--" {
                flags_done = true;
                continue;
            }
            for flag in arg[1..].chars() {
                match flag {
                    't' | 'f' => {
                        let this = if flag == 't' {
                            Direction::Sink
                        } else {
                            Direction::Source
                        };
                        if direction.is_some_and(|d| d != this) {
                            return Err("scp: -t and -f are exclusive".into());
                        }
                        direction = Some(this);
                    }
                    'p' => preserve = true,
                    'r' => recursive = true,
                    'd' => target_is_dir = true,
                    'v' => {}
                    other => return Err(format!("scp: unsupported option -{other}")),
                }
            }
        }
        let Some(direction) = direction else {
            return Err("scp: this server runs scp only as the remote end (-t or -f)".into());
        };
        let path = match <[String; 1]>::try_from(paths) {
            Ok([path]) => path,
            Err(paths) => {
                return Err(format!(
                    "scp: expected exactly one path, got {}",
                    paths.len()
                ));
            }
        };
        Ok(ScpCommand {
            direction,
            preserve,
            recursive,
            target_is_dir,
            path,
        })
    }
}

/// Runs one SCP transfer on `channel`, then sends the exit status, EOF and close. Returns the
/// exit status (0: everything transferred; 1: something failed, the client was told what).
pub(crate) async fn run(channel: Channel<Msg>, root: Arc<Path>, command: ScpCommand) -> u32 {
    let (mut read, write) = channel.split();
    let mut scp = Scp {
        input: BufReader::new(read.make_reader()),
        out: &write,
        root,
        preserve: command.preserve,
        recursive: command.recursive,
        failed: false,
    };
    let result = match command.direction {
        Direction::Sink => scp.sink(&command).await,
        Direction::Source => scp.source(&command).await,
    };
    let status = match result {
        Ok(()) if !scp.failed => 0,
        Ok(()) => 1,
        Err(Stop::Fatal(message)) => {
            tracing::info!(%message, "scp failed");
            let _ = scp.send_message(2, &message).await;
            1
        }
        Err(Stop::Gone) => 1,
    };
    drop(scp);
    // The exit status first: scp reads it once the channel ends, and fails without it.
    let _ = write.exit_status(status).await;
    let _ = write.eof().await;
    let _ = write.close().await;
    status
}

/// Refuses an `scp` command line the server does not run (an unknown option, no `-t`/`-f`,
/// not exactly one path): `\2` with the message, exit status 1.
pub(crate) async fn refuse(channel: Channel<Msg>, message: &str) -> u32 {
    tracing::info!(%message, "scp refused");
    let mut bytes = vec![2];
    bytes.extend(message.bytes());
    bytes.push(b'\n');
    let _ = channel.data_bytes(bytes).await;
    let _ = channel.exit_status(1).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
    1
}

/// Why a transfer stopped early.
#[derive(Debug)]
enum Stop {
    /// Sent to the client as a `\2` message.
    Fatal(String),
    /// The channel is gone (closed, connection dropped): nothing more can be said.
    Gone,
}

impl From<russh::Error> for Stop {
    fn from(_: russh::Error) -> Self {
        Stop::Gone
    }
}

type Step<'a> = Pin<Box<dyn std::future::Future<Output = Result<(), Stop>> + Send + 'a>>;

/// `T` times: modification and access, seconds and microseconds since the epoch.
#[derive(Debug, Clone, Copy)]
struct Times {
    modified: SystemTime,
    accessed: SystemTime,
}

struct Scp<'a, R> {
    input: BufReader<R>,
    out: &'a russh::ChannelWriteHalf<Msg>,
    root: Arc<Path>,
    preserve: bool,
    recursive: bool,
    /// A file or directory failed and the client was told (`\1`): exit status 1.
    failed: bool,
}

impl<R: AsyncRead + Unpin + Send + Sync> Scp<'_, R> {
    fn local(&self, virtual_path: &str) -> PathBuf {
        self.root.join(virtual_path.trim_start_matches('/'))
    }

    async fn send(&self, bytes: Vec<u8>) -> Result<(), Stop> {
        Ok(self.out.data_bytes(bytes).await?)
    }

    async fn ack(&self) -> Result<(), Stop> {
        self.send(vec![0]).await
    }

    /// `\1` or `\2`, the message, `\n`.
    async fn send_message(&self, code: u8, message: &str) -> Result<(), Stop> {
        let mut bytes = Vec::with_capacity(message.len() + 2);
        bytes.push(code);
        // A newline inside would end the message early and desynchronise the client.
        bytes.extend(message.replace('\n', " ").bytes());
        bytes.push(b'\n');
        self.send(bytes).await
    }

    /// Tells the client one file or directory failed (`\1 scp: <path>: <reason>`); goes on.
    async fn warn(&mut self, virtual_path: &str, reason: &str) -> Result<(), Stop> {
        self.failed = true;
        let message = format!("scp: {virtual_path}: {reason}");
        tracing::info!(%message, "scp error");
        self.send_message(1, &message).await
    }

    /// One line without its `\n`; `None` at end of stream.
    async fn read_line(&mut self) -> Result<Option<Vec<u8>>, Stop> {
        let mut line = Vec::new();
        let n = (&mut self.input)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|_| Stop::Gone)?;
        if n == 0 {
            return Ok(None);
        }
        if line.pop() != Some(b'\n') {
            return Err(protocol_error("line too long or truncated"));
        }
        Ok(Some(line))
    }

    /// The client's answer to what we sent: `Ok(true)` for `\0`, `Ok(false)` for a `\1`
    /// warning (this item failed on its side; skip it), `Err` for `\2` or the end of stream.
    async fn read_ack(&mut self) -> Result<bool, Stop> {
        let mut byte = [0u8];
        if self.input.read_exact(&mut byte).await.is_err() {
            return Err(Stop::Gone);
        }
        match byte[0] {
            0 => Ok(true),
            code @ (1 | 2) => {
                let message = self.read_line().await?.unwrap_or_default();
                let message = String::from_utf8_lossy(&message);
                tracing::info!(%message, "scp client reported an error");
                self.failed = true;
                if code == 1 {
                    Ok(false)
                } else {
                    Err(Stop::Gone)
                }
            }
            other => Err(protocol_error(&format!("unexpected ack byte {other}"))),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sink: the client uploads.
    // -----------------------------------------------------------------------------------------

    async fn sink(&mut self, command: &ScpCommand) -> Result<(), Stop> {
        let target_virtual = virtual_path(&command.path);
        let target = self.local(&target_virtual);
        let target_is_dir = tokio::fs::metadata(&target).await.is_ok_and(|m| m.is_dir());
        if command.target_is_dir && !target_is_dir {
            return Err(Stop::Fatal(format!(
                "scp: {}: Not a directory",
                command.path
            )));
        }
        self.ack().await?;
        // The directories being received (`D` ... `E`): local path, virtual path, times.
        let mut dirs: Vec<(PathBuf, String, Option<Times>)> = Vec::new();
        let mut times = None;
        while let Some(line) = self.read_line().await? {
            let Some((&kind, rest)) = line.split_first() else {
                return Err(protocol_error("empty line"));
            };
            match kind {
                1 | 2 => {
                    // The client could not read a file of its own; it says so and goes on
                    // (`\1`) or gives up (`\2`).
                    let message = String::from_utf8_lossy(rest);
                    tracing::info!(%message, "scp client reported an error");
                    self.failed = true;
                    if kind == 2 {
                        break;
                    }
                }
                b'T' => {
                    times = Some(parse_times(rest)?);
                    self.ack().await?;
                }
                b'E' => {
                    let Some((dir, dir_virtual, dir_times)) = dirs.pop() else {
                        return Err(protocol_error("E without D"));
                    };
                    if let Some(t) = dir_times
                        && let Err(err) = set_times(&dir, t).await
                    {
                        self.warn(&dir_virtual, &reason(&err)).await?;
                    }
                    self.ack().await?;
                }
                b'C' | b'D' => {
                    let (mode, size, name) = parse_entry(rest)?;
                    let (dest, dest_virtual) = match dirs.last() {
                        Some((dir, dir_virtual, _)) => {
                            (dir.join(&name), join_virtual(dir_virtual, &name))
                        }
                        None if target_is_dir => {
                            (target.join(&name), join_virtual(&target_virtual, &name))
                        }
                        None => (target.clone(), target_virtual.clone()),
                    };
                    let entry_times = if self.preserve { times.take() } else { None };
                    times = None;
                    if kind == b'D' {
                        if !self.recursive {
                            return Err(Stop::Fatal(format!(
                                "scp: {dest_virtual}: received a directory without -r"
                            )));
                        }
                        // A directory that cannot be made: its contents cannot be skipped
                        // safely, so the transfer stops.
                        make_dir(&dest, mode, self.preserve).await.map_err(|err| {
                            Stop::Fatal(format!("scp: {dest_virtual}: {}", reason(&err)))
                        })?;
                        self.ack().await?;
                        dirs.push((dest, dest_virtual, entry_times));
                    } else {
                        self.receive_file(&dest, &dest_virtual, mode, size, entry_times)
                            .await?;
                    }
                }
                other => {
                    return Err(protocol_error(&format!(
                        "unexpected message type {:?}",
                        char::from(other)
                    )));
                }
            }
        }
        if !dirs.is_empty() {
            self.failed = true;
            tracing::info!("scp upload ended inside a directory (no E)");
        }
        Ok(())
    }

    /// After a `C` line: open the file, ack, take `size` bytes and the client's `\0`, set the
    /// times and mode, ack (or `\1` with the reason).
    async fn receive_file(
        &mut self,
        dest: &Path,
        dest_virtual: &str,
        mode: u32,
        size: u64,
        times: Option<Times>,
    ) -> Result<(), Stop> {
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true).mode(mode);
        let opened = match tokio::fs::metadata(dest).await {
            Ok(m) if m.is_dir() => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            _ => options.open(dest).await,
        };
        let mut file = match opened {
            Ok(file) => file,
            // The client skips this file's data on a `\1` answer.
            Err(err) => return self.warn(dest_virtual, &reason(&err)).await,
        };
        self.ack().await?;
        let mut data = (&mut self.input).take(size);
        let mut write_error = None;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = data.read(&mut buffer).await.map_err(|_| Stop::Gone)?;
            if n == 0 {
                break;
            }
            // After a write error keep reading: the client sends the whole file regardless.
            if write_error.is_none()
                && let Err(err) = file.write_all(&buffer[..n]).await
            {
                write_error = Some(err);
            }
        }
        if data.limit() > 0 {
            return Err(Stop::Gone);
        }
        let client_ok = self.read_ack().await?;
        if write_error.is_none()
            && let Err(err) = file.flush().await
        {
            write_error = Some(err);
        }
        let file = file.into_std().await;
        if write_error.is_none() && self.preserve {
            let perms = std::fs::Permissions::from_mode(mode);
            write_error = file.set_permissions(perms).err();
        }
        if write_error.is_none()
            && let Some(t) = times
        {
            write_error = file
                .set_times(
                    std::fs::FileTimes::new()
                        .set_modified(t.modified)
                        .set_accessed(t.accessed),
                )
                .err();
        }
        match write_error {
            Some(err) => self.warn(dest_virtual, &reason(&err)).await,
            // The client's own `\1` after the data: it already said why.
            None if !client_ok => Ok(()),
            None => self.ack().await,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Source: the client downloads.
    // -----------------------------------------------------------------------------------------

    async fn source(&mut self, command: &ScpCommand) -> Result<(), Stop> {
        // The client (the sink) speaks first: `\0` when it is ready.
        if !self.read_ack().await? {
            return Ok(());
        }
        let path_virtual = virtual_path(&command.path);
        // The client accepts only the basename of what it asked for.
        let Some(name) = Path::new(&path_virtual)
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            return self.warn(&command.path, "not a regular file").await;
        };
        let local = self.local(&path_virtual);
        self.send_entry(local, command.path.clone(), name).await
    }

    /// Sends one file, or with `-r` one directory tree, named `name`.
    fn send_entry(&mut self, local: PathBuf, shown: String, name: String) -> Step<'_> {
        Box::pin(async move {
            let metadata = match tokio::fs::metadata(&local).await {
                Ok(metadata) => metadata,
                Err(err) => return self.warn(&shown, &reason(&err)).await,
            };
            if metadata.is_dir() && !self.recursive {
                return self.warn(&shown, "not a regular file").await;
            }
            if !metadata.is_dir() && !metadata.is_file() {
                return self.warn(&shown, "not a regular file").await;
            }
            if self.preserve {
                let modified = unix_secs(metadata.modified().ok());
                let accessed = unix_secs(metadata.accessed().ok());
                self.send(format!("T{modified} 0 {accessed} 0\n").into_bytes())
                    .await?;
                if !self.read_ack().await? {
                    return Ok(());
                }
            }
            let mode = metadata.permissions().mode() & 0o7777;
            if metadata.is_dir() {
                self.send(format!("D{mode:04o} 0 {name}\n").into_bytes())
                    .await?;
                if !self.read_ack().await? {
                    return Ok(());
                }
                let mut names = Vec::new();
                match tokio::fs::read_dir(&local).await {
                    Ok(mut entries) => {
                        while let Ok(Some(entry)) = entries.next_entry().await {
                            if let Ok(name) = entry.file_name().into_string() {
                                names.push(name);
                            }
                        }
                    }
                    Err(err) => self.warn(&shown, &reason(&err)).await?,
                }
                names.sort();
                for child in names {
                    let child_shown = join_virtual(&shown, &child);
                    self.send_entry(local.join(&child), child_shown, child)
                        .await?;
                }
                self.send(b"E\n".to_vec()).await?;
                self.read_ack().await?;
                return Ok(());
            }
            self.send_file(&local, &shown, &name, mode).await
        })
    }

    async fn send_file(
        &mut self,
        local: &Path,
        shown: &str,
        name: &str,
        mode: u32,
    ) -> Result<(), Stop> {
        let mut file = match tokio::fs::File::open(local).await {
            Ok(file) => file,
            Err(err) => return self.warn(shown, &reason(&err)).await,
        };
        let size = match file.metadata().await {
            Ok(metadata) => metadata.len(),
            Err(err) => return self.warn(shown, &reason(&err)).await,
        };
        self.send(format!("C{mode:04o} {size} {name}\n").into_bytes())
            .await?;
        if !self.read_ack().await? {
            return Ok(());
        }
        // Exactly `size` bytes: a file that shrank meanwhile is padded (and reported).
        let mut left = size;
        let mut read_error = None;
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            let mut chunk = vec![0u8; want];
            let n = if read_error.is_none() {
                match file.read(&mut chunk).await {
                    Ok(0) => {
                        read_error = Some("file shrank while being sent".to_owned());
                        want
                    }
                    Ok(n) => n,
                    Err(err) => {
                        read_error = Some(reason(&err));
                        want
                    }
                }
            } else {
                want
            };
            chunk.truncate(n);
            left -= n as u64;
            self.send(chunk).await?;
        }
        match read_error {
            None => self.ack().await?,
            Some(why) => self.warn(shown, &why).await?,
        }
        self.read_ack().await?;
        Ok(())
    }
}

fn protocol_error(what: &str) -> Stop {
    Stop::Fatal(format!("scp: protocol error: {what}"))
}

/// `<mtime> <usec> <atime> <usec>` (after the `T`).
fn parse_times(rest: &[u8]) -> Result<Times, Stop> {
    let text = std::str::from_utf8(rest).map_err(|_| protocol_error("bad T line"))?;
    let numbers = text
        .split(' ')
        .map(str::parse::<u64>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| protocol_error("bad T line"))?;
    let [mtime, musec, atime, ausec] = numbers[..] else {
        return Err(protocol_error("bad T line"));
    };
    if musec >= 1_000_000 || ausec >= 1_000_000 {
        return Err(protocol_error("bad T line"));
    }
    let at = |secs: u64, usec: u64| {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs) + Duration::from_micros(usec))
            .ok_or_else(|| protocol_error("bad T line"))
    };
    Ok(Times {
        modified: at(mtime, musec)?,
        accessed: at(atime, ausec)?,
    })
}

/// `<4 octal digits> <size> <name>` (after the `C` or `D`).
fn parse_entry(rest: &[u8]) -> Result<(u32, u64, String), Stop> {
    let text = std::str::from_utf8(rest).map_err(|_| protocol_error("name is not UTF-8"))?;
    let mut parts = text.splitn(3, ' ');
    let (Some(mode), Some(size), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(protocol_error("bad C/D line"));
    };
    let mode = u32::from_str_radix(mode, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && mode.len() == 4)
        .ok_or_else(|| protocol_error("bad mode"))?;
    let size = size
        .parse::<u64>()
        .map_err(|_| protocol_error("bad size"))?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Stop::Fatal(format!(
            "scp: protocol error: unexpected filename: {name}"
        )));
    }
    // Set-id and sticky bits are never taken from the client.
    Ok((mode & 0o777, size, name.to_owned()))
}

fn join_virtual(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

async fn make_dir(dir: &Path, mode: u32, preserve: bool) -> io::Result<()> {
    match tokio::fs::metadata(dir).await {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(io::Error::from(io::ErrorKind::NotADirectory)),
        Err(_) => {
            let mut builder = tokio::fs::DirBuilder::new();
            // Owner access while its contents arrive; the mode proper is set below.
            builder.mode(mode | 0o700);
            builder.create(dir).await?;
        }
    }
    if preserve {
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).await?;
    }
    Ok(())
}

async fn set_times(path: &Path, times: Times) -> io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&path)?.set_times(
            std::fs::FileTimes::new()
                .set_modified(times.modified)
                .set_accessed(times.accessed),
        )
    })
    .await
    .map_err(io::Error::other)?
}

fn unix_secs(time: Option<SystemTime>) -> u64 {
    time.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// The reason as `strerror` words ("No such file or directory"), without Rust's
/// " (os error N)" suffix and without any local path.
fn reason(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn parses_what_openssh_sends() {
        let up = ScpCommand::parse(&args("-t /up.bin")).unwrap();
        assert_eq!(up.direction, Direction::Sink);
        assert_eq!(up.path, "/up.bin");
        assert!(!up.preserve && !up.recursive && !up.target_is_dir);
        let p = ScpCommand::parse(&args("-p -t /")).unwrap();
        assert!(p.preserve);
        let pr = ScpCommand::parse(&args("-v -r -p -f /dir")).unwrap();
        assert_eq!(pr.direction, Direction::Source);
        assert!(pr.preserve && pr.recursive);
        let combined = ScpCommand::parse(&args("-prdt /dir")).unwrap();
        assert!(combined.preserve && combined.recursive && combined.target_is_dir);
        let dashed = ScpCommand::parse(&args("-t -- -odd-name")).unwrap();
        assert_eq!(dashed.path, "-odd-name");
    }

    #[test]
    fn refuses_bad_command_lines() {
        assert!(
            ScpCommand::parse(&args("-x -t /a"))
                .unwrap_err()
                .contains("-x")
        );
        assert!(ScpCommand::parse(&args("-t -f /a")).is_err());
        assert!(
            ScpCommand::parse(&args("-p /a"))
                .unwrap_err()
                .contains("-t or -f")
        );
        assert!(
            ScpCommand::parse(&args("-t /a /b"))
                .unwrap_err()
                .contains("exactly one path")
        );
        assert!(ScpCommand::parse(&args("-t --")).is_err());
    }

    #[test]
    fn parses_entries_and_rejects_unsafe_names() {
        assert!(matches!(
            parse_entry(b"0644 1048576 up.bin"),
            Ok((0o644, 1_048_576, ref n)) if n == "up.bin"
        ));
        assert!(matches!(parse_entry(b"4755 1 x"), Ok((0o755, 1, _))));
        assert!(matches!(parse_entry(b"0644 3 a b c"), Ok((_, 3, ref n)) if n == "a b c"));
        for bad in [
            &b"0644 1 ../x"[..],
            b"0644 1 a/b",
            b"0644 1 ..",
            b"0644 1 .",
            b"0644 1 ",
            b"644 1 x",
            b"0844 1 x",
            b"0644 -1 x",
            b"0644 1",
        ] {
            assert!(
                parse_entry(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn parses_times() {
        let t = parse_times(b"1700000000 0 1700000001 5").unwrap();
        assert_eq!(t.modified, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(
            t.accessed,
            UNIX_EPOCH + Duration::from_secs(1_700_000_001) + Duration::from_micros(5)
        );
        assert!(parse_times(b"1 0 2").is_err());
        assert!(parse_times(b"x 0 2 0").is_err());
        assert!(parse_times(b"1 1000000 2 0").is_err());
    }

    #[test]
    fn reasons_read_like_strerror() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(reason(&err), "No such file or directory");
        assert_eq!(join_virtual("/", "a"), "/a");
        assert_eq!(join_virtual("/d", "a"), "/d/a");
    }
}
