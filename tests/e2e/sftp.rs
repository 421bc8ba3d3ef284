//! The example SFTP server (`examples/sftp-server`) driven by OpenSSH's own `sftp` and `ssh`,
//! with a hook script that records its environment and a loopback HTTP endpoint.
//!
//! The server runs in-process (its library, on a runtime of its own), exactly as its binary runs
//! it; a test stops it the way the binary does on SIGTERM/Ctrl-C, by completing its shutdown
//! future. The configuration is loaded through `hooks::Loader` from an `sftpgo.json` plus
//! `SFTPGO_` variables, as the binary loads it. Every test waits for the hook to run while the
//! server is still up (so the event cannot come from the stop), then stops the server, whose
//! drained dispatcher tells exactly how many events there were.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hook_test_support::{
    ScriptRecord, ServerThread, TestServer, cargo_tree, read_records, record_script_body,
    wait_for_records, write_script,
};
use hooks::{HookConfig, ShutdownReport};
use sftp_server_example::{Settings, SftpServer, load_authorized_keys};

mod scp;

const USER: &str = "alice";
/// How long the "about 1.5 s" sessions stay open after their transfers.
const HOLD: Duration = Duration::from_millis(1500);
/// Generous: the machine is shared and slow.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A temporary directory with a client key pair, the served root, the client's working
/// directory, a config dir and a directory for the hook script's records.
struct Fixture {
    _dir: tempfile::TempDir,
    key: PathBuf,
    root: PathBuf,
    client: PathBuf,
    config_dir: PathBuf,
    records: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().to_owned();
        let [root, client, config_dir, records] =
            ["root", "client", "config", "records"].map(|name| {
                let path = base.join(name);
                std::fs::create_dir(&path).expect("mkdir");
                path
            });
        let key = base.join("id_ed25519");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f"])
            .arg(&key)
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen (package openssh-client; .ci/run installs it)");
        assert!(status.success(), "ssh-keygen failed: {status}");
        Fixture {
            _dir: dir,
            key,
            root,
            client,
            config_dir,
            records,
        }
    }

    /// A hook program that records its environment into `records`, then runs `tail`.
    fn record_script(&self, tail: &str) -> PathBuf {
        write_script(
            &self.config_dir,
            "post-disconnect.sh",
            &record_script_body(&self.records, tail),
        )
    }

    /// Writes `sftpgo.json` with this hook and `hooks` section, and loads it with `env` as the
    /// only environment variables.
    fn load(&self, hook: &str, hooks_section: &str, env: &[(&str, &str)]) -> HookConfig {
        let json = format!(
            r#"{{"common": {{"post_disconnect_hook": "{}"}}, "hooks": {{{hooks_section}}}}}"#,
            hook.replace('\\', "\\\\").replace('"', "\\\"")
        );
        std::fs::write(self.config_dir.join("sftpgo.json"), json).expect("write sftpgo.json");
        hooks::Loader::new()
            .config_dir(&self.config_dir)
            .env_vars(env.iter().copied())
            .load()
            .expect("valid configuration")
            .config
    }

    fn start_server(&self, config: HookConfig) -> RunningServer {
        let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), &self.root, USER);
        settings.authorized_keys =
            load_authorized_keys(&self.key.with_extension("pub")).expect("authorized keys");
        RunningServer::start(settings, config)
    }

    fn records(&self) -> Vec<ScriptRecord> {
        read_records(&self.records)
    }
}

/// The example server on a runtime of its own, stopped like the binary stops on SIGTERM.
struct RunningServer(ServerThread<Option<ShutdownReport>>);

impl RunningServer {
    fn start(settings: Settings, config: HookConfig) -> RunningServer {
        RunningServer(ServerThread::start(move |bound, stop| async move {
            let server = SftpServer::bind(settings, &config).await.expect("bind");
            bound.report(server.local_addr().expect("local addr"));
            server.run(stop.requested()).await
        }))
    }

    fn port(&self) -> u16 {
        self.0.port()
    }

    /// Stops the server (what SIGTERM does to the binary) and returns the dispatcher's report
    /// and how long the stop took.
    fn stop(self) -> (ShutdownReport, Duration) {
        let (report, took) = self.0.stop();
        (report.expect("a hook is configured"), took)
    }
}

/// The options every OpenSSH client gets: our key only, no host-key prompt or file, no user
/// configuration, no password prompt.
fn ssh_options(fx: &Fixture) -> Vec<String> {
    let mut options: Vec<String> = ["-F", "/dev/null", "-i"].map(String::from).to_vec();
    options.push(fx.key.display().to_string());
    for option in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        "LogLevel=ERROR",
    ] {
        options.push("-o".into());
        options.push(option.into());
    }
    options
}

/// A batch-mode `sftp` whose commands come from a pipe the test holds, so the session stays
/// open until [`quit`](SftpClient::quit).
struct SftpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    name: String,
    payload: String,
}

impl SftpClient {
    /// Starts `sftp -b -`, then puts `<name>.txt` (keeping its mode and times) and gets it back
    /// as `<name>-down.txt`.
    /// `own_group`: in a new process group (sftp and the ssh it runs), to kill both at once.
    fn start(fx: &Fixture, server: &RunningServer, name: &str, own_group: bool) -> SftpClient {
        let payload = format!("payload of session {name}\n");
        std::fs::write(fx.client.join(format!("{name}.txt")), &payload).unwrap();
        let mut command = Command::new("sftp");
        command
            .args(["-b", "-"])
            .args(ssh_options(fx))
            .args(["-P", &server.port().to_string()])
            .arg(format!("{USER}@127.0.0.1"))
            .current_dir(&fx.client)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if own_group {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .expect("sftp (package openssh-client; .ci/run installs it)");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "put -p {name}.txt {name}-up.txt").unwrap();
        writeln!(stdin, "get {name}-up.txt {name}-down.txt").unwrap();
        stdin.flush().unwrap();
        SftpClient {
            child,
            stdin: Some(stdin),
            name: name.to_owned(),
            payload,
        }
    }

    /// Waits until the file made the round trip (so the SFTP channel is open and working), and
    /// checks the server stored it.
    fn wait_transferred(&mut self, fx: &Fixture) {
        let down = fx.client.join(format!("{}-down.txt", self.name));
        let deadline = Instant::now() + WAIT;
        while std::fs::read_to_string(&down).ok().as_deref() != Some(self.payload.as_str()) {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr)
                    .unwrap();
                panic!("sftp exited ({status}) before the transfer: {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "transfer of {} timed out",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let stored = fx.root.join(format!("{}-up.txt", self.name));
        assert_eq!(std::fs::read_to_string(stored).unwrap(), self.payload);
    }

    /// Sends `quit`, closes the pipe and waits for a clean exit.
    fn quit(mut self) -> Output {
        let mut stdin = self.stdin.take().unwrap();
        writeln!(stdin, "quit").unwrap();
        drop(stdin);
        let output = self.child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "sftp failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// SIGKILL to sftp and its ssh: the TCP connection drops without any SSH close.
    fn kill(mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
            .expect("kill the sftp process group");
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "sftp was killed: {status}");
    }
}

/// `ssh ... echo hi`.
fn ssh_echo(fx: &Fixture, server: &RunningServer) -> Output {
    Command::new("ssh")
        .args(ssh_options(fx))
        .args(["-p", &server.port().to_string()])
        .arg(format!("{USER}@127.0.0.1"))
        .args(["echo", "hi"])
        .stdin(Stdio::null())
        .output()
        .expect("ssh (package openssh-client; .ci/run installs it)")
}

/// Checks the four variables of a record; returns the duration in ms.
fn assert_event(record: &ScriptRecord, protocol: &str) -> u64 {
    assert_eq!(record.env("SFTPGO_CONNECTION_PROTOCOL"), Some(protocol));
    assert_eq!(record.env("SFTPGO_CONNECTION_USERNAME"), Some(USER));
    assert_eq!(record.env("SFTPGO_CONNECTION_IP"), Some("127.0.0.1"));
    record
        .env("SFTPGO_CONNECTION_DURATION")
        .expect("SFTPGO_CONNECTION_DURATION")
        .parse()
        .expect("a whole number of ms")
}

fn assert_about_1_5_s(duration_ms: u64) {
    assert!(
        (1500..=5000).contains(&duration_ms),
        "a session held open 1.5 s after its transfers reports {duration_ms} ms"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn one_sftp_session_fires_one_program_hook_with_sftp_user_ip_and_duration() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    let mut client = SftpClient::start(&fx, &server, "one", false);
    client.wait_transferred(&fx);
    std::thread::sleep(HOLD); // the session under test: open about 1.5 s
    client.quit();

    let records = wait_for_records(&fx.records, 1, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(report.failed + report.abandoned + report.refused, 0);
    let records_after_stop = fx.records();
    assert_eq!(records_after_stop, records, "exactly one hook run");
    assert_about_1_5_s(assert_event(&records[0], "SFTP"));
}

#[test]
fn one_sftp_session_fires_one_http_hook_with_the_matching_query() {
    let fx = Fixture::new();
    let endpoint = TestServer::builder().start_blocking();
    // The file names a program; the SFTPGO_ variable overrides it with the endpoint's URL.
    let script = fx.record_script("");
    let url = endpoint.url("/disconnect");
    let config = fx.load(
        &script.to_string_lossy(),
        "",
        &[("SFTPGO_COMMON__POST_DISCONNECT_HOOK", url.as_str())],
    );
    let server = fx.start_server(config);

    let mut client = SftpClient::start(&fx, &server, "web", false);
    client.wait_transferred(&fx);
    std::thread::sleep(HOLD);
    client.quit();

    endpoint.blocking_wait_for_requests(1, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1, "exactly one request");
    assert!(fx.records().is_empty(), "the variable replaced the program");
    let request = &requests[0];
    assert_eq!(request.path(), "/disconnect");
    let duration: u64 = request
        .query_param("connection_duration")
        .expect("connection_duration")
        .parse()
        .unwrap();
    assert_about_1_5_s(duration);
    // SFTPGo's query, byte for byte: sorted keys.
    assert_eq!(
        request.query(),
        Some(
            format!("connection_duration={duration}&ip=127.0.0.1&protocol=SFTP&username={USER}")
                .as_str()
        )
    );
}

#[test]
fn two_sftp_sessions_at_once_fire_two_events() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    let mut first = SftpClient::start(&fx, &server, "first", false);
    let mut second = SftpClient::start(&fx, &server, "second", false);
    // Both open and working at the same time before either ends.
    first.wait_transferred(&fx);
    second.wait_transferred(&fx);
    first.quit();
    second.quit();

    let records = wait_for_records(&fx.records, 2, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 2, "{report:?}");
    assert_eq!(fx.records().len(), 2);
    for record in &records {
        assert_event(record, "SFTP");
    }
}

#[test]
fn ssh_echo_fires_one_ssh_event() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    let output = ssh_echo(&fx, &server);
    assert!(
        output.status.success(),
        "ssh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hi\n");

    let records = wait_for_records(&fx.records, 1, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(fx.records().len(), 1);
    let duration = assert_event(&records[0], "SSH");
    assert!(duration < 5000, "echo took {duration} ms");
}

#[test]
fn a_killed_sftp_client_still_fires_the_hook() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let server = fx.start_server(fx.load(&script.to_string_lossy(), "", &[]));

    let mut client = SftpClient::start(&fx, &server, "killed", true);
    client.wait_transferred(&fx);
    client.kill();

    // Fired by the dropped connection, while the server still runs.
    let records = wait_for_records(&fx.records, 1, WAIT);
    assert_event(&records[0], "SFTP");
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(fx.records().len(), 1);
}

#[test]
fn stopping_the_server_abandons_a_slow_hook_at_the_deadline_and_reports() {
    let fx = Fixture::new();
    let script = fx.record_script("exec sleep 30");
    let config = fx.load(&script.to_string_lossy(), r#""shutdown_deadline": 1"#, &[]);
    let server = fx.start_server(config);

    assert!(ssh_echo(&fx, &server).status.success());
    wait_for_records(&fx.records, 1, WAIT); // the hook is running (sleeping) now

    let (report, took) = server.stop();
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert_eq!(report.delivered + report.failed, 0, "{report:?}");
    assert!(
        took >= Duration::from_millis(900),
        "the stop waited for the hook up to the 1 s deadline, not {took:?}"
    );
    assert!(
        took < Duration::from_secs(15),
        "the stop did not wait for the 30 s hook: {took:?}"
    );
}

#[test]
fn stopping_the_server_waits_for_a_running_hook_within_the_deadline() {
    let fx = Fixture::new();
    let script = fx.record_script("sleep 2");
    let config = fx.load(&script.to_string_lossy(), r#""shutdown_deadline": 30"#, &[]);
    let server = fx.start_server(config);

    assert!(ssh_echo(&fx, &server).status.success());
    wait_for_records(&fx.records, 1, WAIT); // the hook has started its 2 s sleep

    let (report, took) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(report.abandoned + report.failed, 0, "{report:?}");
    assert!(
        took >= Duration::from_millis(500),
        "the stop returned before the running hook ended: {took:?}"
    );
}

#[test]
fn the_library_crates_do_not_depend_on_russh() {
    for library in [
        "hook-http",
        "hook-tls",
        "hook-exec",
        "hooks",
        "hook-core",
        "hook-config",
    ] {
        let tree = cargo_tree(&["-e", "normal", "-p", library]);
        assert!(
            tree.contains(library),
            "cargo tree -p {library} printed {tree}"
        );
        assert!(
            !tree.lines().any(|line| line.starts_with("russh")),
            "{library} depends on russh:\n{tree}"
        );
    }
    // The check can fail: the example's own tree does hold russh.
    assert!(
        cargo_tree(&["-e", "normal", "-p", "sftp-server-example"])
            .lines()
            .any(|l| l.starts_with("russh "))
    );
}

#[test]
fn with_a_spool_an_event_the_endpoint_missed_is_kept_and_delivered_by_the_next_start() {
    let fx = Fixture::new();
    let refused = hook_test_support::RefusedPort::new();
    let down = refused.url("/disconnect");
    // Deferred events keep their due time across the restart: a short schedule.
    let spool = r#""shutdown_deadline": 1, "spool": {"dir": "spool", "min_free_bytes": 0,
        "redeliver_min": 0.2, "redeliver_max": 0.5}"#;
    let config = fx.load(&down, spool, &[("SFTPGO_HTTP__RETRY_MAX", "0")]);
    assert_eq!(
        config.hooks.spool.dir,
        fx.config_dir.join("spool").display().to_string()
    );
    let server = fx.start_server(config);
    let out = ssh_echo(&fx, &server);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The endpoint is down: the event is deferred (and probed again), then kept at stop.
    std::thread::sleep(Duration::from_millis(700));
    let (report, _) = server.stop();
    assert_eq!(report.kept, 1, "{report:?}");
    assert_eq!(report.delivered, 0);

    // The next start, with the endpoint up, delivers it.
    let endpoint = TestServer::builder().start_blocking();
    let up = endpoint.url("/disconnect");
    let config = fx.load(&up, spool, &[("SFTPGO_HTTP__RETRY_MAX", "0")]);
    let server = fx.start_server(config);
    let requests = endpoint.blocking_wait_for_requests(1, WAIT);
    assert_eq!(requests[0].query_param("protocol").as_deref(), Some("SSH"));
    assert_eq!(requests[0].query_param("username").as_deref(), Some(USER));
    let (report, _) = server.stop();
    assert_eq!((report.delivered, report.kept), (1, 0), "{report:?}");
}
