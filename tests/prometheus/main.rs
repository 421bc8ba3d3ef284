//! Debian's real Prometheus scraping the example SFTP server's `/metrics` (what its
//! `--metrics-address` serves, installed by the same library call), with OpenSSH's `sftp` making
//! the sessions and a loopback HTTP endpoint as the hook; plus `promtool check metrics` on a
//! scrape and `promtool check rules` / `promtool test rules` on the documented alerting rules.
//!
//! Its own test binary: the `metrics` recorder is global to a process, so nothing else may fire
//! events here. Prometheus (`/usr/bin/prometheus`, package `prometheus`; `.ci/run` installs it)
//! runs on a free loopback port with a temporary data dir and a 1 s scrape interval, and is
//! stopped by its PID. Every wait polls with a deadline; none is a fixed sleep.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hook_test_support::{
    Prometheus, Response, ServerThread, TestServer, cargo_tree, free_port, http_get,
};
use hooks::{HookConfig, ShutdownReport};
use sftp_server_example::{Settings, SftpServer, install_metrics_exporter, load_authorized_keys};

const USER: &str = "alice";
/// Generous: the machine is shared and slow, and Prometheus needs a few scrapes.
const WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The example SFTP server and OpenSSH's sftp
// ---------------------------------------------------------------------------------------------

/// A client key pair, the served root, the client's directory and a config dir.
struct Fixture {
    _dir: tempfile::TempDir,
    key: PathBuf,
    root: PathBuf,
    client: PathBuf,
    config_dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().to_owned();
        let [root, client, config_dir] = ["root", "client", "config"].map(|name| {
            let path = base.join(name);
            std::fs::create_dir(&path).expect("mkdir");
            path
        });
        let key = base.join("id_ed25519");
        let status = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "prometheus-e2e",
                "-f",
            ])
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
        }
    }

    /// Writes `sftpgo.json` with this hook URL and `http` section, and loads it.
    fn load(&self, url: &str, http_section: &str) -> HookConfig {
        let json = format!(
            r#"{{"common": {{"post_disconnect_hook": "{url}"}}, "http": {{{http_section}}}}}"#
        );
        std::fs::write(self.config_dir.join("sftpgo.json"), json).unwrap();
        hooks::Loader::new()
            .config_dir(&self.config_dir)
            .env_vars(std::iter::empty::<(&str, &str)>())
            .load()
            .expect("valid configuration")
            .config
    }

    /// One whole `sftp` session: puts a file, then quits (one SFTP event at its end).
    fn sftp_session(&self, port: u16, name: &str) {
        let file = self.client.join(format!("{name}.txt"));
        std::fs::write(&file, format!("session {name}\n")).unwrap();
        let batch = self.client.join(format!("{name}.batch"));
        std::fs::write(&batch, format!("put {name}.txt\nquit\n")).unwrap();
        let output = Command::new("sftp")
            .arg("-b")
            .arg(&batch)
            .args(["-F", "/dev/null", "-i"])
            .arg(&self.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .args(["-P", &port.to_string()])
            .arg(format!("{USER}@127.0.0.1"))
            .current_dir(&self.client)
            .stdin(Stdio::null())
            .output()
            .expect("sftp (package openssh-client; .ci/run installs it)");
        assert!(
            output.status.success(),
            "sftp failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(self.root.join(format!("{name}.txt")).exists());
    }

    fn start_server(&self, config: HookConfig) -> RunningServer {
        let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), &self.root, USER);
        settings.authorized_keys =
            load_authorized_keys(&self.key.with_extension("pub")).expect("authorized keys");
        RunningServer::start(settings, config)
    }
}

/// The example server on a runtime of its own, stopped like the binary stops on SIGTERM.
struct RunningServer {
    port: u16,
    server: ServerThread<Option<ShutdownReport>>,
}

impl RunningServer {
    fn start(settings: Settings, config: HookConfig) -> RunningServer {
        let server = ServerThread::start(move |bound, stop| async move {
            let server = SftpServer::bind(settings, &config).await.expect("bind");
            bound.report(server.local_addr().expect("local addr"));
            server.run(stop.requested()).await
        });
        RunningServer {
            port: server.port(),
            server,
        }
    }

    fn stop(self) -> ShutdownReport {
        self.server.stop().0.expect("a hook is configured")
    }
}

/// The exporter, as `sftp-server --metrics-address` starts it, on a runtime that outlives the
/// servers (the exporter's listener is a task on it).
fn start_exporter() -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    {
        let _guard = runtime.enter();
        install_metrics_exporter(addr).expect("the exporter starts");
    }
    (runtime, addr)
}

/// `promtool ARGS` with `stdin`: its exit status and output.
fn promtool(args: &[&str], dir: &Path, stdin: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The one test that installs the process' recorder: both scenarios run in turn, each asserting
/// the totals Prometheus scraped.
#[test]
fn prometheus_scrapes_delivered_and_failed_events_of_two_sftp_sessions_each() {
    let fx = Fixture::new();
    let (_exporter, metrics_addr) = start_exporter();
    let prometheus = Prometheus::start(&[("sftp", metrics_addr)]);
    prometheus.wait_target_up("sftp");

    // Two sessions with an HTTP hook that answers 200.
    let endpoint = TestServer::builder()
        .default_response(Response::ok())
        .start_blocking();
    let server = fx.start_server(fx.load(&endpoint.url("/disconnect"), ""));
    fx.sftp_session(server.port, "one");
    fx.sftp_session(server.port, "two");
    endpoint.blocking_wait_for_requests(2, WAIT);
    prometheus.wait_for(r#"sum(hooks_events_delivered_total{backend="http"})"#, 2.0);
    prometheus.wait_for(
        r#"sum(hooks_delivery_duration_seconds_count{backend="http",outcome="delivered"})"#,
        2.0,
    );
    prometheus.wait_for(
        r#"sum(hooks_delivery_attempts_count{backend="http",outcome="delivered"})"#,
        2.0,
    );
    prometheus.wait_for(r#"sum(hooks_events_fired_total{protocol="SFTP"})"#, 2.0);
    let report = server.stop();
    assert_eq!((report.delivered, report.failed), (2, 0), "{report:?}");

    // `promtool check metrics` on a scrape of the exporter (HELP, types, naming lints).
    let (status, scrape) = http_get(metrics_addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    assert!(
        scrape.contains("# TYPE hooks_delivery_duration_seconds histogram"),
        "{scrape}"
    );
    assert!(
        !scrape.contains(USER) && !scrape.contains("127.0.0.1"),
        "{scrape}"
    );
    let (ok, lint) = promtool(&["check", "metrics"], Path::new("."), &scrape);
    assert!(ok, "promtool check metrics:\n{lint}\n---\n{scrape}");

    // Two sessions with an endpoint that answers 503 (no retries): the failed counter rises,
    // labelled with the error kind; the delivered one stays at 2.
    let failing = TestServer::builder()
        .default_response(Response::status(503))
        .start_blocking();
    let server = fx.start_server(fx.load(&failing.url("/disconnect"), r#""retry_max": 0"#));
    fx.sftp_session(server.port, "three");
    fx.sftp_session(server.port, "four");
    failing.blocking_wait_for_requests(2, WAIT);
    prometheus.wait_for(
        r#"sum(hooks_events_failed_total{backend="http",error_kind="http_status"})"#,
        2.0,
    );
    prometheus.wait_for(
        r#"sum(hooks_delivery_duration_seconds_count{backend="http",outcome="failed"})"#,
        2.0,
    );
    prometheus.wait_for(r#"sum(hooks_events_delivered_total{backend="http"})"#, 2.0);
    let report = server.stop();
    assert_eq!((report.delivered, report.failed), (0, 2), "{report:?}");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_documented_alerting_rules_pass_promtool_check_and_unit_tests() {
    let rules = repo_root().join("docs/hooks-alerts.yml");
    let (ok, out) = promtool(
        &["check", "rules", rules.to_str().unwrap()],
        Path::new("."),
        "",
    );
    assert!(ok, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS: 8 rules found"), "{out}");
    // Each alert fires under its condition and stays quiet next to it (alerts.test.yml).
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus");
    let (ok, out) = promtool(&["test", "rules", "alerts.test.yml"], &tests, "");
    assert!(ok, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_exporter_stays_out_of_the_libraries_and_brings_no_aws_lc() {
    let has = |tree: &str, krate: &str| tree.lines().any(|l| l.starts_with(&format!("{krate} ")));
    // The library records through the facade only; the exporter is the application's choice.
    let hooks = cargo_tree(&["-e", "normal", "-p", "hooks", "--all-features"]);
    assert!(has(&hooks, "metrics"), "{hooks}");
    for krate in ["metrics-exporter-prometheus", "metrics-util"] {
        assert!(!has(&hooks, krate), "hooks depends on {krate}:\n{hooks}");
    }
    // The example has the exporter, with its HTTP listener and without the push gateway's TLS.
    let example = cargo_tree(&["-e", "normal", "-p", "sftp-server-example"]);
    assert!(has(&example, "metrics-exporter-prometheus"), "{example}");
    let workspace = cargo_tree(&["-e", "normal", "--workspace", "--all-features"]);
    for krate in ["aws-lc-rs", "aws-lc-sys", "openssl-sys", "native-tls"] {
        assert!(!has(&workspace, krate), "the workspace depends on {krate}");
    }
}
