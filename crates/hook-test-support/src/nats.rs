//! Debian's real `nats-server` for tests: one JetStream node, or a 3-node cluster on loopback.
//!
//! Every server gets a temporary store dir, a free loopback port (`-p -1 --ports_file_dir` on
//! the first start; the same port again on a restart) and is stopped by its PID, never by name.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The `nats-server` binary: `$NATS_SERVER`, else `nats-server` on the `PATH`.
pub fn nats_server_bin() -> PathBuf {
    std::env::var_os("NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// TLS settings of a test server (PEM files).
#[derive(Clone, Debug)]
pub struct NatsTls {
    /// The server's certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// With `Some(ca)`: mutual TLS, client certificates must chain to `ca`.
    pub verify_clients_with: Option<PathBuf>,
}

/// How to start one node.
#[derive(Clone, Debug, Default)]
struct NodeSpec {
    name: String,
    store: PathBuf,
    port: Option<u16>,
    cluster: Option<(u16, Vec<u16>)>,
    tls: Option<NatsTls>,
    extra: Vec<String>,
}

/// One running `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    spec: NodeSpec,
    child: Option<Child>,
    port: u16,
    monitor: u16,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A single JetStream node on a free loopback port, with a temporary store.
    ///
    /// # Panics
    /// If `nats-server` cannot be started or does not become healthy within 20 s.
    pub fn start() -> NatsServer {
        NatsServer::start_with(None, Vec::new())
    }

    /// A single node with TLS (and mutual TLS when `tls.verify_clients_with` is set).
    pub fn start_tls(tls: NatsTls) -> NatsServer {
        NatsServer::start_with(Some(tls), Vec::new())
    }

    /// A single node with extra command-line arguments (e.g. `--auth TOKEN`).
    pub fn start_with(tls: Option<NatsTls>, extra: Vec<String>) -> NatsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = NodeSpec {
            name: "n1".into(),
            store: dir.path().join("store"),
            tls,
            extra,
            ..NodeSpec::default()
        };
        let mut server = NatsServer::spawn(spec, dir.path());
        server._dir = Some(dir);
        server
    }

    fn spawn(spec: NodeSpec, dir: &Path) -> NatsServer {
        let ports_dir = dir.join(format!("ports-{}", spec.name));
        std::fs::create_dir_all(&ports_dir).expect("ports dir");
        let log = dir.join(format!("{}.log", spec.name));
        let mut cmd = Command::new(nats_server_bin());
        cmd.args(["-a", "127.0.0.1", "-js", "-n", &spec.name, "-m", "-1"])
            .arg("-p")
            .arg(spec.port.map_or("-1".to_owned(), |p| p.to_string()))
            .arg("-sd")
            .arg(&spec.store)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(&log);
        if let Some((own, all)) = &spec.cluster {
            let routes: Vec<String> = all
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["--cluster_name", "hooks"])
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{own}"))
                .arg("--routes")
                .arg(routes.join(","));
        }
        if let Some(tls) = &spec.tls {
            cmd.arg("--tls")
                .arg("--tlscert")
                .arg(&tls.cert)
                .arg("--tlskey")
                .arg(&tls.key);
            if let Some(ca) = &tls.verify_clients_with {
                cmd.arg("--tlsverify").arg("--tlscacert").arg(ca);
            }
        }
        cmd.args(&spec.extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (install Debian's nats-server: apt-get install nats-server)",
                nats_server_bin().display()
            )
        });
        let ports_file = ports_dir.join(format!(
            "{}_{}.ports",
            nats_server_bin()
                .file_name()
                .map_or("nats-server".into(), |n| n.to_string_lossy().into_owned()),
            child.id()
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        let (port, monitor) = loop {
            if let Ok(text) = std::fs::read_to_string(&ports_file)
                && let (Some(p), Some(m)) = (port_of(&text, "nats"), port_of(&text, "monitoring"))
            {
                break (p, m);
            }
            assert!(
                Instant::now() < deadline,
                "nats-server wrote no ports file {}; log: {}",
                ports_file.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut spec = spec;
        spec.port = Some(port);
        NatsServer {
            spec,
            child: Some(child),
            port,
            monitor,
            log,
            _dir: None,
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/healthz` answers 200 (JetStream current with its meta leader).
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if http_status(self.monitor, "/healthz") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nats-server {} not healthy; log:\n{}",
            self.spec.name,
            self.log()
        );
    }

    /// SIGKILL by PID, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM by PID (a clean shutdown), and reap.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store (after [`kill`](Self::kill) or
    /// [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        let dir = self.log.parent().expect("log dir").to_path_buf();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The old socket may linger a moment.
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "port {} stays busy", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut fresh = NatsServer::spawn(self.spec.clone(), &dir);
        self.child = fresh.child.take();
        self.monitor = fresh.monitor;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A 3-node JetStream cluster on loopback (`R3` streams possible).
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `size` nodes routed to each other and waits until all are healthy.
    ///
    /// # Panics
    /// If a node does not start or the cluster does not form within 30 s.
    pub fn start(size: usize) -> NatsCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let nodes: Vec<NatsServer> = (0..size)
            .map(|i| {
                let spec = NodeSpec {
                    name: format!("n{}", i + 1),
                    store: dir.path().join(format!("store-n{}", i + 1)),
                    cluster: Some((cluster_ports[i], cluster_ports.clone())),
                    ..NodeSpec::default()
                };
                NatsServer::spawn(spec, dir.path())
            })
            .collect();
        let cluster = NatsCluster { nodes, _dir: dir };
        cluster.wait_healthy();
        cluster
    }

    /// Waits until every running node is healthy.
    pub fn wait_healthy(&self) {
        for node in &self.nodes {
            if node.child.is_some() {
                node.wait_healthy(Duration::from_secs(30));
            }
        }
    }

    /// The client URLs of every node, comma-separated (a `nats://` hook target).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i`.
    pub fn node(&mut self, i: usize) -> &mut NatsServer {
        &mut self.nodes[i]
    }

    /// Every node.
    pub fn nodes_mut(&mut self) -> &mut [NatsServer] {
        &mut self.nodes
    }
}

fn port_of(ports_json: &str, key: &str) -> Option<u16> {
    let at = ports_json.find(&format!("\"{key}\""))?;
    let rest = &ports_json[at..];
    let start = rest.find("127.0.0.1:")? + "127.0.0.1:".len();
    let digits: String = rest[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_file_parsing() {
        let text = r#"{"nats":["nats://127.0.0.1:45113"],"monitoring":["http://127.0.0.1:38679"],"cluster":["nats://127.0.0.1:16221"]}"#;
        assert_eq!(port_of(text, "nats"), Some(45113));
        assert_eq!(port_of(text, "monitoring"), Some(38679));
        assert_eq!(port_of(text, "cluster"), Some(16221));
        assert_eq!(port_of(text, "websocket"), None);
    }
}
