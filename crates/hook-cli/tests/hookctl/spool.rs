//! `hookctl fire` with a spool and `hookctl spool status|list|replay|retry|purge`, exactly as
//! documented: output, exit codes, and exit 2 when the spool is locked, missing or damaged.

use std::path::Path;
use std::time::{Duration, SystemTime};

use hook_test_support::{RefusedPort, Response, TestServer};
use hooks::spool::{Spool, SpoolOptions};
use hooks::{DisconnectEvent, Protocol};

use crate::support::*;

/// A config dir whose `sftpgo.json` points at `url` with a spool in `<dir>/spool` and a
/// compressed redelivery schedule.
fn spool_dir_for(url: &str, max_age: f64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sftpgo.json",
        &format!(
            r#"{{"common": {{"post_disconnect_hook": "{url}"}}, "http": {{"retry_max": 0}},
                "hooks": {{"spool": {{"dir": "spool", "redeliver_min": 0.1, "redeliver_max": 0.2,
                "max_age": {max_age}, "min_free_bytes": 0}}}}}}"#
        ),
    );
    dir
}

fn spool_path(dir: &Path) -> std::path::PathBuf {
    dir.join("spool")
}

fn ev(name: &str) -> DisconnectEvent {
    DisconnectEvent::new(
        "203.0.113.9",
        Protocol::Ftp,
        name,
        Duration::from_millis(42),
    )
}

/// A spool with one pending (`p`), one deferred (`d`, error "HTTP 503") and one dead (`x`,
/// reason "gone") event. Returns their ids as text.
fn three_states(dir: &Path) -> [String; 3] {
    let (spool, _) = Spool::open(SpoolOptions::new(spool_path(dir))).unwrap();
    let (p, d, x) = (ev("p"), ev("d"), ev("x"));
    for e in [&p, &d, &x] {
        spool.append(e).unwrap();
    }
    spool.flush().wait().unwrap();
    spool
        .defer(
            d.id(),
            SystemTime::now() + Duration::from_secs(3600),
            "HTTP 503",
        )
        .unwrap();
    spool.mark_dead(x.id(), "gone").unwrap();
    spool.close().unwrap();
    [p.id().to_string(), d.id().to_string(), x.id().to_string()]
}

#[test]
fn fire_with_a_spool_appends_all_first_then_delivers_and_waits() {
    let server = TestServer::builder()
        .respond_seq([Response::status(503), Response::status(503)])
        .start_blocking();
    let dir = spool_dir_for(&server.url("/hook"), 60.0);
    let out = hookctl(
        dir.path(),
        &["fire", "--events", "40", "--username", "u{n}"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).lines().any(|l| l == "spooled=40"),
        "{}",
        stderr(&out)
    );
    assert_eq!(summary_value(&out, "events"), 40.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);
    // Two got a 503 first and were redelivered (deferred ones are waited for).
    let reqs = server.blocking_wait_for_requests(42, Duration::from_secs(10));
    let mut names: Vec<String> = reqs
        .iter()
        .map(|r| r.query_param("username").unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 40);

    let out = hookctl(dir.path(), &["spool", "status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (v["pending"].as_u64(), v["deferred"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn fire_with_a_spool_counts_dead_events_as_failed() {
    let refused = RefusedPort::new();
    let dir = spool_dir_for(&refused.url("/hook"), 0.5);
    let out = hookctl(dir.path(), &["fire", "--events", "3"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("spooled=3"));
    assert_eq!(summary_value(&out, "failed"), 3.0);
    let out = hookctl(dir.path(), &["spool", "status"], &[]);
    assert!(
        stdout(&out).starts_with("pending=0 deferred=0 dead=3 "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn status_and_list_show_every_state() {
    let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
    let [p, d, x] = three_states(dir.path());

    let out = hookctl(dir.path(), &["spool", "status"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with("pending=1 deferred=1 dead=1 bytes="),
        "{line}"
    );
    assert!(line.contains(" oldest_age_s="), "{line}");

    let out = hookctl(dir.path(), &["spool", "status", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["pending"], 1);
    assert_eq!(v["deferred"], 1);
    assert_eq!(v["dead"], 1);
    assert!(v["bytes"].as_u64().unwrap() > 0);
    assert!(v["oldest_age_s"].as_f64().unwrap() >= 0.0);
    assert!(v["next_due"].as_str().unwrap().ends_with('Z'));

    // One tab-separated line per event: pending, deferred, dead.
    let out = hookctl(dir.path(), &["spool", "list"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&out));
    assert_eq!(lines[0][..3], [p, "pending".into(), "0".into()]);
    assert_eq!(lines[0][3..], ["-", "-", "203.0.113.9", "FTP", "p", "42"]);
    assert_eq!(lines[1][..3], [d, "deferred".into(), "1".into()]);
    assert!(lines[1][3].ends_with('Z'), "{:?}", lines[1]);
    assert_eq!(lines[1][4], "HTTP 503");
    assert_eq!(lines[2][..2], [x.clone(), "dead".into()]);
    assert_eq!(lines[2][4], "gone");

    let out = hookctl(
        dir.path(),
        &["spool", "list", "--state", "dead", "--json"],
        &[],
    );
    let objects: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 1);
    let o = &objects[0];
    assert_eq!(o["id"], x.as_str());
    assert_eq!(o["state"], "dead");
    assert_eq!(o["last_error"], "gone");
    assert_eq!(o["ip"], "203.0.113.9");
    assert_eq!(o["protocol"], "FTP");
    assert_eq!(o["username"], "x");
    assert_eq!(o["duration_ms"], 42);
    assert!(o["next_attempt"].is_null());

    let out = hookctl(dir.path(), &["spool", "list", "--state", "weird"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn retry_and_purge() {
    let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
    let [_, _, x] = three_states(dir.path());
    let out = hookctl(dir.path(), &["spool", "retry", "--id", &x], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "retried=1");
    let out = hookctl(dir.path(), &["spool", "list", "--state", "pending"], &[]);
    assert_eq!(stdout(&out).lines().count(), 2);
    let out = hookctl(dir.path(), &["spool", "retry", "--id", "not-an-id"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not-an-id"), "{}", stderr(&out));
    let out = hookctl(dir.path(), &["spool", "retry"], &[]);
    assert_eq!(out.status.code(), Some(2));

    let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
    three_states(dir.path());
    let out = hookctl(dir.path(), &["spool", "retry", "--dead"], &[]);
    assert_eq!(stdout(&out).trim(), "retried=1");
    let out = hookctl(dir.path(), &["spool", "status"], &[]);
    assert!(stdout(&out).starts_with("pending=2 deferred=1 dead=0 "));

    let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
    three_states(dir.path());
    let out = hookctl(dir.path(), &["spool", "purge", "--dead"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = hookctl(dir.path(), &["spool", "purge", "--dead", "--yes"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "purged=1");
    let out = hookctl(dir.path(), &["spool", "purge", "--all", "--yes"], &[]);
    assert_eq!(stdout(&out).trim(), "purged=2");
    let out = hookctl(dir.path(), &["spool", "status"], &[]);
    assert!(stdout(&out).starts_with("pending=0 deferred=0 dead=0 "));
}

#[test]
fn replay_delivers_pending_and_exits_0_or_1() {
    let server = TestServer::builder().start_blocking();
    let dir = spool_dir_for(&server.url("/hook"), 60.0);
    three_states(dir.path());
    // The deferred one is due in an hour: not waited for; exit 1.
    let out = hookctl(dir.path(), &["spool", "replay", "--wait-max", "0.2"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 1.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);
    let reqs = server.blocking_wait_for_requests(1, Duration::from_secs(10));
    assert_eq!(reqs[0].query_param("username").as_deref(), Some("p"));
    assert!(stderr(&out).contains("1 event(s) left"), "{}", stderr(&out));

    // Only dead events left after a purge of the deferred one's spool: exit 0.
    let dir = spool_dir_for(&server.url("/hook"), 60.0);
    let (spool, _) = Spool::open(SpoolOptions::new(spool_path(dir.path()))).unwrap();
    let e = ev("soon");
    spool.append(&e).unwrap();
    spool.flush().wait().unwrap();
    spool
        .defer(
            e.id(),
            SystemTime::now() + Duration::from_millis(300),
            "HTTP 503",
        )
        .unwrap();
    spool.close().unwrap();
    drop(spool);
    let out = hookctl(dir.path(), &["spool", "replay", "--wait-max", "20"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 1.0);
    let reqs = server.blocking_wait_for_requests(2, Duration::from_secs(10));
    assert_eq!(reqs[1].query_param("username").as_deref(), Some("soon"));

    // The endpoint down: what is left is kept, exit 1.
    let refused = RefusedPort::new();
    let dir = spool_dir_for(&refused.url("/hook"), 60.0);
    three_states(dir.path());
    let out = hookctl(dir.path(), &["spool", "replay"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = hookctl(dir.path(), &["spool", "status"], &[]);
    assert!(
        stdout(&out).starts_with("pending=0 deferred=2 dead=1 "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn every_spool_subcommand_exits_2_when_locked_missing_damaged_or_unconfigured() {
    let subcommands: [&[&str]; 6] = [
        &["spool", "status"],
        &["spool", "list"],
        &["spool", "replay"],
        &["spool", "retry", "--dead"],
        &["spool", "purge", "--all", "--yes"],
        &["spool", "status", "--json"],
    ];
    // Locked: a running process holds it (here, this test process).
    let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
    three_states(dir.path());
    let held = Spool::open(SpoolOptions::new(spool_path(dir.path()))).unwrap();
    for args in subcommands {
        let out = hookctl(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("in use by another process")
                && err.contains(&spool_path(dir.path()).display().to_string()),
            "{args:?}: {err}"
        );
    }
    drop(held);

    // Missing: configured, but nothing there.
    let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
    for args in subcommands {
        let out = hookctl(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("no spool in"),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // Damaged.
    for args in subcommands {
        let dir = spool_dir_for("http://127.0.0.1:9/hook", 60.0);
        std::fs::create_dir(spool_path(dir.path())).unwrap();
        std::fs::write(
            spool_path(dir.path()).join("spool.redb"),
            vec![0xA5; 20_000],
        )
        .unwrap();
        let out = hookctl(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("damaged"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }

    // Not configured.
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(dir.path(), &["spool", "status"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("hooks.spool.dir"), "{}", stderr(&out));
}
