//! Legacy SCP (`scp -O`) against the example SSH server, with OpenSSH 9's own `scp`: what
//! arrives on disk, what the client prints and exits with, and what the hook received.
//!
//! A child of the `sftp` module: it shares its fixture (key pair, served root, recording hook
//! script, in-process server stopped like SIGTERM stops the binary).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use hook_test_support::{TestServer, wait_for_records};

use super::{Fixture, RunningServer, USER, WAIT, assert_event, ssh_echo, ssh_options};

/// `scp -O` (the legacy protocol, not SFTP) with the fixture's options, from the client dir.
fn scp(fx: &Fixture, server: &RunningServer, args: &[&str]) -> (Output, Duration) {
    let began = Instant::now();
    let output = Command::new("scp")
        .arg("-O")
        .args(ssh_options(fx))
        .args(["-P", &server.port().to_string()])
        .args(args)
        .current_dir(&fx.client)
        .stdin(Stdio::null())
        .output()
        .expect("scp (package openssh-client; .ci/run installs it)");
    (output, began.elapsed())
}

fn remote(path: &str) -> String {
    format!("{USER}@127.0.0.1:{path}")
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "scp failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
}

/// Waits for exactly one hook run, stops the server, and checks nothing else ran: returns the
/// event's duration in ms after checking protocol SCP, the user and the IP.
fn one_scp_event(fx: &Fixture, server: RunningServer, client_took: Duration) -> u64 {
    let records = wait_for_records(&fx.records, 1, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(report.failed + report.abandoned + report.refused, 0);
    assert_eq!(fx.records(), records, "exactly one hook run");
    let duration = assert_event(&records[0], "SCP");
    // The channel lives inside the client's run: its duration cannot be longer.
    assert!(
        u128::from(duration) <= client_took.as_millis(),
        "the SCP channel lasted {duration} ms, the whole scp run {client_took:?}"
    );
    duration
}

#[test]
fn scp_upload_of_one_mib_fires_one_scp_event_lasting_the_transfer() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));
    let data = random_bytes(1 << 20);
    std::fs::write(fx.client.join("up.bin"), &data).unwrap();

    // -l 4096 Kbit/s: 1 MiB (8.4 Mbit) cannot take less than about 2 s, so the event's
    // duration must cover at least that much of the session.
    let (output, took) = scp(&fx, &server, &["-l", "4096", "up.bin", &remote("/up.bin")]);
    assert_success(&output);
    assert_eq!(std::fs::read(fx.root.join("up.bin")).unwrap(), data);

    let duration = one_scp_event(&fx, server, took);
    assert!(
        duration >= 1500,
        "a rate-limited 1 MiB upload reported {duration} ms"
    );
}

#[test]
fn scp_p_upload_into_a_directory_keeps_times_and_mode() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));
    std::fs::create_dir(fx.root.join("inbox")).unwrap();
    let local = fx.client.join("report.txt");
    std::fs::write(&local, b"quarterly numbers\n").unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mtime = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&local)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let (output, took) = scp(&fx, &server, &["-p", "report.txt", &remote("/inbox")]);
    assert_success(&output);
    let stored = fx.root.join("inbox/report.txt");
    assert_eq!(std::fs::read(&stored).unwrap(), b"quarterly numbers\n");
    let metadata = std::fs::metadata(&stored).unwrap();
    assert_eq!(metadata.modified().unwrap(), mtime, "-p kept the mtime");
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o640,
        "-p kept the mode"
    );

    one_scp_event(&fx, server, took);
}

#[test]
fn scp_download_is_byte_for_byte_the_served_file() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));
    std::fs::write(fx.root.join("served.bin"), random_bytes(1 << 20)).unwrap();

    let (output, took) = scp(&fx, &server, &[&remote("/served.bin"), "down.bin"]);
    assert_success(&output);
    let cmp = Command::new("cmp")
        .arg(fx.root.join("served.bin"))
        .arg(fx.client.join("down.bin"))
        .output()
        .expect("cmp");
    assert!(
        cmp.status.success(),
        "cmp: {}",
        String::from_utf8_lossy(&cmp.stdout)
    );

    one_scp_event(&fx, server, took);
}

#[test]
fn scp_of_a_missing_file_exits_1_with_the_servers_message() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    let (output, took) = scp(&fx, &server, &[&remote("/missing.bin"), "."]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("scp: /missing.bin: No such file or directory"),
        "scp printed: {stderr}"
    );
    assert!(!fx.client.join("missing.bin").exists());

    one_scp_event(&fx, server, took);
}

#[test]
fn scp_r_copies_a_tree_both_ways_one_event_each() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));
    let tree = fx.client.join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("top.txt"), b"top\n").unwrap();
    std::fs::write(tree.join("a/b/deep.bin"), random_bytes(100_000)).unwrap();
    std::fs::create_dir(tree.join("empty")).unwrap();

    let (up, up_took) = scp(&fx, &server, &["-r", "tree", &remote("/")]);
    assert_success(&up);
    let records = wait_for_records(&fx.records, 1, WAIT);
    assert_eq!(records.len(), 1);
    assert_event(&records[0], "SCP");

    let (down, down_took) = scp(&fx, &server, &["-r", &remote("/tree"), "tree-down"]);
    assert_success(&down);
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(fx.client.join("tree-down"))
        .output()
        .expect("diff");
    assert!(diff.status.success(), "{diff:?}");
    assert!(fx.root.join("tree/empty").is_dir());

    let records = wait_for_records(&fx.records, 2, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 2, "{report:?}");
    assert_eq!(fx.records(), records, "exactly two hook runs");
    for record in &records {
        let duration = assert_event(record, "SCP");
        assert!(u128::from(duration) <= up_took.max(down_took).as_millis());
    }
}

#[test]
fn an_upload_outside_the_root_stays_inside_it() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));
    std::fs::write(fx.client.join("x.txt"), b"x\n").unwrap();

    // `..` cannot climb above the served root: this lands in the root itself.
    let (output, took) = scp(&fx, &server, &["x.txt", &remote("/../../x.txt")]);
    assert_success(&output);
    assert_eq!(std::fs::read(fx.root.join("x.txt")).unwrap(), b"x\n");
    assert!(!fx.root.parent().unwrap().join("x.txt").exists());

    one_scp_event(&fx, server, took);
}

#[test]
fn scp_with_fewer_than_two_arguments_is_refused_and_fires_nothing() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    let refused = Command::new("ssh")
        .args(ssh_options(&fx))
        .args(["-p", &server.port().to_string()])
        .arg(format!("{USER}@127.0.0.1"))
        .args(["scp", "-t"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");
    // Then a command that does fire: the only event is its SSH one.
    assert!(ssh_echo(&fx, &server).status.success());

    let records = wait_for_records(&fx.records, 1, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(fx.records().len(), 1);
    assert_event(&records[0], "SSH");
}

#[test]
fn an_scp_command_line_the_server_does_not_run_exits_1_and_still_fires_scp() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    // Two arguments: SCP by SFTPGo's rule, even though `-x` is refused.
    let began = Instant::now();
    let output = Command::new("ssh")
        .args(ssh_options(&fx))
        .args(["-p", &server.port().to_string()])
        .arg(format!("{USER}@127.0.0.1"))
        .args(["scp", "-x", "/a"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("scp: unsupported option -x"),
        "the fatal message: {stdout:?}"
    );

    one_scp_event(&fx, server, began.elapsed());
}

#[test]
fn scp_upload_fires_one_http_hook_with_protocol_scp() {
    let fx = Fixture::new();
    let endpoint = TestServer::builder().start_blocking();
    let server = fx.start_server(fx.load(&endpoint.url("/scp"), "", &[]));
    std::fs::write(fx.client.join("web.txt"), b"web\n").unwrap();

    let (output, took) = scp(&fx, &server, &["web.txt", &remote("/web.txt")]);
    assert_success(&output);

    endpoint.blocking_wait_for_requests(1, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1, "exactly one request");
    let duration: u64 = requests[0]
        .query_param("connection_duration")
        .expect("connection_duration")
        .parse()
        .unwrap();
    assert!(u128::from(duration) <= took.as_millis());
    assert_eq!(
        requests[0].query(),
        Some(
            format!("connection_duration={duration}&ip=127.0.0.1&protocol=SCP&username={USER}")
                .as_str()
        )
    );
}
