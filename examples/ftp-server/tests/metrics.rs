//! `ftp-server --metrics-address`: after a real `curl` FTP session whose hook ran, `/metrics`
//! shows the delivered event and the spool's commits with their durations (a spool is
//! configured), and `promtool check metrics` accepts the scrape.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use hook_test_support::{free_port, http_get, record_script_body, wait_for_records, write_script};

#[test]
fn metrics_address_serves_the_delivered_event_of_an_ftp_session() {
    let dir = tempfile::tempdir().unwrap();
    let [root, config, records] = ["root", "config", "records"].map(|name| {
        let path = dir.path().join(name);
        std::fs::create_dir(&path).unwrap();
        path
    });
    let script = write_script(&config, "hook.sh", &record_script_body(&records, ""));
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "secret\n").unwrap();
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    let (mut server, _stdout, port) = common::spawn_and_read_port(
        Command::new(env!("CARGO_BIN_EXE_ftp-server"))
            .arg("--root")
            .arg(&root)
            .args(["--user", "alice", "--password-file"])
            .arg(&password_file)
            .args(["--address", "127.0.0.1", "--port", "0", "--config-dir"])
            .arg(&config)
            .args(["--metrics-address", &metrics.to_string()])
            .env("SFTPGO_COMMON__POST_DISCONNECT_HOOK", &script)
            // Relative to the config dir; the server opens it at start.
            .env("SFTPGO_HOOKS__SPOOL__DIR", "spool")
            .env_remove("SFTPGO_CONFIG_DIR")
            .env_remove("SFTPGO_CONFIG_FILE")
            .stderr(Stdio::null()),
    );

    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .arg(format!("ftp://alice:secret@127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert!(curl.status.success(), "{curl:?}");
    wait_for_records(&records, 1, Duration::from_secs(30));

    // The outcome is recorded right after the hook returns: poll the exporter briefly.
    let deadline = Instant::now() + Duration::from_secs(30);
    let scrape = loop {
        let (status, body) = http_get(metrics, "/metrics").expect("GET /metrics");
        assert_eq!(status, 200);
        let delivered = body.lines().any(|l| {
            l.starts_with("hooks_events_delivered_total{")
                && l.contains(r#"backend="exec""#)
                && l.ends_with(" 1")
        });
        // The event's append was committed (and timed) before or while its hook ran.
        let commit_timed = body.lines().any(|l| {
            l.strip_prefix("hooks_spool_commit_duration_seconds_count ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n >= 1)
        });
        if delivered && commit_timed {
            break body;
        }
        assert!(Instant::now() < deadline, "no delivered event in:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with("hooks_delivery_duration_seconds_count{") && l.ends_with(" 1")),
        "{scrape}"
    );
    // A histogram with the buckets of hooks::metrics::HISTOGRAM_BUCKETS (not a summary).
    assert!(
        scrape
            .lines()
            .any(|l| l.starts_with(r#"hooks_spool_commit_duration_seconds_bucket{le="0.0001"}"#)),
        "{scrape}"
    );
    assert!(
        scrape.contains("# TYPE hooks_spool_commit_duration_seconds histogram"),
        "{scrape}"
    );
    assert!(
        !scrape.contains("alice") && !scrape.contains("127.0.0.1"),
        "{scrape}"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(checked.status.success(), "{checked:?}");

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    assert!(server.wait().unwrap().success());
}
