//! A real full disk: the spool on a 3 MiB tmpfs. Mounting needs root: run as another user the
//! test says so and does nothing (a privilege, not a package: `mount` is util-linux's, present
//! on every Debian); run as root (as CI is) a mount that fails is a test failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use hook_core::EventId;
use hook_spool::{Spool, SpoolErrorKind, State};

use crate::{event, options};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Whether this process runs as root (`id -u` prints 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn enospc_releases_the_ballast_and_acks_still_commit() {
    let mnt = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(mnt.path(), "3m") else {
        assert!(
            !is_root(),
            "running as root, yet `mount -t tmpfs` failed (is util-linux's mount installed?)"
        );
        eprintln!("not root: cannot mount a tmpfs, this test needs root (CI runs it)");
        return;
    };
    let mut o = options(&mnt.path().join("spool"));
    o.ballast_bytes = 512 * 1024;
    o.max_bytes = 1 << 30;
    let (spool, _) = Spool::open(o.clone()).unwrap();
    assert!(mnt.path().join("spool/spool.ballast").exists());
    let mut kept: Vec<EventId> = Vec::new();
    let mut refused = None;
    // Bursts of 256 durable appends (group commit), until the disk is full.
    'fill: for burst in 0..1000u64 {
        let mut waits = Vec::new();
        for k in 0..256 {
            let e = event(burst * 256 + k);
            match spool.append_durable(&e) {
                Ok(done) => waits.push((e.id(), done)),
                Err(err) => {
                    refused = Some(err);
                    break;
                }
            }
        }
        for (id, done) in waits {
            match done.wait() {
                Ok(()) => kept.push(id),
                Err(err) => refused = Some(err),
            }
        }
        if refused.is_some() {
            break 'fill;
        }
    }
    let err = refused.expect("the tmpfs filled up");
    assert_eq!(err.kind(), SpoolErrorKind::Full, "{err}");
    let c = spool.counters();
    assert_eq!(c.ballast_released, 1, "{c:?}");
    assert!(!mnt.path().join("spool/spool.ballast").exists());
    assert!(kept.len() > 1000, "{} events fitted", kept.len());
    // Deletes need free pages: with the ballast gone, acks commit.
    let (delivered, left) = kept.split_at(kept.len() / 2);
    spool.ack_many(delivered.iter().copied()).unwrap();
    spool.flush().wait().unwrap();
    assert_eq!(spool.status().unwrap().pending as usize, left.len());
    spool.close().unwrap();
    drop(spool);
    // Nothing acknowledged lost; the store opens clean.
    let (spool, report) = Spool::open(o).unwrap();
    assert!(report.corrupt.is_none(), "{:?}", report.corrupt);
    let pending: std::collections::BTreeSet<EventId> = spool
        .list(State::Pending, None, usize::MAX)
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    assert_eq!(pending.len(), left.len());
    assert!(left.iter().all(|id| pending.contains(id)));
}
