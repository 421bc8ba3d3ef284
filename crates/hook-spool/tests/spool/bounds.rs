//! max_bytes, the free-space floor, dead_max, the ballast, option validation.

use std::time::{Duration, Instant};

use hook_spool::{Spool, SpoolErrorKind, State};

use crate::{event, options};

#[test]
fn max_bytes_refuses_appends_never_evicts_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.max_bytes = 64 * 1024;
    let (spool, _) = Spool::open(o).unwrap();
    let mut kept = Vec::new();
    let mut refused = None;
    for n in 0..10_000 {
        let e = event(n);
        let started = Instant::now();
        match spool.append(&e) {
            Ok(()) => kept.push(e.id()),
            Err(err) => {
                // Refused at once: no blocking, no I/O.
                assert!(started.elapsed() < Duration::from_secs(1));
                refused = Some(err);
                break;
            }
        }
    }
    let err = refused.expect("the bound was reached");
    assert_eq!(err.kind(), SpoolErrorKind::Full);
    assert!(err.is_full());
    assert!(err.to_string().contains("max_bytes 65536"), "{err}");
    assert!(kept.len() > 100, "{} appends fitted", kept.len());
    spool.flush().wait().unwrap();
    // Everything accepted is there: nothing pending is evicted.
    let status = spool.status().unwrap();
    assert_eq!(status.pending as usize, kept.len());
    assert!(status.bytes <= 64 * 1024);
    assert_eq!(status.counters.refused_full, 1);
    // Still refused...
    assert!(spool.append(&event(20_000)).unwrap_err().is_full());
    // ...until some are delivered.
    spool.ack_many(kept.drain(..50)).unwrap();
    spool.flush().wait().unwrap();
    spool
        .append_durable(&event(20_001))
        .unwrap()
        .wait()
        .unwrap();
    let durable = spool.append_durable(&event(20_002));
    assert!(durable.is_ok());
}

#[test]
fn free_space_floor_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.min_free_bytes = u64::MAX;
    let (spool, _) = Spool::open(o).unwrap();
    let err = spool.append(&event(1)).unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::Full);
    assert!(err.to_string().contains("min_free_bytes"), "{err}");
    assert!(spool.append_durable(&event(2)).unwrap_err().is_full());
}

#[test]
fn dead_letters_are_bounded_oldest_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.dead_max = 10;
    let (spool, _) = Spool::open(o).unwrap();
    let events: Vec<_> = (0..25).map(event).collect();
    for e in &events {
        spool.append(e).unwrap();
        spool.mark_dead(e.id(), "HTTP 400").unwrap();
    }
    spool.flush().wait().unwrap();
    let status = spool.status().unwrap();
    assert_eq!(status.dead, 10);
    assert_eq!(status.counters.dead_evicted, 15);
    let dead: Vec<_> = spool
        .list(State::Dead, None, 100)
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    // The oldest by id (UUIDv7: creation time, to the millisecond) were evicted.
    let mut by_id: Vec<_> = events.iter().map(|e| e.id()).collect();
    by_id.sort();
    assert_eq!(dead, by_id[15..], "the oldest were evicted");
}

#[test]
fn ballast_file_is_made_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.ballast_bytes = 256 * 1024;
    let (_spool, _) = Spool::open(o).unwrap();
    let len = std::fs::metadata(dir.path().join("spool.ballast"))
        .unwrap()
        .len();
    assert_eq!(len, 256 * 1024);
}

#[test]
fn invalid_options_name_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.max_bytes = 10;
    let err = Spool::open(o).unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::InvalidOptions);
    assert!(err.to_string().contains("max_bytes"), "{err}");
    let mut o = options(dir.path());
    o.max_batch = 0;
    assert!(
        Spool::open(o)
            .unwrap_err()
            .to_string()
            .contains("max_batch")
    );
    let err = Spool::open(hook_spool::SpoolOptions::new("")).unwrap_err();
    assert!(err.to_string().contains("dir"), "{err}");
}

#[test]
fn unusable_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Spool::open(options(&file.join("spool"))).unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::Io);
    assert!(err.to_string().contains("a-file"), "{err}");
}

/// The file bound: copy-on-write makes the file outgrow its records; once it passes
/// `max_bytes` (+ the empty store's size) appends are refused, and after acks the file is
/// compacted before the flush is answered, so appends resume.
#[test]
fn file_over_its_bound_is_compacted_after_acks() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.max_bytes = 1024 * 1024;
    let (spool, _) = Spool::open(o).unwrap();
    let mut kept = Vec::new();
    let mut refused = None;
    'fill: for burst in 0..100u64 {
        for k in 0..256 {
            let e = event(burst * 256 + k);
            match spool.append(&e) {
                Ok(()) => kept.push(e.id()),
                Err(err) => {
                    refused = Some(err);
                    break 'fill;
                }
            }
        }
        spool.flush().wait().unwrap();
    }
    let err = refused.expect("a bound was reached");
    assert!(err.to_string().contains("its file has grown"), "{err}");
    spool.flush().wait().unwrap();
    let before = spool.status().unwrap();
    assert!(before.file_bytes > 1024 * 1024);
    spool.ack_many(kept.drain(..kept.len() * 3 / 4)).unwrap();
    spool.flush().wait().unwrap();
    let after = spool.status().unwrap();
    assert!(after.counters.compactions >= 1, "{after:?}");
    assert!(
        after.file_bytes < before.file_bytes,
        "{} -> {}",
        before.file_bytes,
        after.file_bytes
    );
    assert_eq!(
        after.pending as usize,
        kept.len(),
        "only the acked were removed"
    );
    spool
        .append_durable(&event(1 << 40))
        .unwrap()
        .wait()
        .unwrap();
}
