//! [`SftpServer`]: the accept loop, the hooks' dispatcher, and a graceful stop.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hooks::{Dispatcher, DispatcherOptions, HookConfig, ShutdownReport};
use russh::keys::{Algorithm, PrivateKey, PublicKey};
use russh::server::Config;
use russh::{Disconnect, MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::ssh::{Connection, Shared};

/// How long a stop waits for disconnected sessions to wind down before draining the hooks.
const SESSION_STOP_GRACE: Duration = Duration::from_secs(5);

/// What the server serves, to whom, and where it listens.
#[derive(Clone)]
pub struct Settings {
    /// The address to listen on; port 0 picks a free port (see [`SftpServer::local_addr`]).
    pub listen: SocketAddr,
    /// The directory served as `/`.
    pub root: PathBuf,
    /// The one user allowed to log in.
    pub username: String,
    /// Public keys that may log in as [`username`](Settings::username) (an OpenSSH
    /// `authorized_keys` file: [`load_authorized_keys`]).
    pub authorized_keys: Vec<PublicKey>,
    /// If set, password authentication is offered too, with this password.
    pub password: Option<String>,
    /// The server's host key; `None` generates an Ed25519 key for this run.
    pub host_key: Option<PrivateKey>,
}

impl Settings {
    /// Public-key logins of `username` to `root`, on `listen`, with an ephemeral host key.
    pub fn new(listen: SocketAddr, root: impl Into<PathBuf>, username: impl Into<String>) -> Self {
        Settings {
            listen,
            root: root.into(),
            username: username.into(),
            authorized_keys: Vec::new(),
            password: None,
            host_key: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("root", &self.root)
            .field("username", &self.username)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "host_key",
                &self.host_key.as_ref().map(PrivateKey::algorithm),
            )
            .finish()
    }
}

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hook configuration is invalid (the message names the key).
    #[error("hooks: {0}")]
    Hooks(String),
    /// A key file could not be read or parsed.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Generating the ephemeral host key failed.
    #[error("generating a host key: {0}")]
    HostKey(String),
    /// The metrics exporter could not start (`--metrics-address`; the message names it).
    #[error("{0}")]
    Metrics(String),
    /// Listening failed, or reading the listening address.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The public keys of an OpenSSH `authorized_keys` file (options are ignored).
pub fn load_authorized_keys(path: &Path) -> Result<Vec<PublicKey>, Error> {
    let key_error = |message: String| Error::Key {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?;
    let keys = russh::keys::ssh_key::AuthorizedKeys::new(&text)
        .map(|entry| {
            entry
                .map(|e| e.public_key().clone())
                .map_err(|e| key_error(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(key_error("no public key in the file".to_owned()));
    }
    Ok(keys)
}

/// A private host key in OpenSSH format (unencrypted), as `ssh-keygen` writes it.
pub fn load_host_key(path: &Path) -> Result<PrivateKey, Error> {
    russh::keys::load_secret_key(path, None).map_err(|e| Error::Key {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// A bound SFTP server; [`run`](SftpServer::run) serves until the shutdown future completes.
///
/// Every SSH channel that runs SFTP or a command fires one post-disconnect event when it ends
/// (see [`ChannelHook`](crate::ChannelHook)); a stop disconnects the clients (so their events
/// fire too), then drains the hooks with `hooks.shutdown_deadline`.
pub struct SftpServer {
    listener: TcpListener,
    ssh_config: Arc<Config>,
    shared: Arc<Shared>,
    dispatcher: Option<Dispatcher>,
    shutdown_deadline: Duration,
}

impl fmt::Debug for SftpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("root", &self.shared.root)
            .field("username", &self.shared.username)
            .field("hooks", &self.dispatcher.is_some())
            .field("shutdown_deadline", &self.shutdown_deadline)
            .finish_non_exhaustive()
    }
}

impl SftpServer {
    /// Builds the hook from `config` and starts its dispatcher (no hook configured: no events),
    /// then binds the listener. Must run inside a tokio runtime.
    pub async fn bind(settings: Settings, config: &HookConfig) -> Result<SftpServer, Error> {
        // The three lines of the `hooks` wiring: options, hook, dispatcher.
        let options = DispatcherOptions::from_config(&config.hooks)
            .map_err(|e| Error::Hooks(e.to_string()))?;
        let hook = hooks::build_hook(config).map_err(|e| Error::Hooks(e.to_string()))?;
        // With `hooks.spool.dir` set, try_new opens the spool (an error if another process
        // holds it) and replays what the last run left.
        let dispatcher = match hook {
            Some(hook) => {
                Some(Dispatcher::try_new(hook, options).map_err(|e| Error::Hooks(e.to_string()))?)
            }
            None => None,
        };
        let shutdown_deadline = Duration::try_from_secs_f64(config.hooks.shutdown_deadline)
            .map_err(|e| Error::Hooks(format!("hooks.shutdown_deadline: {e}")))?;

        let host_key = match settings.host_key {
            Some(key) => key,
            None => PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
                .map_err(|e| Error::HostKey(e.to_string()))?,
        };
        let mut methods = vec![MethodKind::PublicKey];
        if settings.password.is_some() {
            methods.push(MethodKind::Password);
        }
        let ssh_config = Config {
            methods: MethodSet::from(methods.as_slice()),
            auth_rejection_time: Duration::from_secs(1),
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![host_key],
            ..Config::default()
        };
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(SftpServer {
            listener,
            ssh_config: Arc::new(ssh_config),
            shared: Arc::new(Shared {
                root: settings.root.into(),
                username: settings.username,
                authorized_keys: settings.authorized_keys,
                password: settings.password,
                dispatcher: dispatcher.clone(),
            }),
            dispatcher,
            shutdown_deadline,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The dispatcher the server fires events into (`None` when no hook is configured).
    pub fn dispatcher(&self) -> Option<&Dispatcher> {
        self.dispatcher.as_ref()
    }

    /// Serves until `shutdown` completes, then stops: closes the listener, disconnects every
    /// client (their channels' events fire), waits up to 5 s for their sessions to end, and
    /// drains the dispatcher for up to `hooks.shutdown_deadline`. Returns the dispatcher's
    /// report (`None` when no hook is configured). A failed `accept` (out of descriptors, a
    /// connection reset before it was accepted) is logged and retried after 100 ms; it never
    /// stops the server.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Option<ShutdownReport> {
        let SftpServer {
            listener,
            ssh_config,
            shared,
            dispatcher,
            shutdown_deadline,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut sessions = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let handler = Connection::new(shared.clone(), peer);
                        let session = serve(ssh_config.clone(), socket, handler, stop_rx.clone());
                        sessions.spawn(session);
                    }
                    // Out of descriptors, a connection reset before it was accepted, ...:
                    // transient. Back off briefly rather than spin, and keep serving: stopping
                    // here would drop every client.
                    Err(err) => {
                        tracing::warn!(%err, "accepting a connection failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                // Reap finished sessions as we go.
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }

        // Stop accepting, disconnect the clients, give their sessions a moment to end (each
        // ending session drops its handler, which fires its channels' events).
        drop(listener);
        let _ = stop_tx.send(true);
        let wind_down = async { while sessions.join_next().await.is_some() {} };
        if tokio::time::timeout(SESSION_STOP_GRACE, wind_down)
            .await
            .is_err()
        {
            tracing::warn!(
                sessions = sessions.len(),
                "sessions still open after the disconnect; their events may be refused"
            );
        }

        match &dispatcher {
            Some(dispatcher) => Some(dispatcher.shutdown(shutdown_deadline).await),
            None => None,
        }
    }
}

/// One connection: the SSH session until it ends, or a disconnect when the server stops.
async fn serve(
    config: Arc<Config>,
    socket: tokio::net::TcpStream,
    handler: Connection,
    mut stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let session = tokio::select! {
        started = russh::server::run_stream(config, socket, handler) => match started {
            Ok(session) => session,
            Err(err) => {
                tracing::debug!(%err, "SSH connection setup failed");
                return;
            }
        },
        // A client that has not even sent its version yet: just drop it.
        () = stopped(&mut stop) => return,
    };
    let handle = session.handle();
    tokio::pin!(session);
    tokio::select! {
        result = &mut session => {
            if let Err(err) = result {
                tracing::debug!(%err, "SSH session ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            let _ = handle
                .disconnect(Disconnect::ByApplication, "server shutting down".into(), String::new())
                .await;
            // The session ends once the disconnect is sent; its handler is dropped then.
            let _ = session.await;
        }
    }
}

/// Completes when the server stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the server is gone: stop as well.
    let _ = stop.wait_for(|stop| *stop).await;
}
