//! [`ConnectionHook`]: one FTP control connection's post-disconnect event, fired exactly once.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use hooks::{DisconnectEvent, Dispatcher, Fired, Protocol};

use crate::auth::LoginWatch;

/// Fires one `FTP` [`DisconnectEvent`] for one control connection, exactly once.
///
/// Created when the connection is accepted; [`finish`](ConnectionHook::finish) is called when
/// `Server::service` returns (however the connection ended: QUIT, end-of-file, a reset, the
/// idle timeout, a TLS or handler error, a panic in the control loop). If the task serving the
/// connection is dropped first (the server is stopping and aborts it), `Drop` fires it.
///
/// The event follows SFTPGo (spec 1.3-1.4): the user of the last successful login and the
/// instant of that login; with no login, an empty user and the accept instant.
pub(crate) struct ConnectionHook {
    dispatcher: Option<Dispatcher>,
    peer: SocketAddr,
    accepted: Instant,
    login: LoginWatch,
}

impl ConnectionHook {
    pub(crate) fn start(
        dispatcher: Option<Dispatcher>,
        peer: SocketAddr,
        login: LoginWatch,
    ) -> Self {
        ConnectionHook {
            dispatcher,
            peer,
            accepted: Instant::now(),
            login,
        }
    }

    /// Fires the event now (a second call, or the later drop, does nothing); `how` goes to the
    /// log only.
    pub(crate) fn finish(&mut self, how: &str) {
        let Some(dispatcher) = self.dispatcher.take() else {
            return;
        };
        let (username, started) = self
            .login
            .login()
            .unwrap_or_else(|| (String::new(), self.accepted));
        let event = DisconnectEvent::from_socket_addr(self.peer, Protocol::Ftp, username, started);
        tracing::info!(
            protocol = %event.protocol(),
            ip = event.ip(),
            username = event.username(),
            duration_ms = event.duration_ms() as u64,
            how,
            "control connection ended"
        );
        match dispatcher.fire(event) {
            Ok(Fired::Queued) => {}
            Ok(_) => tracing::debug!("protocol not in hooks.protocols: no hook"),
            // Counted by the dispatcher and logged there (queue full or shutting down).
            Err(err) => tracing::debug!(%err, "post-disconnect event refused"),
        }
    }
}

impl Drop for ConnectionHook {
    fn drop(&mut self) {
        self.finish("connection task dropped");
    }
}

impl fmt::Debug for ConnectionHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHook")
            .field("peer", &self.peer)
            .field("login", &self.login)
            .field("finished", &self.dispatcher.is_none())
            .finish()
    }
}
