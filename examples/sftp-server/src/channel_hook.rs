//! [`ChannelHook`]: one SSH channel's post-disconnect event, fired exactly once however the
//! channel ends.
//!
//! russh has no disconnect callback. A channel can end in three ways, and each one reaches
//! different code:
//!
//! * the channel's own work ends (the SFTP loop reads end-of-file, the command exits): the
//!   object serving it is dropped;
//! * the client closes the channel: `Handler::channel_close` runs;
//! * the TCP connection drops (client killed, network gone) or the server disconnects it: no
//!   callback at all; the per-connection `Handler` is dropped when russh's session task ends.
//!
//! So every place that can see the end holds a clone of the channel's `ChannelHook` and calls
//! [`finish`](ChannelHook::finish); the first call fires the event and the others do nothing.
//! A `Drop` impl on the shared state fires it too, so a path nobody thought of (a panic, a task
//! aborted at runtime shutdown) cannot lose it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hooks::{DisconnectEvent, Dispatcher, Fired, Protocol};

/// Fires one [`DisconnectEvent`] for one SSH channel, exactly once.
///
/// Create it when the channel starts its work (SFTPGo's start instant, spec 1.4: when the
/// `subsystem sftp` request arrives for SFTP, when the `exec` request arrives for a command),
/// clone it into everything that can observe the channel's end, and call
/// [`finish`](ChannelHook::finish) from each. The first `finish` (or, failing that, the drop of
/// the last clone) measures the duration and hands the event to the [`Dispatcher`], which
/// returns at once: it is safe in `Drop` impls and in russh's callbacks.
///
/// ```
/// use std::time::Duration;
/// use hooks::{Dispatcher, DispatcherOptions, Protocol};
/// use sftp_server_example::ChannelHook;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let mut config = hooks::HookConfig::default();
/// # config.common.post_disconnect_hook = "http://127.0.0.1:9/".into();
/// # let hook = hooks::build_hook(&config)?.expect("a hook is configured");
/// let dispatcher = Dispatcher::new(hook, DispatcherOptions::default());
/// let peer = "127.0.0.1:50022".parse()?;
/// let hook = ChannelHook::start(dispatcher.clone(), peer, Protocol::Sftp, "alice");
/// let seen_by_the_sftp_task = hook.clone();
/// hook.finish("client closed the channel"); // fires
/// seen_by_the_sftp_task.finish("end of stream"); // does nothing: already fired
/// assert!(hook.is_finished());
/// assert_eq!(dispatcher.stats().accepted, 1);
/// # dispatcher.shutdown(Duration::ZERO).await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ChannelHook {
    state: Arc<State>,
}

/// Shared by every clone; its `Drop` is the backstop.
struct State {
    pending: Mutex<Option<Pending>>,
}

/// What the event needs, taken out by the first `finish`.
struct Pending {
    dispatcher: Dispatcher,
    peer: SocketAddr,
    protocol: Protocol,
    username: String,
    started: Instant,
}

impl ChannelHook {
    /// Starts timing a channel now: `peer` is the client's socket address, `username` the
    /// authenticated user.
    pub fn start(
        dispatcher: Dispatcher,
        peer: SocketAddr,
        protocol: Protocol,
        username: impl Into<String>,
    ) -> ChannelHook {
        ChannelHook {
            state: Arc::new(State {
                pending: Mutex::new(Some(Pending {
                    dispatcher,
                    peer,
                    protocol,
                    username: username.into(),
                    started: Instant::now(),
                })),
            }),
        }
    }

    /// Fires the event if no clone has yet; `how` (say, "client closed the channel") goes to
    /// the log only.
    pub fn finish(&self, how: &str) {
        self.state.finish(how);
    }

    /// Whether the event has been fired (or handed back by a refusing dispatcher).
    pub fn is_finished(&self) -> bool {
        self.state.lock().is_none()
    }
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        // The guarded code cannot panic half-way; a poisoned lock still holds valid data.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, how: &str) {
        let Some(pending) = self.lock().take() else {
            return;
        };
        let event = DisconnectEvent::from_socket_addr(
            pending.peer,
            pending.protocol,
            pending.username,
            pending.started,
        );
        tracing::info!(
            protocol = %event.protocol(),
            ip = event.ip(),
            username = event.username(),
            duration_ms = event.duration_ms() as u64,
            how,
            "channel ended"
        );
        match pending.dispatcher.fire(event) {
            Ok(Fired::Queued) => {}
            Ok(_) => tracing::debug!("protocol not in hooks.protocols: no hook"),
            // Counted by the dispatcher and logged there (queue full or shutting down).
            Err(err) => tracing::debug!(%err, "post-disconnect event refused"),
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.finish("dropped without finish");
    }
}

impl fmt::Debug for ChannelHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pending = self.state.lock();
        let mut d = f.debug_struct("ChannelHook");
        match &*pending {
            Some(p) => d
                .field("peer", &p.peer)
                .field("protocol", &p.protocol)
                .field("username", &p.username)
                .field("elapsed", &p.started.elapsed())
                .finish(),
            None => d.field("finished", &true).finish(),
        }
    }
}
