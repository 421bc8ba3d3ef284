use std::time::Duration;

use crate::support::*;
use hook_test_support::{Response, TestServer, read_records, write_script};

#[test]
fn one_event_at_a_script_prints_the_outcome_and_summary() {
    let hook = recording_hook("echo \"hello $SFTPGO_CONNECTION_USERNAME\"; echo oops >&2");
    let (dir, rec, script) = (&hook.dir, &hook.records, hook.script.as_str());
    write(
        dir.path(),
        "sftpgo.json",
        &format!(
            r#"{{"command": {{"env": ["A=1"], "commands": [{{"path": "{script}", "args": ["x", ""]}}]}}}}"#
        ),
    );
    let out = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            script,
            "--ip",
            "not-an-ip",
            "--protocol",
            "SCP",
            "--username",
            "bob",
            "--duration-ms",
            "1234",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("delivered: backend=exec status=exit status 0 attempts=1"),
        "{text}"
    );
    assert!(text.contains("hello bob"), "{text}");
    assert!(text.contains("oops"), "{text}");
    assert_eq!(summary_value(&out, "events"), 1.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);

    let records = read_records(rec.path());
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.args, ["x", ""]);
    assert_eq!(r.env("A"), Some("1"));
    assert_eq!(r.env("SFTPGO_CONNECTION_IP"), Some("not-an-ip"));
    assert_eq!(r.env("SFTPGO_CONNECTION_PROTOCOL"), Some("SCP"));
    assert_eq!(r.env("SFTPGO_CONNECTION_USERNAME"), Some("bob"));
    assert_eq!(r.env("SFTPGO_CONNECTION_DURATION"), Some("1234"));
    assert_eq!(r.env("PATH"), None);
}

#[test]
fn defaults_of_the_event() {
    let hook = recording_hook("exit 0");
    let (dir, rec, script) = (&hook.dir, &hook.records, hook.script.as_str());
    let out = hookctl(dir.path(), &["fire", "--hook", script], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = &read_records(rec.path())[0];
    assert_eq!(r.env("SFTPGO_CONNECTION_IP"), Some("127.0.0.1"));
    assert_eq!(r.env("SFTPGO_CONNECTION_PROTOCOL"), Some("SFTP"));
    assert_eq!(r.env("SFTPGO_CONNECTION_USERNAME"), Some(""));
    assert_eq!(r.env("SFTPGO_CONNECTION_DURATION"), Some("0"));
}

#[test]
fn a_failing_hook_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "fail.sh",
        "#!/bin/sh\necho broken >&2\nexit 3\n",
    );
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", script.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("failed: "), "{text}");
    assert!(
        text.contains("kind=exit_status") && text.contains("exit status 3"),
        "{text}"
    );
    assert!(text.contains("broken"), "{text}");
    assert_eq!(summary_value(&out, "failed"), 1.0);
}

#[test]
fn no_hook_anywhere_exits_2_saying_where_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(dir.path(), &["fire"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("common.post_disconnect_hook")
            && err.contains("SFTPGO_COMMON__POST_DISCONNECT_HOOK")
            && err.contains("--hook"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["fire", "--hook", "/bin/true", "--protocol", "sftp"][..],
        &["fire", "--hook", "/bin/true", "--events", "0"],
        &["fire", "--hook", "relative.sh"],
        &["fire", "--hook", "/no/such/program"],
        &["fire", "--bogus"],
        &[],
    ] {
        let out = hookctl(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = hookctl(dir.path(), &["fire", "--hook", "relative.sh"], &[]);
    assert!(
        stderr(&out).contains("--hook: \"relative.sh\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_protocol_outside_the_default_filter_is_still_fired() {
    let hook = recording_hook("exit 0");
    let (dir, rec, script) = (&hook.dir, &hook.records, hook.script.as_str());
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", script, "--protocol", "DAV"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read_records(rec.path())[0].env("SFTPGO_CONNECTION_PROTOCOL"),
        Some("DAV")
    );
}

#[test]
fn json_prints_one_object_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", "/bin/true", "--events", "5", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for line in &lines[..5] {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["delivered"], true);
        assert_eq!(v["backend"], "exec");
        assert_eq!(v["status"]["exit"], 0);
        assert_eq!(v["attempts"], 1);
    }
    assert_eq!(summary_value(&out, "events"), 5.0);
}

#[test]
fn http_hook_from_the_environment_with_the_file_s_headers() {
    let server = TestServer::builder().start_blocking();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sftpgo.json",
        r#"{"http": {"headers": [{"key": "X-Api-Key", "value": "k3y", "url": ""}]}}"#,
    );
    let url = server.url("/hook?token=abc");
    let out = hookctl(
        dir.path(),
        &["fire", "--username", "john doe", "--duration-ms", "7"],
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", &url)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("delivered: backend=http status=HTTP 200 attempts=1"));
    let reqs = server.blocking_wait_for_requests(1, Duration::from_secs(10));
    assert_eq!(
        reqs[0].target,
        "/hook?connection_duration=7&ip=127.0.0.1&protocol=SFTP&token=abc&username=john+doe"
    );
    assert_eq!(reqs[0].header("x-api-key"), Some("k3y"));
}

#[test]
fn http_failure_after_retries_exits_1() {
    let server = TestServer::builder()
        .default_response(Response::status(503))
        .start_blocking();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sftpgo.json",
        r#"{"http": {"retry_max": 2, "retry_wait_min": 0, "retry_wait_max": 0}}"#,
    );
    let out = hookctl(dir.path(), &["fire", "--hook", &server.url("/h")], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("status=HTTP 503 attempts=3"), "{text}");
    assert_eq!(server.request_count(), 3);
}

#[test]
fn a_storm_of_10000_http_events_is_delivered_in_full() {
    let server = TestServer::builder().start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(
        dir.path(),
        &["fire", "--hook", &server.url("/storm"), "--events", "10000"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 10000.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);
    server.blocking_wait_for_requests(10_000, Duration::from_secs(30));
    assert_eq!(server.request_count(), 10_000);
}

#[test]
fn a_storm_shows_a_progress_bar_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let hook = write_script(dir.path(), "slow.sh", "#!/bin/sh\nexec /bin/sleep 0.1\n");
    let cmd = format!(
        "{} fire --hook {} --events 8 --concurrency 1",
        env!("CARGO_BIN_EXE_hookctl"),
        hook.display()
    );
    // `script` gives the command a pseudo-terminal for stdout and stderr.
    let out = std::process::Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TERM", "xterm")
        .output()
        .expect("util-linux script");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{tty}");
    assert!(
        tty.contains("/8 events"),
        "no progress bar on a terminal: {tty:?}"
    );
    assert!(tty.contains("events=8 failed=0"), "{tty}");

    // Not a terminal: no bar, stdout has the summary line only.
    let plain = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            hook.to_str().unwrap(),
            "--events",
            "8",
            "--concurrency",
            "1",
        ],
        &[],
    );
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(!stderr(&plain).contains("events"), "{}", stderr(&plain));
    assert_eq!(stdout(&plain).lines().count(), 1);
}

#[test]
fn a_storm_bigger_than_the_queue_is_fed_as_outcomes_return() {
    let dir = tempfile::tempdir().unwrap();
    let out = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            "/bin/true",
            "--events",
            "40",
            "--concurrency",
            "2",
            "--json",
        ],
        &[("SFTPGO_HOOKS__QUEUE_CAPACITY", "3")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary_value(&out, "events"), 40.0);
    assert_eq!(summary_value(&out, "failed"), 0.0);
    assert_eq!(stdout(&out).lines().count(), 41);
    // Nothing was refused along the way (a refusal is logged at WARN).
    assert!(!stderr(&out).contains("refused"), "{}", stderr(&out));
}

#[test]
fn username_placeholder_is_the_event_index() {
    let server = TestServer::builder().start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/hook");
    let out = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            &url,
            "--events",
            "4",
            "--username",
            "u{n}-{n}",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reqs = server.blocking_wait_for_requests(4, Duration::from_secs(10));
    let mut names: Vec<String> = reqs
        .iter()
        .map(|r| r.query_param("username").unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["u0-0", "u1-1", "u2-2", "u3-3"]);
    // Without the placeholder, the name is used verbatim.
    let out = hookctl(
        dir.path(),
        &[
            "fire",
            "--hook",
            &url,
            "--events",
            "2",
            "--username",
            "{x}n",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reqs = server.blocking_wait_for_requests(6, Duration::from_secs(10));
    assert_eq!(reqs[5].query_param("username").as_deref(), Some("{x}n"));
}
