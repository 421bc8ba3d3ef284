//! Debian's real Prometheus for tests: [`Prometheus`] starts `prometheus` on a free loopback port
//! with a temporary data dir and a 1 s scrape interval, answers instant queries
//! ([`Prometheus::query`], [`Prometheus::wait_for`]: polled with a deadline, no fixed sleeps) and
//! is stopped by its PID when dropped. [`http_get`] is the minimal HTTP/1.1 client it uses, also
//! handy to scrape an exporter.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long [`Prometheus::wait_for`] and the start-up wait poll before they fail.
pub const PROMETHEUS_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------

/// `GET path` on `addr` (loopback test servers only): the status code and the body (`Connection: close`, no chunking: both
/// servers answer these small requests with a Content-Length or by closing).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Prometheus, started for real
// ---------------------------------------------------------------------------------------------

/// A running `prometheus` (Debian package `prometheus`), stopped by PID on drop.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` scraping each `(job, target)` every second (path `/metrics`) and
    /// waits until it is ready.
    ///
    /// # Panics
    /// When `prometheus` is missing, exits, or is not ready within [`PROMETHEUS_WAIT`].
    pub fn start(targets: &[(&str, SocketAddr)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        let mut yaml = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, target) in targets {
            yaml.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package prometheus; .ci/run installs it)");
        let mut prometheus = Prometheus { child, addr, dir };
        prometheus.wait_ready();
        prometheus
    }

    /// Its HTTP address (API and UI).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it logged (WARN and above).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + PROMETHEUS_WAIT;
        loop {
            if let Ok((200, _)) = http_get(self.addr, "/-/ready") {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of an instant query that must return one sample (`None` while it returns none).
    ///
    /// # Panics
    /// When the API answers an error or more than one series.
    pub fn query(&self, query: &str) -> Option<f64> {
        let (status, body) =
            http_get(self.addr, &format!("/api/v1/query?query={}", encode(query))).ok()?;
        assert_eq!(status, 200, "{query}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(json["status"], "success", "{query}: {body}");
        let result = json["data"]["result"].as_array().expect("a vector");
        match result.as_slice() {
            [] => None,
            [sample] => sample["value"][1].as_str()?.parse().ok(),
            _ => panic!("{query}: more than one series: {body}"),
        }
    }

    /// Polls `query` until it answers `expected`.
    ///
    /// # Panics
    /// When it does not within [`PROMETHEUS_WAIT`] (with the last answer and the targets' state).
    pub fn wait_for(&self, query: &str, expected: f64) {
        let deadline = Instant::now() + PROMETHEUS_WAIT;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(query);
            if last == Some(expected) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "{query}: still {last:?} after {PROMETHEUS_WAIT:?}, expected {expected}; targets: {:?}",
            http_get(self.addr, "/api/v1/targets").map(|r| r.1)
        );
    }

    /// Polls until Prometheus' scrape of `job` is up.
    pub fn wait_target_up(&self, job: &str) {
        self.wait_for(&format!(r#"up{{job="{job}"}}"#, job = job), 1.0);
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // By PID, never by name; SIGTERM for a clean TSDB close, SIGKILL if it lingers.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
