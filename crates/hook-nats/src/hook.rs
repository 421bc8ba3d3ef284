//! [`NatsHook`]: publish to JetStream and await the stream's ack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use hook_config::{ConfigError, HooksSection, NatsSection, NatsServers};
use hook_core::{
    Backend, Delivery, DisconnectEvent, ErrorKind, Hook, HookError, Redelivery, async_trait,
};
use tokio::sync::OnceCell;

use crate::connect::{ConnectPlan, error_chain};
use crate::message::{CONTENT_TYPE, encode_body};

/// First wait between two publish attempts of one event; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between two publish attempts of one event.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A post-disconnect hook that publishes each event to NATS JetStream and resolves when the
/// stream acknowledged it (stored, replicated as the stream is configured).
///
/// * **One connection per hook**, made at the first event (or by [`connect`](Self::connect)) and
///   reused; a lost connection reconnects in the background, to any listed or discovered server.
/// * **Subject** `<nats.subject_prefix>.<protocol in lower case>`; headers `Nats-Msg-Id: <event
///   id>` and `Content-Type: application/json`; the body of [`encode_body`](crate::encode_body).
/// * **Retries within `hooks.delivery_deadline`**: a timed-out ack, a lost connection or a
///   failed connect is retried with the same `Nats-Msg-Id` (50 ms doubling to 2 s), so a publish
///   that was stored although its ack was lost is not stored twice (within the stream's
///   `duplicate_window`). A duplicate ack counts as delivered.
/// * **Errors** (with their [`Redelivery`] class): a missing stream (with `nats.create_stream`
///   off) and refused credentials are permanent; a refused or failed TLS handshake is
///   [`ErrorKind::Tls`] (permanent); a timeout
///   or disconnect that outlasts the deadline is [`ErrorKind::DeadlineExceeded`] (transient:
///   with a spool the event waits on disk).
/// * Publishes in flight are bounded by the dispatcher (`hooks.max_in_flight`) and by the
///   JetStream context (same bound, back-pressure instead of errors).
///
/// ```no_run
/// use hook_config::{HookConfig, HookTarget};
/// use hook_core::{DisconnectEvent, Hook, Protocol};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut config = HookConfig::default();
/// config.common.post_disconnect_hook = "nats://127.0.0.1:4222".into();
/// let HookTarget::Nats(servers) = config.target()? else { unreachable!() };
/// let hook = hook_nats::NatsHook::from_config(&servers, &config.nats, &config.hooks)?;
/// hook.connect().await?; // optional: fail early on a bad address, TLS or credentials
/// let event = DisconnectEvent::new("203.0.113.7", Protocol::Sftp, "alice", std::time::Duration::from_millis(1234));
/// let delivery = hook.on_disconnect(&event).await?;
/// println!("stored after {} attempt(s)", delivery.attempts());
/// # Ok(())
/// # }
/// ```
pub struct NatsHook {
    plan: ConnectPlan,
    nats: Arc<NatsSection>,
    deadline: Duration,
    max_in_flight: usize,
    js: OnceCell<jetstream::Context>,
}

impl std::fmt::Debug for NatsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsHook")
            .field("servers", &self.plan.servers)
            .field("stream", &self.nats.stream)
            .field("subject_prefix", &self.nats.subject_prefix)
            .field("connected", &self.js.initialized())
            .finish()
    }
}

impl NatsHook {
    /// A hook for `servers` with the `nats` section and `hooks.delivery_deadline` /
    /// `hooks.max_in_flight`. Reads the TLS and credentials files now (errors name the key);
    /// connects at the first event.
    pub fn from_config(
        servers: &NatsServers,
        nats: &NatsSection,
        hooks: &HooksSection,
    ) -> Result<NatsHook, ConfigError> {
        nats.validate()?;
        let plan = ConnectPlan::new(servers, nats, "sftpgo-hooks")?;
        Ok(NatsHook {
            plan,
            nats: Arc::new(nats.clone()),
            deadline: Duration::try_from_secs_f64(hooks.delivery_deadline)
                .unwrap_or(Duration::from_secs(120)),
            max_in_flight: hooks.max_in_flight.max(1),
            js: OnceCell::new(),
        })
    }

    /// Connects now (and creates the stream when `nats.create_stream` is on) instead of at the
    /// first event: a wrong address, CA, client certificate or credential fails here, clearly.
    pub async fn connect(&self) -> Result<(), HookError> {
        self.context().await.map(|_| ())
    }

    async fn context(&self) -> Result<&jetstream::Context, HookError> {
        self.js
            .get_or_try_init(|| async {
                let client = self.plan.connect().await?;
                let js = jetstream::ContextBuilder::new()
                    .timeout(self.nats.ack_timeout())
                    .max_ack_inflight(self.max_in_flight)
                    .backpressure_on_inflight(true)
                    .build(client);
                if self.nats.create_stream {
                    crate::stream::ensure_stream(&js, &self.nats)
                        .await
                        .map_err(|e| e.with_backend(Backend::Nats))?;
                }
                Ok(js)
            })
            .await
    }

    /// One publish and its ack.
    async fn publish_once(
        &self,
        subject: &str,
        headers: &HeaderMap,
        body: &bytes::Bytes,
    ) -> Result<bool, Attempt> {
        let js = self.context().await.map_err(Attempt::Connect)?;
        let ack = js
            .publish_with_headers(subject.to_owned(), headers.clone(), body.clone())
            .await
            .map_err(Attempt::Publish)?;
        let ack = ack.await.map_err(Attempt::Publish)?;
        Ok(ack.duplicate)
    }
}

/// What the JetStream API says about the stream after a publish found no responders.
enum StreamCheck {
    /// It does not exist and will not be created.
    Missing,
    /// It exists (or was just created) but does not answer yet, or the API does not answer.
    Unavailable(String),
}

impl NatsHook {
    async fn stream_check(&self) -> StreamCheck {
        let js = match self.context().await {
            Ok(js) => js,
            Err(e) => return StreamCheck::Unavailable(e.to_string()),
        };
        if self.nats.create_stream {
            return match crate::stream::ensure_stream(js, &self.nats).await {
                Ok(_) => StreamCheck::Unavailable("its leader is not elected yet".into()),
                Err(e) => StreamCheck::Unavailable(e.to_string()),
            };
        }
        match js.get_stream(&self.nats.stream).await {
            Ok(_) => StreamCheck::Unavailable("its leader is not elected yet".into()),
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    StreamCheck::Missing
                }
                _ => StreamCheck::Unavailable(error_chain(&e)),
            },
        }
    }
}

/// How one attempt failed.
enum Attempt {
    Connect(HookError),
    Publish(jetstream::context::PublishError),
}

#[async_trait]
impl Hook for NatsHook {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        let started = Instant::now();
        let subject = self.nats.subject_for(event.protocol());
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id().to_string().as_str());
        headers.insert("Content-Type", CONTENT_TYPE);
        let body = bytes::Bytes::from(encode_body(event));
        let mut attempts = 0u32;
        let mut backoff = FIRST_BACKOFF;
        loop {
            attempts += 1;
            let error = match self.publish_once(&subject, &headers, &body).await {
                Ok(duplicate) => {
                    if duplicate {
                        tracing::debug!(target: "hook_nats", id = %event.id(), "duplicate ack: already stored");
                    }
                    return Ok(Delivery::new(Backend::Nats, attempts, started.elapsed()));
                }
                Err(Attempt::Connect(e))
                    if e.kind() == ErrorKind::Tls || e.kind() == ErrorKind::Other =>
                {
                    // A refused certificate or credential does not heal by retrying.
                    return Err(e.with_attempts(attempts).with_elapsed(started.elapsed()));
                }
                Err(Attempt::Connect(e)) => e,
                Err(Attempt::Publish(e)) => match e.kind() {
                    // "No responders": no stream takes the subject, or the stream's leader is
                    // being elected after a failover. Ask the JetStream API which it is.
                    PublishErrorKind::StreamNotFound => match self.stream_check().await {
                        StreamCheck::Missing => {
                            return Err(HookError::new(
                                ErrorKind::Other,
                                format!(
                                    "nats {}: no stream stores subject {subject:?} (nats.stream {:?} \
                                     does not exist and nats.create_stream is off)",
                                    self.plan.servers, self.nats.stream
                                ),
                            )
                            .with_backend(Backend::Nats)
                            .with_redelivery(Redelivery::Permanent)
                            .with_attempts(attempts)
                            .with_elapsed(started.elapsed()));
                        }
                        StreamCheck::Unavailable(why) => HookError::new(
                            ErrorKind::Transport,
                            format!(
                                "nats {}: the stream {:?} does not answer yet: {why}",
                                self.plan.servers, self.nats.stream
                            ),
                        ),
                    },
                    PublishErrorKind::TimedOut => HookError::new(
                        ErrorKind::Timeout,
                        format!(
                            "nats {}: no ack from the stream within nats.ack_timeout ({:?})",
                            self.plan.servers,
                            self.nats.ack_timeout()
                        ),
                    ),
                    _ => HookError::new(
                        ErrorKind::Transport,
                        format!(
                            "nats {}: publish failed: {}",
                            self.plan.servers,
                            self.plan.scrub(&error_chain(&e))
                        ),
                    ),
                },
            };
            let elapsed = started.elapsed();
            if elapsed + backoff >= self.deadline {
                return Err(HookError::new(
                    ErrorKind::DeadlineExceeded,
                    format!(
                        "{} (gave up after {attempts} attempt(s) within hooks.delivery_deadline)",
                        error.message()
                    ),
                )
                .with_backend(Backend::Nats)
                .with_attempts(attempts)
                .with_elapsed(elapsed)
                .with_source(error));
            }
            tracing::debug!(target: "hook_nats", id = %event.id(), attempt = attempts, "{error}; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
