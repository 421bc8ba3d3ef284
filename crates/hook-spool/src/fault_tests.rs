//! Failing and power-losing storage under the real writer and store (redb on a test backend).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hook_core::{DisconnectEvent, EventId, Protocol};

use crate::fsutil;
use crate::redb_store::{OpenFailure, RedbStore};
use crate::store::{Store, StoreOp};
use crate::testing::{Disk, EIO, ENOSPC, Fault, Gate, MemBackend, Rng, power_loss_image};
use crate::{Completion, Spool, SpoolErrorKind, SpoolOptions, SpoolRecord, State};

fn event(n: u64) -> DisconnectEvent {
    DisconnectEvent::new(
        format!("10.0.{}.{}", n / 250, n % 250),
        Protocol::Sftp,
        format!("user{n}"),
        Duration::from_millis(n),
    )
}

fn open(backend: MemBackend) -> RedbStore {
    match RedbStore::open_backend(backend) {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e:?}"),
    }
}

fn ids(store: &dyn Store, state: State) -> BTreeSet<EventId> {
    store
        .list(state, None, usize::MAX)
        .unwrap()
        .iter()
        .map(SpoolRecord::id)
        .collect()
}

/// A spool on `disk`, its directory (lock, ballast) in `dir`.
fn spool_on(disk: &Disk, dir: &std::path::Path, tune: impl FnOnce(&mut SpoolOptions)) -> Spool {
    let mut options = SpoolOptions::new(dir);
    options.min_free_bytes = 0;
    options.ballast_bytes = 0;
    tune(&mut options);
    let lock = fsutil::lock_dir(dir).unwrap();
    let store = open(disk.backend());
    let reopen_disk = disk.clone();
    let opener: crate::writer::Opener = Box::new(move || {
        RedbStore::open_backend(reopen_disk.backend())
            .map(|s| (Box::new(s) as Box<dyn Store>, false))
            .map_err(|e| crate::SpoolError::new(SpoolErrorKind::Storage, format!("{e:?}")))
    });
    let (spool, _report) =
        Spool::start(options, lock, Box::new(store), true, None, opener).unwrap();
    spool
}

/// Power loss at every kind of point: after each cut of the operation log, the store opens (and
/// verifies), and holds the state of the last acknowledged (durable) commit, or of a later commit
/// up to and including the durable one in flight. One batch in four holds only removes (acks)
/// and is committed without a sync, as the writer does. Seeded loops: 4 histories x 150 cuts,
/// half of them with writes torn at 512-byte sectors.
#[test]
fn power_loss_never_loses_an_acknowledged_commit() {
    let mut outcomes = [0u32; 2]; // [at the acknowledged commit, a later one]
    for seed in 1..=4u64 {
        let mut rng = Rng::new(seed);
        let disk = Disk::new();
        let store = open(disk.backend());
        disk.start_log();
        let mut model: BTreeSet<EventId> = BTreeSet::new();
        // (log length when the commit returned, durable, state after it)
        let mut snapshots = vec![(0usize, true, model.clone())];
        let mut n = seed * 1_000_000;
        for batch in 0..40 {
            let acks_only = batch % 4 == 3;
            let mut ops = Vec::new();
            if !acks_only {
                for _ in 0..=rng.below(64) {
                    n += 1;
                    let record = SpoolRecord::new_pending(event(n), n);
                    model.insert(record.id());
                    ops.push(StoreOp::Put(record.encoded()));
                }
            }
            let existing: Vec<EventId> = model.iter().copied().collect();
            for id in existing {
                if rng.below(3) == 0 {
                    model.remove(&id);
                    ops.push(StoreOp::Remove(id));
                }
            }
            store.apply(&ops, !acks_only, 1000).unwrap();
            snapshots.push((disk.with(|s| s.log.len()), !acks_only, model.clone()));
        }
        drop(store);
        let (base, log) = disk.with(|s| (s.base.clone(), s.log.clone()));
        for crash in 0..150 {
            let cut = rng.below(log.len() as u64 + 1) as usize;
            let image = power_loss_image(&base, &log, cut, &mut rng, crash % 2 == 1);
            let store = match RedbStore::open_backend(Disk::from_image(image).backend()) {
                Ok(store) => store,
                Err(e) => panic!(
                    "seed {seed} cut {cut}/{}: no open after power loss: {e:?}",
                    log.len()
                ),
            };
            let found = ids(&store, State::Pending);
            let acked = snapshots
                .iter()
                .rposition(|(at, durable, _)| *durable && *at <= cut)
                .unwrap();
            let in_flight = (acked + 1..snapshots.len())
                .find(|&i| snapshots[i].1)
                .unwrap_or(snapshots.len() - 1);
            match (acked..=in_flight).find(|&i| snapshots[i].2 == found) {
                Some(i) if i == acked => outcomes[0] += 1,
                Some(_) => outcomes[1] += 1,
                None => panic!(
                    "seed {seed} cut {cut}: after power loss the store holds {} records, the \
                     acknowledged commit {acked} has {}",
                    found.len(),
                    snapshots[acked].2.len()
                ),
            }
            let counts = store.counts().unwrap();
            assert_eq!(counts.pending, found.len() as u64);
        }
    }
    eprintln!("power loss: {outcomes:?} (at the acknowledged commit, a later one)");
    assert_eq!(outcomes.iter().sum::<u32>(), 600);
}

/// EIO and ENOSPC on the Nth `write` or `sync_data`: the writer reopens the store and commits
/// the batch again; every durable append resolves Ok and is there after a reopen.
#[test]
fn failed_write_or_sync_is_retried_after_a_reopen() {
    for (i, fault_at) in [1u64, 2, 3, 5, 8].into_iter().enumerate() {
        for errno in [EIO, ENOSPC] {
            for on_sync in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let disk = Disk::new();
                let spool = spool_on(&disk, dir.path(), |_| {});
                let (writes, syncs) = disk.counts();
                disk.add_fault(if on_sync {
                    Fault::Sync {
                        n: syncs + fault_at,
                        errno,
                    }
                } else {
                    Fault::Write {
                        n: writes + fault_at,
                        errno,
                    }
                });
                let mut appended = Vec::new();
                for chunk in 0..10u64 {
                    let waits: Vec<Completion<()>> = (0..20)
                        .filter_map(|k| {
                            let e = event(chunk * 100 + k + i as u64 * 10_000);
                            match spool.append_durable(&e) {
                                Ok(done) => {
                                    appended.push(e.id());
                                    Some(done)
                                }
                                // While the writer handles an ENOSPC, new appends may be
                                // refused (typed); what was accepted must be kept.
                                Err(err) if errno == ENOSPC && err.is_full() => None,
                                Err(err) => panic!("append refused: {err}"),
                            }
                        })
                        .collect();
                    for w in waits {
                        w.wait().unwrap_or_else(|e| {
                            panic!("fault at {fault_at} errno {errno} sync {on_sync}: {e}")
                        });
                    }
                }
                assert!(
                    appended.len() >= 150,
                    "{} of 200 appends accepted",
                    appended.len()
                );
                let c = spool.counters();
                let failures = disk.with(|s| s.failures);
                assert_eq!(
                    failures, 1,
                    "fault at {fault_at} errno {errno} sync {on_sync}: fired once"
                );
                assert!(c.failed_commits >= 1 && c.reopened >= 1, "{c:?}");
                assert_eq!(c.lost_appends, 0);
                spool.close().unwrap();
                drop(spool);
                let store = open(disk.backend());
                let found = ids(&store, State::Pending);
                for id in &appended {
                    assert!(found.contains(id), "acknowledged {id} lost");
                }
            }
        }
    }
}

/// A full disk (every write past a size fails with ENOSPC): durable appends fail with a typed
/// `Full` error, the ballast is released, nothing acknowledged is lost, and once space is back
/// appends and acks work again.
#[test]
fn full_disk_refuses_with_full_releases_ballast_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new();
    let spool = spool_on(&disk, dir.path(), |o| o.ballast_bytes = 64 * 1024);
    assert!(fsutil::has_ballast(dir.path()), "ballast created at open");
    let mut kept = Vec::new();
    for n in 0..50 {
        let e = event(n);
        spool.append_durable(&e).unwrap().wait().unwrap();
        kept.push(e.id());
    }
    let len = disk.with(|s| s.data.len() as u64);
    disk.add_fault(Fault::Full { bytes: len });
    let mut refused = 0;
    for n in 50..3000 {
        let e = event(n);
        match spool.append_durable(&e) {
            Ok(done) => match done.wait() {
                Ok(()) => kept.push(e.id()), // fitted in free pages
                Err(e) => {
                    assert_eq!(e.kind(), SpoolErrorKind::Full, "{e}");
                    refused += 1;
                    break;
                }
            },
            Err(e) => {
                assert_eq!(e.kind(), SpoolErrorKind::Full, "{e}");
                refused += 1;
                break;
            }
        }
    }
    assert_eq!(refused, 1, "the full disk was reached");
    let c = spool.counters();
    assert_eq!(c.ballast_released, 1, "{c:?}");
    // The real file system under `dir` has room, so the writer has already made a new ballast.
    assert!(
        fsutil::has_ballast(dir.path()),
        "ballast recreated once space is back"
    );
    // Space is back.
    disk.clear_faults();
    let e = event(5000);
    spool.append_durable(&e).unwrap().wait().unwrap();
    kept.push(e.id());
    spool.ack(kept[0]).unwrap();
    spool.flush().wait().unwrap();
    let status = spool.status().unwrap();
    assert_eq!(status.pending as usize, kept.len() - 1);
    spool.close().unwrap();
    drop(spool);
    let store = open(disk.backend());
    let found = ids(&store, State::Pending);
    for id in &kept[1..] {
        assert!(found.contains(id), "acknowledged {id} lost");
    }
    assert!(!found.contains(&kept[0]));
}

/// Group commit and the ack-before-commit path, with the writer held inside a commit: appends
/// return at once while it is blocked; everything queued meanwhile goes into one transaction;
/// an event acked before its append was committed is never written (no write, no sync).
#[test]
fn group_commit_and_ack_before_commit_cost_no_io() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new();
    let spool = spool_on(&disk, dir.path(), |o| o.max_batch = 4096);
    let gate = Arc::new(Gate::default());
    disk.with(|s| s.gate = Some(Arc::clone(&gate)));
    // Open the gate whatever happens, so that a failed assertion does not hang the drop.
    struct OpenOnDrop(Arc<Gate>);
    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let _open = OpenOnDrop(Arc::clone(&gate));
    // Hold the writer in the sync of the first commit.
    let first = spool.append_durable(&event(0)).unwrap();
    while gate.waiting() == 0 {
        std::thread::yield_now();
    }
    let commits_before = spool.counters().commits;
    // The caller is not blocked while the writer is: 500 appends, then acks for 200 of them.
    let events: Vec<DisconnectEvent> = (1..=500).map(event).collect();
    for e in &events {
        spool.append(e).unwrap();
    }
    for e in &events[..200] {
        spool.ack(e.id()).unwrap();
    }
    assert_eq!(
        spool.queued(),
        501,
        "the held append and the 500 are queued"
    );
    let (writes_held, _) = disk.counts();
    gate.set(true);
    first.wait().unwrap();
    spool.flush().wait().unwrap();
    let c = spool.counters();
    assert_eq!(c.acked_before_commit, 200, "{c:?}");
    assert_eq!(c.committed, 1 + 300);
    assert!(
        c.commits - commits_before <= 3,
        "500 queued appends took {} commits",
        c.commits - commits_before
    );
    let status = spool.status().unwrap();
    assert_eq!(status.pending, 301);
    assert!(disk.counts().0 > writes_held);
    // Now only acked-before-commit traffic while the writer is held again: no I/O at all.
    gate.set(false);
    let blocker = spool.append_durable(&event(9999)).unwrap();
    while gate.waiting() == 0 {
        std::thread::yield_now();
    }
    let more: Vec<DisconnectEvent> = (10_000..10_100).map(event).collect();
    for e in &more {
        spool.append(e).unwrap();
        spool.ack(e.id()).unwrap();
    }
    gate.set(true);
    blocker.wait().unwrap();
    let after_blocker = disk.counts();
    // The 100 pairs are one batch, drained after the blocker's commit: cancelled, not written.
    spool.flush().wait().unwrap();
    let c = spool.counters();
    assert_eq!(c.acked_before_commit, 300, "{c:?}");
    assert_eq!(
        disk.counts(),
        after_blocker,
        "cancelled pairs (and an empty flush) did no I/O"
    );
    spool.close().unwrap();
}

/// A store that fails to reopen leaves the spool unavailable: typed errors, no panic, no hang.
#[test]
fn unreopenable_store_makes_the_spool_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new();
    let mut options = SpoolOptions::new(dir.path());
    options.min_free_bytes = 0;
    options.ballast_bytes = 0;
    let lock = fsutil::lock_dir(dir.path()).unwrap();
    let store = open(disk.backend());
    let opener: crate::writer::Opener = Box::new(|| {
        Err(crate::SpoolError::new(
            SpoolErrorKind::Io,
            "simulated: the disk is gone",
        ))
    });
    let (spool, _) = Spool::start(options, lock, Box::new(store), true, None, opener).unwrap();
    disk.add_fault(Fault::Write {
        n: disk.counts().0 + 1,
        errno: EIO,
    });
    let err = spool.append_durable(&event(1)).unwrap().wait().unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::Unavailable, "{err}");
    let err = spool.append(&event(2)).unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::Unavailable, "{err}");
    spool.flush().wait().unwrap_err();
    assert!(spool.status().unwrap_err().is_unavailable());
    assert!(spool.take_due(SystemTime::now(), 10).wait().is_err());
    spool.close().unwrap_err();
    let _ = OpenFailure::Locked;
}

/// `max_queued` appends waiting for a writer held inside a commit: the next is refused with
/// `Busy` at once (never blocks); once the writer moves on, appends are accepted again.
#[test]
fn too_many_queued_appends_are_refused_busy() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new();
    let spool = spool_on(&disk, dir.path(), |o| o.max_queued = 10);
    let gate = Arc::new(Gate::default());
    disk.with(|s| s.gate = Some(Arc::clone(&gate)));
    struct OpenOnDrop(Arc<Gate>);
    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let _open = OpenOnDrop(Arc::clone(&gate));
    let held = spool.append_durable(&event(0)).unwrap();
    while gate.waiting() == 0 {
        std::thread::yield_now();
    }
    for n in 1..10 {
        spool.append(&event(n)).unwrap();
    }
    let err = spool.append(&event(10)).unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::Busy, "{err}");
    assert!(err.to_string().contains("max_queued"), "{err}");
    assert_eq!(spool.counters().refused_busy, 1);
    gate.set(true);
    held.wait().unwrap();
    spool.flush().wait().unwrap();
    spool.append_durable(&event(11)).unwrap().wait().unwrap();
    assert_eq!(spool.status().unwrap().pending, 11);
}

/// Ack-only batches commit without a sync; `flush` syncs them: after a power cut right after
/// the flush returned, the acked records are gone; without the flush they may come back (a
/// duplicate delivery, never a loss).
#[test]
fn flush_makes_ack_only_commits_durable() {
    for flush in [true, false] {
        for seed in 0..10u64 {
            let dir = tempfile::tempdir().unwrap();
            let disk = Disk::new();
            let spool = spool_on(&disk, dir.path(), |o| {
                o.ack_flush_interval = Duration::from_millis(1);
            });
            let events: Vec<DisconnectEvent> = (0..10).map(event).collect();
            for e in &events {
                spool.append_durable(e).unwrap().wait().unwrap();
            }
            disk.start_log();
            spool
                .ack_many(events[..5].iter().map(DisconnectEvent::id))
                .unwrap();
            // Let the ack-only batch commit (unsynced), then flush (an empty, synced commit).
            while spool.counters().acked < 5 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if flush {
                spool.flush().wait().unwrap();
            }
            let (base, log) = disk.with(|s| (s.base.clone(), s.log.clone()));
            let mut rng = Rng::new(seed + 1);
            let image = power_loss_image(&base, &log, log.len(), &mut rng, seed % 2 == 1);
            let store = open(Disk::from_image(image).backend());
            let found = ids(&store, State::Pending);
            let unacked: BTreeSet<EventId> = events[5..].iter().map(|e| e.id()).collect();
            assert!(found.is_superset(&unacked), "a durable append was lost");
            if flush {
                assert_eq!(found, unacked, "flushed acks survive the power cut");
            } else {
                assert!(found.len() <= 10);
            }
            drop(store);
            spool.close().unwrap();
        }
    }
}
