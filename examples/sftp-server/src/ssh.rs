//! The per-connection russh [`Handler`]: authentication, channels, the `sftp` subsystem and
//! the built-in `echo` command, legacy `scp` (see `scp.rs`), and a [`ChannelHook`] per channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hooks::{Dispatcher, Protocol};
use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId};

use crate::ChannelHook;
use crate::scp::{self, ScpCommand};
use crate::sftp::SftpSession;

/// What every connection shares: who may log in, what is served, where events go.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) root: Arc<Path>,
    pub(crate) username: String,
    pub(crate) authorized_keys: Vec<PublicKey>,
    pub(crate) password: Option<String>,
    pub(crate) dispatcher: Option<Dispatcher>,
}

/// One SSH connection. russh drops it when the connection ends, however it ends; its `Drop`
/// finishes the hooks of the channels still open (the only notice of a dropped TCP
/// connection a russh server gets).
pub(crate) struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The authenticated user name.
    user: Option<String>,
    /// Session channels opened but not yet given a subsystem or command.
    pending: HashMap<ChannelId, Channel<Msg>>,
    /// The hook of every channel that started work (SFTP or a command).
    hooks: HashMap<ChannelId, ChannelHook>,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        Connection {
            shared,
            peer,
            user: None,
            pending: HashMap::new(),
            hooks: HashMap::new(),
        }
    }

    /// Starts a channel's hook now (the channel's start instant), if hooks are configured.
    fn start_hook(&mut self, channel: ChannelId, protocol: Protocol) -> Option<ChannelHook> {
        let dispatcher = self.shared.dispatcher.clone()?;
        let username = self.user.clone().unwrap_or_default();
        let hook = ChannelHook::start(dispatcher, self.peer, protocol, username);
        self.hooks.insert(channel, hook.clone());
        Some(hook)
    }

    fn key_is_authorized(&self, user: &str, key: &PublicKey) -> bool {
        user == self.shared.username
            && self
                .shared
                .authorized_keys
                .iter()
                .any(|authorized| authorized.key_data() == key.key_data())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for hook in self.hooks.values() {
            hook.finish("connection ended");
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only keys we would accept are worth a signature check.
        Ok(if self.key_is_authorized(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.key_is_authorized(user, key.public_key) {
            self.user = Some(user.to_owned());
            return Ok(Auth::Accept);
        }
        tracing::info!(peer = %self.peer, user, "public key rejected");
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if let Some(expected) = &self.shared.password
            && user == self.shared.username
            && constant_time_eq(expected.as_bytes(), password.as_bytes())
        {
            self.user = Some(user.to_owned());
            return Ok(Auth::Accept);
        }
        tracing::info!(peer = %self.peer, user, "password rejected");
        Ok(Auth::reject())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let channel = match self.pending.remove(&channel_id) {
            Some(channel) if name == "sftp" => channel,
            _ => return session.channel_failure(channel_id),
        };
        // SFTPGo's start instant for SFTP: the subsystem request (spec 1.4).
        let hook = self.start_hook(channel_id, Protocol::Sftp);
        session.channel_success(channel_id)?;
        // Spawns the SFTP loop; it owns the session (and a clone of the hook) until the
        // channel's stream ends, then drops it, which finishes the hook.
        russh_sftp::server::run(
            channel.into_stream(),
            SftpSession::new(self.shared.root.clone(), hook),
        )
        .await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel_id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data);
        // Split shell-style, as SFTPGo does (no shell ever runs the command).
        let words = shlex::split(&command).unwrap_or_default();
        let channel = match (self.pending.remove(&channel_id), words.first()) {
            (Some(channel), Some(name)) if name == "echo" || name == "scp" => channel,
            // A rejected command never becomes a connection, so it fires no hook (spec 1.2).
            _ => {
                tracing::info!(peer = %self.peer, %command, "command rejected");
                return session.channel_failure(channel_id);
            }
        };
        if words[0] == "scp" {
            // SFTPGo's rule: exactly `scp` with at least two arguments is SCP; with fewer it
            // is refused, and fires nothing.
            if words.len() < 3 {
                tracing::info!(peer = %self.peer, %command, "scp with fewer than 2 arguments rejected");
                return session.channel_failure(channel_id);
            }
            // SFTPGo's start instant for SCP: the exec request.
            let hook = self.start_hook(channel_id, Protocol::Scp);
            session.channel_success(channel_id)?;
            let root = self.shared.root.clone();
            let args = words[1..].to_vec();
            // A task per channel, reading the channel's stream: never inside this handler,
            // whose session loop is what delivers the channel's data.
            tokio::spawn(async move {
                let status = match ScpCommand::parse(&args) {
                    Ok(scp) => scp::run(channel, root, scp).await,
                    Err(message) => scp::refuse(channel, &message).await,
                };
                if let Some(hook) = hook {
                    hook.finish(if status == 0 {
                        "scp exited"
                    } else {
                        "scp failed"
                    });
                }
            });
            return Ok(());
        }
        drop(channel);
        // SFTPGo's start instant for a command: the exec request. Any command other than scp
        // is protocol SSH.
        let hook = self.start_hook(channel_id, Protocol::Ssh);
        session.channel_success(channel_id)?;
        // The built-in `echo`: writes its arguments back; no shell is ever run.
        let mut output = words[1..].join(" ");
        output.push('\n');
        session.data(channel_id, output.into_bytes())?;
        session.exit_status_request(channel_id, 0)?;
        session.eof(channel_id)?;
        session.close(channel_id)?;
        if let Some(hook) = hook {
            hook.finish("command exited");
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.remove(&channel);
        if let Some(hook) = self.hooks.remove(&channel) {
            hook.finish("client closed the channel");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_passwords() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
