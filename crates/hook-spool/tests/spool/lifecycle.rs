//! The state machine, replay order, persistence across reopen, the lock.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, SystemTime};

use hook_core::EventId;
use hook_spool::{Purge, Spool, SpoolErrorKind, State};

use crate::{event, open, options};

/// `time` to the millisecond, as the spool keeps it.
fn hook_spool_ms(time: SystemTime) -> SystemTime {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

#[test]
fn records_move_through_every_state_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, report) = open(dir.path());
    assert!(report.created && report.corrupt.is_none());
    assert_eq!((report.pending, report.deferred, report.dead), (0, 0, 0));
    let events: Vec<_> = (0..6).map(event).collect();
    for e in &events {
        spool.append_durable(e).unwrap().wait().unwrap();
    }
    let now = SystemTime::now();
    spool.ack(events[0].id()).unwrap();
    spool
        .defer(events[1].id(), now + Duration::from_secs(3600), "HTTP 503")
        .unwrap();
    spool
        .defer(
            events[2].id(),
            now - Duration::from_secs(1),
            "connection refused",
        )
        .unwrap();
    spool
        .mark_dead(events[3].id(), "expired after 86400 s")
        .unwrap();
    spool.flush().wait().unwrap();

    let status = spool.status().unwrap();
    assert_eq!(
        (status.pending, status.deferred, status.dead),
        (2, 2, 1),
        "{status:?}"
    );
    assert!(status.bytes > 0);
    assert!(status.oldest_age(SystemTime::now()).unwrap() < Duration::from_secs(60));
    let deferred = spool.list(State::Deferred, None, 10).unwrap();
    assert_eq!(deferred.len(), 2);
    assert!(deferred[0].id() < deferred[1].id(), "id order");
    let refused = deferred.iter().find(|r| r.id() == events[2].id()).unwrap();
    assert_eq!(refused.attempts(), 1);
    assert_eq!(refused.last_error(), Some("connection refused"));
    assert_eq!(
        refused.next_attempt().unwrap(),
        hook_spool_ms(now - Duration::from_secs(1))
    );
    let after_first = spool
        .list(State::Deferred, Some(deferred[0].id()), 10)
        .unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].id(), deferred[1].id());
    let dead = spool.get(events[3].id()).unwrap().unwrap();
    assert_eq!(dead.state(), State::Dead);
    assert_eq!(dead.last_error(), Some("expired after 86400 s"));
    assert_eq!(dead.event(), &events[3], "every field kept, the id too");
    assert!(
        spool.get(events[0].id()).unwrap().is_none(),
        "acked: removed"
    );

    // Due deferred -> pending; the other stays.
    let due = spool.take_due(SystemTime::now(), 10).wait().unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id(), events[2].id());
    assert_eq!(due[0].state(), State::Pending);
    assert_eq!(due[0].attempts(), 1, "attempts kept");
    assert!(spool.next_due().unwrap().unwrap() > SystemTime::now());

    spool.close().unwrap();
    assert_eq!(
        spool.append(&event(99)).unwrap_err().kind(),
        SpoolErrorKind::Closed
    );
    drop(spool);

    // Reopen: everything committed is there.
    let (spool, report) = open(dir.path());
    assert!(!report.created && report.corrupt.is_none());
    assert_eq!((report.pending, report.deferred, report.dead), (3, 1, 1));
    let pending: Vec<EventId> = spool
        .list(State::Pending, None, 100)
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    let mut expected = vec![events[2].id(), events[4].id(), events[5].id()];
    expected.sort();
    assert_eq!(pending, expected);
    assert_eq!(report.replay_until, expected.last().copied());

    // Dead -> pending, then purge.
    assert_eq!(
        spool
            .retry(&[events[3].id(), events[4].id()])
            .wait()
            .unwrap(),
        1
    );
    assert_eq!(
        spool.get(events[3].id()).unwrap().unwrap().state(),
        State::Pending
    );
    spool.mark_dead(events[4].id(), "HTTP 404").unwrap();
    spool.mark_dead(events[5].id(), "HTTP 404").unwrap();
    assert_eq!(spool.retry_dead().wait().unwrap(), 2);
    spool.mark_dead(events[5].id(), "HTTP 404").unwrap();
    assert_eq!(spool.purge(Purge::Dead).wait().unwrap(), 1);
    let status = spool.status().unwrap();
    assert_eq!((status.pending, status.deferred, status.dead), (3, 1, 0));
    assert_eq!(spool.purge(Purge::All).wait().unwrap(), 4);
    let status = spool.status().unwrap();
    assert_eq!(
        (status.pending, status.deferred, status.dead, status.bytes),
        (0, 0, 0, 0)
    );
}

#[test]
fn pending_records_list_oldest_first_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path());
    let mut ids = Vec::new();
    for n in 0..250 {
        let e = event(n);
        ids.push(e.id());
        spool.append(&e).unwrap();
    }
    spool.flush().wait().unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = spool.list(State::Pending, after, 64).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 64);
        after = page.last().map(|r| r.id());
        seen.extend(page.iter().map(|r| r.id()));
    }
    // Every record once, oldest first to the millisecond (UUIDv7 order; within one ms the
    // order of ids is not the order of creation once the 12-bit counter wraps).
    assert_eq!(seen.len(), 250);
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>()
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order");
    assert!(
        seen.windows(2).all(|w| w[0].unix_ms() <= w[1].unix_ms()),
        "oldest first"
    );
}

#[test]
fn second_open_of_a_directory_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path());
    let err = Spool::open(options(dir.path())).unwrap_err();
    assert_eq!(err.kind(), SpoolErrorKind::Locked);
    assert!(err.is_locked());
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(err.path(), Some(dir.path()));
    drop(spool);
    // Released with the spool.
    let (_spool, report) = open(dir.path());
    assert!(report.corrupt.is_none());
}

/// The lock is held against other processes too (flock semantics): a child `flock -n` fails.
#[test]
fn the_lock_is_visible_to_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (_spool, _) = open(dir.path());
    let lock = dir.path().join("spool.lock");
    let status = std::process::Command::new("flock")
        .args(["-n", "-E", "42"])
        .arg(&lock)
        .arg("true")
        .status()
        .expect("flock(1) (Debian package util-linux; .ci/run installs it)");
    assert_eq!(status.code(), Some(42), "another process got the lock");
}

#[test]
fn durable_completion_is_a_future_too() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path());
    let e = event(1);
    let done = spool.append_durable(&e).unwrap();
    // A minimal executor: poll with a thread-unparking waker.
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut done = std::pin::pin!(done);
    loop {
        match done.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => break result.unwrap(),
            std::task::Poll::Pending => std::thread::park(),
        }
    }
    assert_eq!(spool.get(e.id()).unwrap().unwrap().state(), State::Pending);
}

#[test]
fn acks_of_committed_events_remove_them() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(dir.path());
    let events: Vec<_> = (0..100).map(event).collect();
    for e in &events {
        spool.append_durable(e).unwrap().wait().unwrap();
    }
    spool.ack_many(events.iter().map(|e| e.id())).unwrap();
    spool.flush().wait().unwrap();
    let status = spool.status().unwrap();
    assert_eq!(status.pending, 0);
    assert_eq!(status.counters.acked, 100);
    assert_eq!(
        status.counters.committed + status.counters.acked_before_commit,
        100
    );
    assert_eq!(status.bytes, 0);
}
