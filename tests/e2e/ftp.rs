//! The example FTP server (`examples/ftp-server`, libunftp) driven by real clients: `curl`,
//! `lftp`, Python's `ftplib`, and raw Python sockets for the ways a session can end without a
//! QUIT (no login, a reset, the idle timeout).
//!
//! As in the SFTP tests, the server runs in-process on a runtime of its own and is stopped the
//! way its binary stops on SIGTERM; every test waits for the hook while the server still runs
//! (so the event cannot come from the stop), then stops it, and the drained dispatcher's
//! report tells exactly how many events there were. Durations are checked against what the
//! client did (it held the session at least so long; the event came before the test saw it),
//! never against how fast anything ran.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ftp_server_example::{FtpServer, Settings};
use hook_test_support::{
    ScriptRecord, ServerThread, TestServer, cargo_tree, read_records, record_script_body,
    wait_for_records, write_script,
};
use hooks::{HookConfig, ShutdownReport};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret pass";
/// Generous: the machine is shared and slow.
const WAIT: Duration = Duration::from_secs(30);

/// A temporary served root, config dir, and directory of the hook script's records.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    client: PathBuf,
    config_dir: PathBuf,
    records: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let [root, client, config_dir, records] =
            ["root", "client", "config", "records"].map(|name| {
                let path = dir.path().join(name);
                std::fs::create_dir(&path).expect("mkdir");
                path
            });
        Fixture {
            _dir: dir,
            root,
            client,
            config_dir,
            records,
        }
    }

    fn record_script(&self, tail: &str) -> PathBuf {
        write_script(
            &self.config_dir,
            "post-disconnect.sh",
            &record_script_body(&self.records, tail),
        )
    }

    /// Writes `sftpgo.json` with this hook and `hooks` section and loads it as the binary does.
    fn load(&self, hook: &str, hooks_section: &str) -> HookConfig {
        let json = format!(
            r#"{{"common": {{"post_disconnect_hook": "{}"}}, "hooks": {{{hooks_section}}}}}"#,
            hook.replace('\\', "\\\\").replace('"', "\\\"")
        );
        std::fs::write(self.config_dir.join("sftpgo.json"), json).expect("write sftpgo.json");
        hooks::Loader::new()
            .config_dir(&self.config_dir)
            .env_vars(std::iter::empty::<(&str, &str)>())
            .load()
            .expect("valid configuration")
            .config
    }

    fn settings(&self) -> Settings {
        let mut settings =
            Settings::new("127.0.0.1:0".parse().unwrap(), &self.root, USER, PASSWORD);
        settings.stop_grace = Duration::from_secs(1);
        settings
    }

    fn start(&self, config: HookConfig) -> RunningServer {
        RunningServer::start(self.settings(), config)
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
            let server = FtpServer::bind(settings, &config).await.expect("bind");
            bound.report(server.local_addr().expect("local addr"));
            server.run(stop.requested()).await
        }))
    }

    fn port(&self) -> u16 {
        self.0.port()
    }

    fn url(&self, path: &str) -> String {
        format!("ftp://{USER}:s3cret%20pass@127.0.0.1:{}{path}", self.port())
    }

    /// Stops the server (what SIGTERM does to the binary) and returns the dispatcher's report
    /// and how long the stop took.
    fn stop(self) -> (ShutdownReport, Duration) {
        let (report, took) = self.0.stop();
        (report.expect("a hook is configured"), took)
    }
}

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what} ({e}; .ci/run installs it)"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn curl(args: &[&str]) -> Output {
    run(
        Command::new("curl")
            .args(["-sS", "--max-time", "60"])
            .args(args),
        "curl",
    )
}

/// Python clients: `ftplib` for a whole session, raw sockets for the odd endings. Prints what
/// the server said, one reply per line.
const PYTHON: &str = r#"
import ftplib, io, socket, struct, sys, time
mode, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hold = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    print(f.readline().decode().strip())
    return s, f

def say(s, f, line):
    s.sendall(line.encode() + b"\r\n")
    reply = f.readline().decode().strip()
    print(reply)
    return reply

if mode == "ftplib":
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=60)
    ftp.login(user, password)
    ftp.storbinary("STOR py.txt", io.BytesIO(b"from ftplib\n"))
    print("NLST", " ".join(sorted(ftp.nlst())))
    ftp.quit()
elif mode == "leave":            # connect, never log in, close (FIN) after `hold`
    s, f = conn(); time.sleep(hold); s.close()
elif mode == "wrong":            # wait `hold`, wrong password, QUIT
    s, f = conn(); time.sleep(hold)
    say(s, f, "USER " + user); assert say(s, f, "PASS wrong").startswith("530")
    assert say(s, f, "QUIT").startswith("221"); s.close()
elif mode == "reset":            # wait `hold`, log in, wait `hold`, close with an RST
    s, f = conn(); time.sleep(hold)
    say(s, f, "USER " + user); assert say(s, f, "PASS " + password).startswith("230")
    time.sleep(hold)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
elif mode == "idle":             # wait `hold`, log in, then wait for the server to close
    s, f = conn(); time.sleep(hold)
    say(s, f, "USER " + user); assert say(s, f, "PASS " + password).startswith("230")
    for line in f:
        print(line.decode().strip())
    print("EOF"); s.close()
elif mode == "hold":             # log in, then keep the session open until the server ends it
    s, f = conn()
    say(s, f, "USER " + user); assert say(s, f, "PASS " + password).startswith("230")
    print("READY", flush=True)
    for line in f:
        print(line.decode().strip())
    print("EOF"); s.close()
"#;

fn python(server: &RunningServer, mode: &str, hold: Duration) -> Output {
    run(
        Command::new("python3").args([
            "-c",
            PYTHON,
            mode,
            &server.port().to_string(),
            USER,
            PASSWORD,
            &hold.as_secs_f64().to_string(),
        ]),
        "python3",
    )
}

/// Checks protocol FTP, the IP and the username of a record; returns its duration in ms.
fn assert_ftp_event(record: &ScriptRecord, username: &str) -> u64 {
    assert_eq!(record.env("SFTPGO_CONNECTION_PROTOCOL"), Some("FTP"));
    assert_eq!(record.env("SFTPGO_CONNECTION_USERNAME"), Some(username));
    assert_eq!(record.env("SFTPGO_CONNECTION_IP"), Some("127.0.0.1"));
    record
        .env("SFTPGO_CONNECTION_DURATION")
        .expect("SFTPGO_CONNECTION_DURATION")
        .parse()
        .expect("a whole number of ms")
}

/// Waits for `n` hook runs while the server runs, stops it, checks nothing else ran.
fn exactly(fx: &Fixture, server: RunningServer, n: usize) -> Vec<ScriptRecord> {
    let records = wait_for_records(&fx.records, n, WAIT);
    let (report, _) = server.stop();
    assert_eq!(report.delivered, n as u64, "{report:?}");
    assert_eq!(report.failed + report.abandoned + report.refused, 0);
    assert_eq!(fx.records(), records, "exactly {n} hook runs");
    records
}

fn program_hook_server(fx: &Fixture) -> RunningServer {
    let script = fx.record_script("");
    fx.start(fx.load(&script.to_string_lossy(), ""))
}

// ---------------------------------------------------------------------------------------------
// Real clients
// ---------------------------------------------------------------------------------------------

#[test]
fn curl_upload_and_list_fire_one_ftp_event_each() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);
    let local = fx.client.join("up.txt");
    std::fs::write(&local, b"uploaded by curl\n").unwrap();

    curl(&["-T", &local.to_string_lossy(), &server.url("/up.txt")]);
    assert_eq!(
        std::fs::read(fx.root.join("up.txt")).unwrap(),
        b"uploaded by curl\n"
    );
    wait_for_records(&fx.records, 1, WAIT);
    let listing = curl(&[&server.url("/")]);
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("up.txt"),
        "LIST: {listing:?}"
    );

    for record in exactly(&fx, server, 2) {
        assert_ftp_event(&record, USER);
    }
}

#[test]
fn lftp_put_cls_bye_fires_one_ftp_event() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);
    std::fs::write(fx.client.join("l.txt"), b"uploaded by lftp\n").unwrap();

    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; \
         open -u {USER},'{PASSWORD}' ftp://127.0.0.1:{}; put l.txt -o lftp.txt; cls -1; bye",
        server.port()
    );
    let output = run(
        Command::new("lftp")
            .args(["-c", &script])
            .current_dir(&fx.client)
            .env("HOME", &fx.client),
        "lftp (package lftp)",
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("lftp.txt"),
        "cls: {output:?}"
    );
    assert_eq!(
        std::fs::read(fx.root.join("lftp.txt")).unwrap(),
        b"uploaded by lftp\n"
    );

    assert_ftp_event(&exactly(&fx, server, 1)[0], USER);
}

#[test]
fn python_ftplib_login_stor_nlst_quit_fires_one_ftp_event() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);

    let output = python(&server, "ftplib", Duration::ZERO);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("NLST py.txt"),
        "{output:?}"
    );
    assert_eq!(
        std::fs::read(fx.root.join("py.txt")).unwrap(),
        b"from ftplib\n"
    );

    assert_ftp_event(&exactly(&fx, server, 1)[0], USER);
}

// ---------------------------------------------------------------------------------------------
// How a session ends: username and start instant
// ---------------------------------------------------------------------------------------------

const HOLD: Duration = Duration::from_millis(1500);

#[test]
fn connect_and_leave_without_login_fires_one_event_with_no_user_timed_from_accept() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);

    let began = Instant::now();
    python(&server, "leave", HOLD);
    let records = wait_for_records(&fx.records, 1, WAIT);
    let seen = began.elapsed();

    let duration = assert_ftp_event(&exactly(&fx, server, 1)[0], "");
    assert_eq!(records.len(), 1);
    // From the accept: the whole hold counts.
    assert!(duration >= HOLD.as_millis() as u64, "{duration} ms");
    assert!(u128::from(duration) <= seen.as_millis(), "{duration} ms");
}

#[test]
fn a_wrong_password_then_quit_fires_one_event_with_no_user_timed_from_accept() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);

    let began = Instant::now();
    let output = python(&server, "wrong", HOLD);
    assert!(String::from_utf8_lossy(&output.stdout).contains("530"));
    wait_for_records(&fx.records, 1, WAIT);
    let seen = began.elapsed();

    let duration = assert_ftp_event(&exactly(&fx, server, 1)[0], "");
    assert!(duration >= HOLD.as_millis() as u64, "{duration} ms");
    assert!(u128::from(duration) <= seen.as_millis(), "{duration} ms");
}

#[test]
fn a_login_then_a_tcp_reset_fires_one_event_timed_from_the_login() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);

    // HOLD before the login (not counted), HOLD after it (counted), then RST.
    let began = Instant::now();
    python(&server, "reset", HOLD);
    wait_for_records(&fx.records, 1, WAIT);
    let seen = began.elapsed();

    let duration = assert_ftp_event(&exactly(&fx, server, 1)[0], USER);
    assert!(duration >= HOLD.as_millis() as u64, "{duration} ms");
    assert!(
        u128::from(duration) + HOLD.as_millis() <= seen.as_millis(),
        "{duration} ms counts time before the login (all took {seen:?})"
    );
}

#[test]
fn a_login_then_the_idle_timeout_fires_one_event_timed_from_the_login() {
    let fx = Fixture::new();
    let script = fx.record_script("");
    let mut settings = fx.settings();
    settings.idle_timeout = Duration::from_secs(2);
    let server = RunningServer::start(settings, fx.load(&script.to_string_lossy(), ""));

    // 1 s before the login (under the 2 s timeout, and not counted), then idle.
    let before_login = Duration::from_secs(1);
    let began = Instant::now();
    // The client never closes first: it logs in and reads until the server hangs up.
    let output = python(&server, "idle", before_login);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("221"),
        "the server closed the idle session: {stdout}"
    );
    wait_for_records(&fx.records, 1, WAIT);
    let seen = began.elapsed();

    let duration = assert_ftp_event(&exactly(&fx, server, 1)[0], USER);
    assert!(
        duration >= 2000,
        "idle for the 2 s timeout, got {duration} ms"
    );
    assert!(
        u128::from(duration) + before_login.as_millis() <= seen.as_millis(),
        "{duration} ms counts time before the login (all took {seen:?})"
    );
}

#[test]
fn ten_parallel_clients_fire_ten_events() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);

    let clients: Vec<_> = (0..10)
        .map(|i| {
            let local = fx.client.join(format!("p{i}.txt"));
            std::fs::write(&local, format!("client {i}\n")).unwrap();
            Command::new("curl")
                .args(["-sS", "--max-time", "60", "-T"])
                .arg(&local)
                .arg(server.url(&format!("/p{i}.txt")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("curl")
        })
        .collect();
    for client in clients {
        let output = client.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    for i in 0..10 {
        assert_eq!(
            std::fs::read_to_string(fx.root.join(format!("p{i}.txt"))).unwrap(),
            format!("client {i}\n")
        );
    }

    for record in exactly(&fx, server, 10) {
        assert_ftp_event(&record, USER);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP hook, and stopping the server
// ---------------------------------------------------------------------------------------------

#[test]
fn an_ftp_session_fires_one_http_hook_with_the_matching_query() {
    let fx = Fixture::new();
    let endpoint = TestServer::builder().start_blocking();
    let server = fx.start(fx.load(&endpoint.url("/ftp"), ""));

    let began = Instant::now();
    curl(&[&server.url("/")]);
    endpoint.blocking_wait_for_requests(1, WAIT);
    let seen = began.elapsed();
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");

    let requests = endpoint.requests();
    assert_eq!(requests.len(), 1, "exactly one request");
    assert_eq!(requests[0].path(), "/ftp");
    let duration: u64 = requests[0]
        .query_param("connection_duration")
        .expect("connection_duration")
        .parse()
        .unwrap();
    assert!(u128::from(duration) <= seen.as_millis());
    assert_eq!(
        requests[0].query(),
        Some(
            format!("connection_duration={duration}&ip=127.0.0.1&protocol=FTP&username={USER}")
                .as_str()
        )
    );
}

#[test]
fn stopping_the_server_waits_for_a_running_hook_within_the_deadline() {
    let fx = Fixture::new();
    let script = fx.record_script("sleep 2");
    let server = fx.start(fx.load(&script.to_string_lossy(), r#""shutdown_deadline": 30"#));

    curl(&[&server.url("/")]);
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
fn stopping_the_server_abandons_a_slow_hook_at_the_deadline_and_reports() {
    let fx = Fixture::new();
    let script = fx.record_script("exec sleep 30");
    let server = fx.start(fx.load(&script.to_string_lossy(), r#""shutdown_deadline": 1"#));

    curl(&[&server.url("/")]);
    wait_for_records(&fx.records, 1, WAIT);

    let (report, took) = server.stop();
    assert_eq!(report.abandoned, 1, "{report:?}");
    assert_eq!(report.delivered + report.failed, 0, "{report:?}");
    assert!(
        took < Duration::from_secs(20),
        "did not wait for the 30 s hook: {took:?}"
    );
}

#[test]
fn a_session_still_open_at_the_stop_is_cut_and_fires_its_event() {
    let fx = Fixture::new();
    let server = program_hook_server(&fx);

    let mut client = Command::new("python3")
        .args([
            "-c",
            PYTHON,
            "hold",
            &server.port().to_string(),
            USER,
            PASSWORD,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    // Wait until it is logged in.
    let mut stdout = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "the client ended before logging in");
    }
    assert!(
        fx.records().is_empty(),
        "no event while the session is open"
    );

    // The stop gives the session its 1 s grace, then cuts it: its event fires before the drain.
    let (report, _) = server.stop();
    assert_eq!(report.delivered, 1, "{report:?}");
    let status = client.wait().unwrap();
    assert!(
        status.success(),
        "the client saw the server close: {status}"
    );
    let records = fx.records();
    assert_eq!(records.len(), 1);
    assert_ftp_event(&records[0], USER);
}

// ---------------------------------------------------------------------------------------------
// Dependencies
// ---------------------------------------------------------------------------------------------

/// Every package under `crates/` (the libraries, hookctl, the test support): read from their
/// manifests, so a crate added later is checked too.
fn crate_packages() -> Vec<String> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut names: Vec<String> = std::fs::read_dir(crates)
        .expect("crates/")
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("Cargo.toml")).ok())
        .filter_map(|manifest| {
            manifest.lines().find_map(|line| {
                let value = line.strip_prefix("name")?.trim_start().strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_owned())
            })
        })
        .collect();
    names.sort();
    names
}

#[test]
fn no_crate_under_crates_depends_on_russh_or_libunftp() {
    let packages = crate_packages();
    assert!(packages.len() >= 5, "found {packages:?}");
    for package in &packages {
        let tree = cargo_tree(&["-e", "normal", "-p", package]);
        assert!(
            tree.contains(package.as_str()),
            "cargo tree -p {package}: {tree}"
        );
        for server_library in ["russh", "libunftp", "unftp-core"] {
            assert!(
                !tree
                    .lines()
                    .any(|line| line.starts_with(&format!("{server_library} "))),
                "{package} depends on {server_library}:\n{tree}"
            );
        }
    }
    // The check can fail: the examples' own trees do hold them.
    assert!(
        cargo_tree(&["-e", "normal", "-p", "ftp-server-example"])
            .lines()
            .any(|l| l.starts_with("libunftp "))
    );
    assert!(
        cargo_tree(&["-e", "normal", "-p", "sftp-server-example"])
            .lines()
            .any(|l| l.starts_with("russh "))
    );
}
