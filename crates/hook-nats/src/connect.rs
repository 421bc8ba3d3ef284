//! The connection: servers, credentials and TLS from the `nats` section.

use std::time::Duration;

use async_nats::ConnectOptions;
use hook_config::{ConfigError, ConfigErrorKind, NatsSection, NatsServers, REDACTED};
use hook_core::{Backend, ErrorKind, HookError, Redelivery};
use rustls::ClientConfig;

/// Everything needed to (re)connect, read and checked once when the hook or relay is built.
#[derive(Clone)]
pub(crate) struct ConnectPlan {
    pub(crate) servers: NatsServers,
    tls: Option<ClientConfig>,
    token: Option<String>,
    credentials: Option<String>,
    timeout: Duration,
    name: &'static str,
    /// Commands (publishes, acks) the client may queue while it is disconnected before a publish
    /// waits (async-nats' `client_capacity`).
    capacity: usize,
}

impl std::fmt::Debug for ConnectPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectPlan")
            .field("servers", &self.servers)
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| REDACTED))
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

/// async-nats' own default.
const DEFAULT_CLIENT_CAPACITY: usize = 2048;

impl ConnectPlan {
    /// Room for at least `capacity` queued commands (never less than the default): a relay
    /// settling every message it holds while disconnected must never wait on the queue.
    pub(crate) fn with_capacity(mut self, capacity: usize) -> ConnectPlan {
        self.capacity = capacity.max(DEFAULT_CLIENT_CAPACITY);
        self
    }

    /// Reads the TLS files and the credentials file; errors name the key.
    pub(crate) fn new(
        servers: &NatsServers,
        nats: &NatsSection,
        name: &'static str,
    ) -> Result<ConnectPlan, ConfigError> {
        // A TLS configuration is always given: a server may require TLS on a nats:// URL. A
        // `tls://` server makes TLS required.
        let tls = Some(client_config(nats)?);
        let credentials = if nats.credentials_file.is_empty() {
            None
        } else {
            Some(read_credentials(&nats.credentials_file)?)
        };
        let token = (!nats.token.is_empty()).then(|| nats.token.clone());
        Ok(ConnectPlan {
            servers: servers.clone(),
            tls,
            token,
            credentials,
            timeout: nats.ack_timeout().max(Duration::from_secs(1)),
            name,
            capacity: DEFAULT_CLIENT_CAPACITY,
        })
    }

    fn options(&self) -> ConnectOptions {
        let mut opts = ConnectOptions::new();
        #[cfg(feature = "nkeys")]
        if let Some(creds) = &self.credentials {
            // Checked when the plan was made.
            if let Ok(with) = ConnectOptions::with_credentials(creds) {
                opts = with;
            }
        }
        opts = opts
            .name(self.name)
            .connection_timeout(self.timeout)
            .max_reconnects(None)
            .client_capacity(self.capacity)
            .require_tls(self.servers.requires_tls());
        if let Some(tls) = &self.tls {
            opts = opts.tls_client_config(tls.clone());
        }
        if let Some(token) = &self.token {
            opts = opts.token(token.clone());
        }
        let shown = self.servers.to_string();
        opts.event_callback(move |event| {
            let shown = shown.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(target: "hook_nats", servers = %shown, "connected to NATS")
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(target: "hook_nats", servers = %shown, "disconnected from NATS; reconnecting")
                    }
                    other => {
                        tracing::debug!(target: "hook_nats", servers = %shown, "NATS: {other}")
                    }
                }
            }
        })
    }

    /// Connects; the first connection must succeed (later losses reconnect in the background).
    pub(crate) async fn connect(&self) -> Result<async_nats::Client, HookError> {
        let urls: Vec<String> = self.servers.urls().iter().map(|u| u.to_string()).collect();
        self.options().connect(urls).await.map_err(|e| {
            let (kind, redelivery) = match e.kind() {
                _ if is_tls_failure(&e) => (ErrorKind::Tls, Redelivery::Permanent),
                async_nats::ConnectErrorKind::Tls => (ErrorKind::Tls, Redelivery::Permanent),
                async_nats::ConnectErrorKind::TimedOut => {
                    (ErrorKind::Timeout, Redelivery::Transient)
                }
                async_nats::ConnectErrorKind::Authentication
                | async_nats::ConnectErrorKind::AuthorizationViolation
                | async_nats::ConnectErrorKind::ServerParse => {
                    (ErrorKind::Other, Redelivery::Permanent)
                }
                _ => (ErrorKind::Transport, Redelivery::Transient),
            };
            HookError::new(
                kind,
                format!(
                    "nats {}: cannot connect: {}",
                    self.servers,
                    self.scrub(&error_chain(&e))
                ),
            )
            .with_backend(Backend::Nats)
            .with_redelivery(redelivery)
        })
    }

    /// `text` with every configured secret replaced by `xxxxx`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for url in self.servers.urls() {
            if let Some(pw) = url.password()
                && !pw.is_empty()
            {
                out = out.replace(pw, REDACTED);
            }
        }
        if let Some(token) = &self.token {
            out = out.replace(token.as_str(), REDACTED);
        }
        out
    }
}

/// Whether a connect error is a refused TLS handshake (async-nats reports most of them as I/O
/// errors): a rustls error anywhere in the chain, or the alert a server sends.
fn is_tls_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        current = e.source();
    }
    let text = error_chain(err).to_ascii_lowercase();
    text.contains("peer certificate")
        || text.contains("received fatal alert")
        || text.contains("tls handshake")
}

/// An error and its sources, `: `-separated (async-nats puts the useful part in the source).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Reads `nats.credentials_file` (a `.creds` file: user JWT and nkey seed); signing the server's
/// nonce needs the `nkeys` feature.
fn read_credentials(path: &str) -> Result<String, ConfigError> {
    let key = "nats.credentials_file";
    let text = String::from_utf8(read(key, "credentials", path)?)
        .map_err(|_| ConfigError::invalid(key, format!("{path:?} is not text")))?;
    #[cfg(feature = "nkeys")]
    {
        ConnectOptions::with_credentials(&text).map_err(|e| {
            ConfigError::invalid(key, format!("{path:?} is not a NATS credentials file: {e}"))
        })?;
        Ok(text)
    }
    #[cfg(not(feature = "nkeys"))]
    {
        let _ = text;
        Err(ConfigError::invalid(
            key,
            format!(
                "{path:?}: a credentials file needs the `nkeys` feature of hook-nats, \
                 which this build leaves out (use nats.token or user:password in the URL)"
            ),
        ))
    }
}

fn read(key: &str, what: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::Io,
            key,
            format!("unable to load {what} {path:?}: {e}"),
        )
    })
}

/// The rustls client configuration ([`hook_tls`], as for `https://` hooks): the system roots
/// plus `nats.ca_certificates`, the client pairs of `nats.certificates` (chosen per handshake),
/// or no verification with `nats.skip_tls_verify`.
fn client_config(nats: &NatsSection) -> Result<ClientConfig, ConfigError> {
    hook_tls::client_config(&hook_tls::TlsSources::from_section(
        "nats",
        &nats.ca_certificates,
        nats.certificates.iter().map(|pair| (&pair.cert, &pair.key)),
        nats.skip_tls_verify,
    ))
}
