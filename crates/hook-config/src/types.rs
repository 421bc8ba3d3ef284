//! The configuration sections, with SFTPGo's defaults.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NatsSection;
use crate::redact::{REDACTED, redact_url};

/// Every setting the post-disconnect hook uses: SFTPGo's three sections plus our `hooks`
/// extension section. Other sections of an `sftpgo.json` are ignored.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HookConfig {
    /// SFTPGo's `common` section (only `post_disconnect_hook` is read).
    pub common: CommonSection,
    /// SFTPGo's `http` section: the HTTP client used by HTTP hooks.
    pub http: HttpClientsSection,
    /// SFTPGo's `command` section: how programs are run.
    pub command: CommandSection,
    /// Our extension section, for the knobs SFTPGo lacks. SFTPGo ignores it.
    pub hooks: HooksSection,
    /// Our `nats` section: stream, subjects, credentials and TLS of a `nats://` hook and of
    /// `hookctl relay`. SFTPGo ignores it.
    pub nats: NatsSection,
}

impl HookConfig {
    /// A copy safe to print or serialise: the hook URL's password and every header URL's
    /// password replaced by `xxxxx`, every non-empty header value replaced by `xxxxx` (D11). The
    /// same secrets its `Debug` output hides.
    ///
    /// ```
    /// use hook_config::{HookConfig, HttpHeader};
    ///
    /// let mut config = HookConfig::default();
    /// config.common.post_disconnect_hook = "https://u:pw@h/x".into();
    /// config.http.headers.push(HttpHeader::new("X-Api-Key", "s3cret"));
    /// let shown = config.redacted();
    /// assert_eq!(shown.common.post_disconnect_hook, "https://u:xxxxx@h/x");
    /// assert_eq!(shown.http.headers[0].value, "xxxxx");
    /// ```
    pub fn redacted(&self) -> HookConfig {
        let mut c = self.clone();
        c.common.post_disconnect_hook = redact_url(&c.common.post_disconnect_hook).into_owned();
        for header in &mut c.http.headers {
            if !header.value.is_empty() {
                header.value = REDACTED.to_owned();
            }
            header.url = redact_url(&header.url).into_owned();
        }
        if !c.nats.token.is_empty() {
            c.nats.token = REDACTED.to_owned();
        }
        c
    }
}

impl fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookConfig")
            .field("common", &self.common)
            .field("http", &self.http)
            .field("command", &self.command)
            .field("hooks", &self.hooks)
            .field("nats", &self.nats)
            .finish()
    }
}

/// SFTPGo's `common` section, reduced to the one key this workspace reads.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CommonSection {
    /// `common.post_disconnect_hook`: empty (disabled), an `http(s)://` URL, `nats://`/`tls://`
    /// server URLs, or an absolute program path. See [`HookTarget`](crate::HookTarget).
    pub post_disconnect_hook: String,
}

impl fmt::Debug for CommonSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonSection")
            .field(
                "post_disconnect_hook",
                &redact_url(&self.post_disconnect_hook),
            )
            .finish()
    }
}

/// SFTPGo's `http` section: timeouts, retries, TLS and headers of the HTTP client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HttpClientsSection {
    /// `http.timeout`: seconds per attempt (dial, TLS, request, response headers). Default 20;
    /// must be `> 0`.
    pub timeout: f64,
    /// `http.retry_wait_min`: seconds before the first retry, doubled on each retry. Default 2.
    pub retry_wait_min: i64,
    /// `http.retry_wait_max`: upper bound of a backoff wait, in seconds. Default 30.
    pub retry_wait_max: i64,
    /// `http.retry_max`: retries after the first attempt (`<= 0`: one attempt). Default 3.
    pub retry_max: i64,
    /// `http.ca_certificates`: PEM files trusted in addition to the system roots, relative to the
    /// config dir.
    pub ca_certificates: Vec<String>,
    /// `http.certificates`: client certificate/key pairs for mutual TLS, relative to the config dir.
    pub certificates: Vec<TlsKeyPair>,
    /// `http.skip_tls_verify`: accept any server certificate and host name. Default false.
    pub skip_tls_verify: bool,
    /// `http.headers`: headers added to requests whose URL starts with the entry's `url`.
    pub headers: Vec<HttpHeader>,
}

impl Default for HttpClientsSection {
    fn default() -> Self {
        HttpClientsSection {
            timeout: 20.0,
            retry_wait_min: 2,
            retry_wait_max: 30,
            retry_max: 3,
            ca_certificates: Vec::new(),
            certificates: Vec::new(),
            skip_tls_verify: false,
            headers: Vec::new(),
        }
    }
}

/// One `http.certificates` entry: a client certificate and its private key, PEM files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TlsKeyPair {
    /// Path of the PEM certificate (chain), relative to the config dir unless absolute.
    pub cert: String,
    /// Path of the PEM private key, relative to the config dir unless absolute.
    pub key: String,
}

impl TlsKeyPair {
    /// A pair of paths.
    pub fn new(cert: impl Into<String>, key: impl Into<String>) -> Self {
        TlsKeyPair {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

/// One `http.headers` entry. Its `Debug` never shows the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HttpHeader {
    /// Header name. An entry with an empty key or value is dropped, as SFTPGo does.
    pub key: String,
    /// Header value: a secret, redacted everywhere.
    pub value: String,
    /// URL prefix the header is limited to (empty: every request), ending at a boundary (D9).
    pub url: String,
}

impl HttpHeader {
    /// A header for every request (`url` empty).
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        HttpHeader {
            key: key.into(),
            value: value.into(),
            url: String::new(),
        }
    }

    /// Limits the header to request URLs under `url`.
    pub fn for_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }
}

impl fmt::Debug for HttpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpHeader")
            .field("key", &self.key)
            .field("value", &REDACTED)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// SFTPGo's `command` section: how hook programs are run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CommandSection {
    /// `command.timeout`: seconds a program may run, `1..=300`. Default 30.
    pub timeout: i64,
    /// `command.env`: `KEY=value` entries given to every program, in order.
    pub env: Vec<String>,
    /// `command.commands`: per-program settings; the first matching entry applies.
    pub commands: Vec<CommandEntry>,
}

impl Default for CommandSection {
    fn default() -> Self {
        CommandSection {
            timeout: 30,
            env: Vec::new(),
            commands: Vec::new(),
        }
    }
}

/// One `command.commands` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CommandEntry {
    /// The program path this entry applies to (exact byte comparison).
    pub path: String,
    /// Seconds, `1..=300`; `0` means `command.timeout`.
    pub timeout: i64,
    /// `KEY=value` entries added after `command.env`.
    pub env: Vec<String>,
    /// Arguments after argv\[0\]; empty strings are kept.
    pub args: Vec<String>,
    /// The hook this entry is for: `""` (any) or one of SFTPGo's hook names.
    pub hook: String,
}

impl CommandEntry {
    /// An entry for `path` with everything else empty.
    pub fn new(path: impl Into<String>) -> Self {
        CommandEntry {
            path: path.into(),
            ..CommandEntry::default()
        }
    }
}

/// Our `hooks` extension section: the knobs SFTPGo does not have (spec Part A). All durations are
/// seconds, as floats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HooksSection {
    /// `hooks.queue_capacity`: events the dispatcher holds waiting for a slot. Default 10000.
    pub queue_capacity: usize,
    /// `hooks.max_in_flight`: hooks running at once, retries and backoff waits included. Default
    /// 150 (SFTPGo's slots).
    pub max_in_flight: usize,
    /// `hooks.protocols`: protocols that fire a hook. Default `["SFTP", "SCP", "SSH", "FTP"]`.
    pub protocols: Vec<String>,
    /// `hooks.delivery_deadline`: overall seconds one event may take, all attempts and waits
    /// included. Default 120.
    pub delivery_deadline: f64,
    /// `hooks.retry_after_max`: cap on an honoured `Retry-After`, in seconds. Default (unset):
    /// `max(http.retry_wait_max, 60)`.
    pub retry_after_max: Option<f64>,
    /// `hooks.kill_grace`: seconds between SIGTERM and SIGKILL to a timed-out program's process
    /// group. Default 2.
    pub kill_grace: f64,
    /// `hooks.output_cap`: bytes of stdout and of stderr kept per program run. Default 8192.
    pub output_cap: usize,
    /// `hooks.shutdown_deadline`: seconds a server's shutdown waits for queued and running hooks.
    /// Default 30.
    pub shutdown_deadline: f64,
    /// `hooks.spool`: the durable event log (off unless `hooks.spool.dir` is set).
    pub spool: SpoolSection,
}

impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            queue_capacity: 10_000,
            max_in_flight: 150,
            protocols: ["SFTP", "SCP", "SSH", "FTP"].map(String::from).to_vec(),
            delivery_deadline: 120.0,
            retry_after_max: None,
            kill_grace: 2.0,
            output_cap: 8192,
            shutdown_deadline: 30.0,
            spool: SpoolSection::default(),
        }
    }
}

impl HooksSection {
    /// The effective `Retry-After` cap in seconds: `retry_after_max`, or `max(retry_wait_max, 60)`.
    pub fn effective_retry_after_max(&self, http: &HttpClientsSection) -> f64 {
        self.retry_after_max
            .unwrap_or_else(|| (http.retry_wait_max.max(60)) as f64)
    }
}

/// Our `hooks.spool` section: the durable event log that keeps accepted events across crashes,
/// `kill -9` and endpoint outages (at-least-once delivery). Off while `dir` is empty. Durations
/// are seconds, as floats; sizes are bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SpoolSection {
    /// `hooks.spool.dir`: the spool directory (holds `spool.redb` and its lock); relative to the
    /// config dir when loaded. Default `""`: no spool, events live in memory only.
    pub dir: String,
    /// `hooks.spool.max_bytes`: bound on the live data and on the file size. When reached, new
    /// events bypass the spool (memory-only delivery, counted); pending ones are never evicted.
    /// Default 256 MiB.
    pub max_bytes: u64,
    /// `hooks.spool.min_free_bytes`: free space the spool leaves on its file system; below it new
    /// events bypass the spool as when full. Default 64 MiB.
    pub min_free_bytes: u64,
    /// `hooks.spool.redeliver_min`: seconds before the first redelivery of a deferred event,
    /// doubled on each later one (with jitter, never before a `Retry-After`). Default 30.
    pub redeliver_min: f64,
    /// `hooks.spool.redeliver_max`: cap of the redelivery interval, in seconds. Default 3600.
    pub redeliver_max: f64,
    /// `hooks.spool.max_age`: seconds after its first firing an undelivered event becomes dead
    /// (with its last error). Default 86400 (24 h).
    pub max_age: f64,
    /// `hooks.spool.dead_max`: dead letters kept; beyond it the oldest are evicted (counted).
    /// Default 100000.
    pub dead_max: usize,
}

impl Default for SpoolSection {
    fn default() -> Self {
        SpoolSection {
            dir: String::new(),
            max_bytes: SpoolSection::DEFAULT_MAX_BYTES,
            min_free_bytes: SpoolSection::DEFAULT_MIN_FREE_BYTES,
            redeliver_min: 30.0,
            redeliver_max: 3600.0,
            max_age: 86_400.0,
            dead_max: 100_000,
        }
    }
}

impl SpoolSection {
    /// Default of `max_bytes`: 256 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
    /// The smallest valid `max_bytes`: 64 KiB.
    pub const MIN_MAX_BYTES: u64 = 64 * 1024;
    /// Default of `min_free_bytes`: 64 MiB.
    pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

    /// Whether the spool is on (`dir` not empty).
    ///
    /// ```
    /// use hook_config::HookConfig;
    ///
    /// let mut config = HookConfig::default();
    /// assert!(!config.hooks.spool.enabled());
    /// config.hooks.spool.dir = "/var/lib/sftpgo/spool".into();
    /// assert!(config.hooks.spool.enabled());
    /// assert_eq!(config.hooks.spool.redeliver_min(), std::time::Duration::from_secs(30));
    /// ```
    pub fn enabled(&self) -> bool {
        !self.dir.is_empty()
    }

    /// `redeliver_min` as a [`Duration`](std::time::Duration) (call after validation).
    pub fn redeliver_min(&self) -> std::time::Duration {
        secs(self.redeliver_min)
    }

    /// `redeliver_max` as a [`Duration`](std::time::Duration) (call after validation).
    pub fn redeliver_max(&self) -> std::time::Duration {
        secs(self.redeliver_max)
    }

    /// `max_age` as a [`Duration`](std::time::Duration) (call after validation).
    pub fn max_age(&self) -> std::time::Duration {
        secs(self.max_age)
    }
}

/// Seconds to a duration; invalid values (rejected by validation) give zero rather than a panic.
fn secs(value: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(value).unwrap_or_default()
}
