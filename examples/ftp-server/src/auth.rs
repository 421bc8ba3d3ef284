//! The one user's password check, and the per-connection record of the login.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use libunftp::notification::{EventMeta, PresenceEvent, PresenceListener};
use unftp_core::auth::{AuthenticationError, Authenticator, Credentials, Principal};

/// Accepts exactly one user name with one password.
pub(crate) struct OneUser {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl fmt::Debug for OneUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl Authenticator for OneUser {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        if username != self.username {
            tracing::info!(ip = %creds.source_ip, username, "unknown user");
            return Err(AuthenticationError::BadUser);
        }
        let given = creds.password.as_deref().unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), self.password.as_bytes()) {
            tracing::info!(ip = %creds.source_ip, username, "password rejected");
            return Err(AuthenticationError::BadPassword);
        }
        Ok(Principal {
            username: username.to_owned(),
        })
    }
}

/// Who logged in on one control connection, and when: SFTPGo's username and start instant.
///
/// libunftp tells a presence listener `LoggedIn` when a login succeeds; that is all this
/// records. Its `LoggedOut` is never used: libunftp does not send it after a reset, an idle
/// timeout, a TLS failure or a handler error (the end of [`Server::service`] is the signal).
///
/// [`Server::service`]: libunftp::Server::service
#[derive(Clone, Default)]
pub(crate) struct LoginWatch {
    login: Arc<Mutex<Option<(String, Instant)>>>,
}

impl LoginWatch {
    /// The user and instant of the last successful login, if any.
    pub(crate) fn login(&self) -> Option<(String, Instant)> {
        self.login
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for LoginWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginWatch")
            .field("login", &self.login().map(|(user, _)| user))
            .finish()
    }
}

#[async_trait]
impl PresenceListener for LoginWatch {
    async fn receive_presence_event(&self, event: PresenceEvent, meta: EventMeta) {
        if let PresenceEvent::LoggedIn = event {
            // A new login replaces the earlier one, as SFTPGo swaps in a new connection
            // object (with a fresh start instant) on every successful login.
            *self.login.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((meta.username, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(password: &str) -> Credentials {
        Credentials::from(password)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn accepts_only_the_user_with_the_password() {
        let auth = OneUser {
            username: "alice".into(),
            password: "secret".into(),
        };
        assert_eq!(
            auth.authenticate("alice", &creds("secret"))
                .await
                .unwrap()
                .username,
            "alice"
        );
        assert!(matches!(
            auth.authenticate("alice", &creds("secreT")).await,
            Err(AuthenticationError::BadPassword)
        ));
        assert!(matches!(
            auth.authenticate("bob", &creds("secret")).await,
            Err(AuthenticationError::BadUser)
        ));
        assert!(!format!("{auth:?}").contains("secret"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn records_the_last_login_only() {
        let watch = LoginWatch::default();
        let meta = |user: &str| EventMeta {
            username: user.into(),
            trace_id: String::new(),
            sequence_number: 0,
        };
        assert!(watch.login().is_none());
        watch
            .receive_presence_event(PresenceEvent::LoggedOut, meta("unknown"))
            .await;
        assert!(watch.login().is_none(), "LoggedOut is not a login");
        watch
            .receive_presence_event(PresenceEvent::LoggedIn, meta("alice"))
            .await;
        assert_eq!(watch.login().unwrap().0, "alice");
    }
}
