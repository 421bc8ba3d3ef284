//! [`FtpServer`]: our own accept loop, one libunftp `Server` per connection, the hooks'
//! dispatcher, and a graceful stop.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hooks::{Dispatcher, DispatcherOptions, HookConfig, ShutdownReport};
use libunftp::{Server, ServerBuilder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use unftp_core::auth::DefaultUser;

use crate::auth::{LoginWatch, OneUser};
use crate::connection_hook::ConnectionHook;
use crate::storage::DirStorage;

/// How long a session cut at a stop gets to notice (its control loop reads end-of-file).
const CUT_WAIT: Duration = Duration::from_secs(2);

/// What the server serves, to whom, and where it listens.
#[derive(Clone)]
pub struct Settings {
    /// The address to listen on; port 0 picks a free port (see [`FtpServer::local_addr`]).
    pub listen: SocketAddr,
    /// The directory served as `/`.
    pub root: PathBuf,
    /// The one user allowed to log in.
    pub username: String,
    /// That user's password.
    pub password: String,
    /// A session idle this long (no command, no transfer) is closed by libunftp. Whole
    /// seconds (rounded up, at least 1); default 600 s, libunftp's own default.
    pub idle_timeout: Duration,
    /// The ports passive-mode data connections listen on (default 49152-65535).
    pub passive_ports: RangeInclusive<u16>,
    /// At a stop, how long open sessions may go on before they are cut (default 5 s).
    pub stop_grace: Duration,
}

impl Settings {
    /// `username`/`password` logins to `root`, on `listen`, with the defaults above.
    pub fn new(
        listen: SocketAddr,
        root: impl Into<PathBuf>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Settings {
            listen,
            root: root.into(),
            username: username.into(),
            password: password.into(),
            idle_timeout: Duration::from_secs(600),
            passive_ports: 49152..=65535,
            stop_grace: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("root", &self.root)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("idle_timeout", &self.idle_timeout)
            .field("passive_ports", &self.passive_ports)
            .field("stop_grace", &self.stop_grace)
            .finish()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hook configuration is invalid (the message names the key).
    #[error("hooks: {0}")]
    Hooks(String),
    /// The settings are invalid (the message names the setting).
    #[error("{0}")]
    Settings(String),
    /// libunftp refused its configuration.
    #[error("FTP server: {0}")]
    Ftp(String),
    /// Listening failed, or reading the listening address.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What every connection's libunftp `Server` is built from.
struct Shared {
    root: PathBuf,
    auth: Arc<OneUser>,
    idle_timeout_secs: u64,
    passive_ports: RangeInclusive<u16>,
    stop_grace: Duration,
    dispatcher: Option<Dispatcher>,
}

impl Shared {
    /// A libunftp server for one connection, recording its login into `login`.
    fn ftp_server(&self, login: LoginWatch) -> Result<Server<DirStorage, DefaultUser>, Error> {
        let storage = DirStorage::new(self.root.clone());
        ServerBuilder::with_authenticator(Box::new(move || storage.clone()), self.auth.clone())
            .notify_presence(login)
            .idle_session_timeout(self.idle_timeout_secs)
            .passive_ports(self.passive_ports.clone())
            .build()
            .map_err(|e| Error::Ftp(e.to_string()))
    }
}

/// A bound FTP server; [`run`](FtpServer::run) serves until the shutdown future completes.
///
/// Every control connection fires one `FTP` post-disconnect event when it ends, however it
/// ends; a stop lets sessions end, cuts the rest after [`Settings::stop_grace`] (their events
/// fire too), then drains the hooks with `hooks.shutdown_deadline`.
pub struct FtpServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    dispatcher: Option<Dispatcher>,
    shutdown_deadline: Duration,
}

impl fmt::Debug for FtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpServer")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("root", &self.shared.root)
            .field("username", &self.shared.auth.username)
            .field("hooks", &self.dispatcher.is_some())
            .field("shutdown_deadline", &self.shutdown_deadline)
            .finish_non_exhaustive()
    }
}

impl FtpServer {
    /// Builds the hook from `config` and starts its dispatcher (no hook configured: no events),
    /// checks the settings, then binds the listener. Must run inside a tokio runtime.
    pub async fn bind(settings: Settings, config: &HookConfig) -> Result<FtpServer, Error> {
        // The three lines of the `hooks` wiring: options, hook, dispatcher (as in the SSH
        // example).
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

        if !settings.root.is_dir() {
            return Err(Error::Settings(format!(
                "root {}: not a directory",
                settings.root.display()
            )));
        }
        if settings.passive_ports.is_empty() {
            return Err(Error::Settings(format!(
                "passive ports {:?}: an empty range",
                settings.passive_ports
            )));
        }
        let idle = settings.idle_timeout;
        let idle_timeout_secs = (idle.as_secs() + u64::from(idle.subsec_nanos() > 0)).max(1);
        let shared = Shared {
            root: settings.root,
            auth: Arc::new(OneUser {
                username: settings.username,
                password: settings.password,
            }),
            idle_timeout_secs,
            passive_ports: settings.passive_ports,
            stop_grace: settings.stop_grace,
            dispatcher: dispatcher.clone(),
        };
        // Fail now, not at the first connection, if libunftp refuses the configuration.
        shared.ftp_server(LoginWatch::default())?;
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(FtpServer {
            listener,
            shared: Arc::new(shared),
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

    /// Serves until `shutdown` completes, then stops: closes the listener, lets open sessions
    /// go on for [`Settings::stop_grace`], cuts the rest (shuts their sockets down; their
    /// events fire), and drains the dispatcher for up to `hooks.shutdown_deadline`. Returns
    /// the dispatcher's report (`None` when no hook is configured). A failed `accept` is logged
    /// and retried after 100 ms; it never stops the server.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Option<ShutdownReport> {
        let FtpServer {
            listener,
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
                        sessions.spawn(serve(shared.clone(), socket, peer, stop_rx.clone()));
                    }
                    // Out of descriptors, a connection reset before it was accepted, ...:
                    // transient. Back off briefly rather than spin, and keep serving.
                    Err(err) => {
                        tracing::warn!(%err, "accepting a connection failed; retrying in 100 ms");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                // Reap finished sessions as we go.
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }

        // Stop accepting; the sessions end on their own or are cut after the grace.
        drop(listener);
        let _ = stop_tx.send(true);
        let wind_down = async { while sessions.join_next().await.is_some() {} };
        let bound = shared.stop_grace + CUT_WAIT + Duration::from_secs(1);
        if tokio::time::timeout(bound, wind_down).await.is_err() {
            // Still not ended after the cut: drop them; their hooks fire from `Drop`.
            tracing::warn!(
                sessions = sessions.len(),
                "sessions did not end; aborting them"
            );
            sessions.abort_all();
            while sessions.join_next().await.is_some() {}
        }

        match &dispatcher {
            Some(dispatcher) => Some(dispatcher.shutdown(shutdown_deadline).await),
            None => None,
        }
    }
}

/// One control connection: a libunftp `Server` of its own until `service` returns (however
/// the connection ended), then the event.
async fn serve(
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let login = LoginWatch::default();
    // SFTPGo's start instant without a login: the accept (now).
    let mut hook = ConnectionHook::start(shared.dispatcher.clone(), peer, login.clone());
    let server = match shared.ftp_server(login) {
        Ok(server) => server,
        Err(err) => {
            // Checked at bind: cannot happen unless libunftp changes its mind per call.
            tracing::error!(%err, "building the FTP session failed");
            hook.finish("session could not start");
            return;
        }
    };
    let _ = socket.set_nodelay(true);
    // A second descriptor of the same socket, to cut the session at a stop: libunftp's own
    // shutdown signal is not reachable through `service`.
    let cutter = socket
        .as_fd()
        .try_clone_to_owned()
        .map(std::net::TcpStream::from);
    let service = server.service(socket);
    tokio::pin!(service);
    let grace = shared.stop_grace;
    tokio::select! {
        result = &mut service => {
            if let Err(err) = result {
                tracing::debug!(%err, "FTP session ended with an error");
            }
            hook.finish("control connection ended");
            return;
        }
        () = async { let _ = stop.wait_for(|stop| *stop).await; tokio::time::sleep(grace).await } => {}
    }
    // The server is stopping and this session outlived the grace: cut it.
    match &cutter {
        Ok(cutter) => {
            let _ = cutter.shutdown(std::net::Shutdown::Both);
            let _ = tokio::time::timeout(CUT_WAIT, &mut service).await;
        }
        Err(err) => tracing::warn!(%err, "cannot cut the session (no second descriptor)"),
    }
    hook.finish("cut at server stop");
}
