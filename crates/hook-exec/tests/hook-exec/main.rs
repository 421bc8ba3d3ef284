//! Integration tests of `hook-exec`: real programs (small `/bin/sh` scripts written into a temp
//! dir), asserting on what the child saw and on the processes left in `/proc`.

mod concurrency;
mod config;
mod descriptors;
mod environment;
mod errors;
mod kill;
mod matching;
mod output;

use std::path::{Path, PathBuf};
use std::time::Duration;

use hook_core::{DisconnectEvent, Protocol};

/// Serialises the tests that measure memory or scan `/proc` for every process, so that another
/// heavy test does not disturb their measurement.
pub(crate) static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The event most tests send.
pub(crate) fn event() -> DisconnectEvent {
    DisconnectEvent::new(
        "203.0.113.9",
        Protocol::Sftp,
        "alice",
        Duration::from_millis(1234),
    )
}

/// Writes an executable `#!/bin/sh` script `name` with `body` into `dir`.
pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    // Written so that no concurrent spawn can inherit a writable descriptor (no ETXTBSY).
    hook_test_support::write_file_safely(dir, name, format!("#!/bin/sh\n{body}").as_bytes(), 0o755)
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A script that records, in `dir`, the exact environment it was started with (from
/// `/proc/$$/environ`, NUL-separated, untouched by the shell), its `$0` and its arguments.
pub(crate) fn dump_script(dir: &Path) -> PathBuf {
    let d = dir.display();
    script(
        dir,
        "dump.sh",
        &format!(
            "/bin/cat /proc/$$/environ > {d}/env\n\
             printf '%s' \"$0\" > {d}/arg0\n\
             : > {d}/args\n\
             for a in \"$@\"; do printf '[%s]\\n' \"$a\" >> {d}/args; done\n"
        ),
    )
}

/// The environment recorded by [`dump_script`].
pub(crate) fn dumped_env(dir: &Path) -> Vec<String> {
    let raw = std::fs::read(dir.join("env")).unwrap();
    raw.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

/// The arguments recorded by [`dump_script`] (after `$0`).
pub(crate) fn dumped_args(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args"))
        .unwrap()
        .lines()
        .map(|l| {
            l.strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// One `/proc/<pid>/stat` line, reduced to what the tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Proc {
    pub(crate) pid: i32,
    pub(crate) state: char,
    pub(crate) ppid: i32,
    pub(crate) pgrp: i32,
}

pub(crate) fn proc_stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        state,
        ppid,
        pgrp,
    })
}

/// Every process visible in `/proc`.
pub(crate) fn all_procs() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// Whether `pid` is a running (not dead, not zombie) process.
pub(crate) fn is_alive(pid: i32) -> bool {
    proc_stat(pid).is_some_and(|p| !matches!(p.state, 'Z' | 'X' | 'x'))
}

/// Polls `cond` every 10 ms for up to `limit`; returns whether it became true. Used to wait for
/// the kernel to finish an exit that was already caused, never to make a race go away.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads a pid written by a script into `path`, waiting for it to appear.
pub async fn read_pid(path: &Path) -> i32 {
    let mut text = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            text = std::fs::read_to_string(path).unwrap_or_default();
            text.ends_with('\n')
        })
        .await,
        "{} never written",
        path.display()
    );
    text.trim().parse().unwrap()
}

pub(crate) fn self_pid() -> i32 {
    std::process::id() as i32
}

/// Kills a process the test itself is responsible for (a background child it asked to survive).
pub(crate) fn kill(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}
