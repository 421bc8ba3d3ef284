//! The consumer side, for `hookctl relay`: the shared durable pull consumer and the redelivery
//! schedule.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use hook_config::{ConfigError, NatsSection, NatsServers, SpoolSection};
use hook_core::{Backend, ErrorKind, HookError};

use crate::connect::{ConnectPlan, error_chain};

/// When a relay NAKs a message whose hook failed transiently, and when it gives up: the
/// `hooks.spool` schedule (`redeliver_min` doubling up to `redeliver_max`, ±10 % jitter) and
/// `max_age`.
///
/// ```
/// use std::time::Duration;
/// use hook_nats::RedeliverySchedule;
///
/// let s = RedeliverySchedule::from_spool(&hook_config::SpoolSection::default());
/// assert_eq!(s.base_delay(1), Duration::from_secs(30));
/// assert_eq!(s.base_delay(2), Duration::from_secs(60));
/// assert_eq!(s.base_delay(20), Duration::from_secs(3600));
/// // 30 s, 60 s, ... 1920 s, then 1 h steps: 30 deliveries fit in 24 h.
/// assert_eq!(s.max_deliver(), 30);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RedeliverySchedule {
    min: Duration,
    max: Duration,
    max_age: Duration,
}

impl RedeliverySchedule {
    /// The schedule of a `hooks.spool` section (its keys apply with or without a spool dir).
    pub fn from_spool(spool: &SpoolSection) -> RedeliverySchedule {
        RedeliverySchedule::new(
            spool.redeliver_min(),
            spool.redeliver_max(),
            spool.max_age(),
        )
    }

    /// A schedule from its three values (`min` at least 1 ms, `max` at least `min`).
    pub fn new(min: Duration, max: Duration, max_age: Duration) -> RedeliverySchedule {
        let min = min.max(Duration::from_millis(1));
        RedeliverySchedule {
            min,
            max: max.max(min),
            max_age,
        }
    }

    /// The wait before redelivery after the `delivered`-th delivery failed (1-based), without
    /// jitter: `min * 2^(delivered-1)`, at most `max`.
    pub fn base_delay(&self, delivered: u32) -> Duration {
        let shift = delivered.saturating_sub(1).min(40);
        self.min
            .checked_mul(1u32 << shift.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// [`base_delay`](Self::base_delay) with ±10 % jitter drawn from `seed` (e.g. the stream
    /// sequence), so that a burst of failures does not come back at one instant.
    pub fn delay(&self, delivered: u32, seed: u64) -> Duration {
        let base = self.base_delay(delivered);
        // SplitMix64 of the seed: a uniform fraction in [-0.1, 0.1].
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let fraction = (z >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        base.mul_f64(0.9 + 0.2 * fraction)
    }

    /// `max_age`: an event older than this is not retried any more (dead).
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The consumer's `max_deliver`: the first delivery plus every redelivery whose cumulative
    /// wait fits in `max_age` (at least 1, at most 10,000). Deliveries after an expired ack wait
    /// (a relay that died) count too.
    pub fn max_deliver(&self) -> i64 {
        let mut total = Duration::ZERO;
        let mut deliveries = 1i64;
        while deliveries < 10_000 {
            total += self.base_delay(deliveries as u32);
            if total > self.max_age {
                break;
            }
            deliveries += 1;
        }
        deliveries
    }
}

/// A relay's connection and the durable pull consumer every relay shares.
#[derive(Debug)]
pub struct RelaySource {
    client: async_nats::Client,
    consumer: consumer::PullConsumer,
    plan: ConnectPlan,
}

/// The messages of one pull request ([`RelaySource::batch`]), as async-nats delivers them.
pub type RelayBatch = consumer::pull::Batch;

impl RelaySource {
    /// Checks the settings and reads the TLS files (errors name the key), without connecting.
    pub fn plan(servers: &NatsServers, nats: &NatsSection) -> Result<(), ConfigError> {
        nats.validate()?;
        ConnectPlan::new(servers, nats, "sftpgo-hooks-relay").map(|_| ())
    }

    /// Connects to `servers`, gets (or creates, with `nats.create_stream`) the stream, and gets
    /// or creates the durable consumer `nats.consumer`: filter `<prefix>.>`, explicit ack,
    /// `ack_wait` = `nats.ack_wait`, `max_deliver` from `schedule`, `max_ack_pending` =
    /// `max_ack_pending`. An existing consumer is used as it is (a 2.9 server never updates one).
    pub async fn connect(
        servers: &NatsServers,
        nats: &NatsSection,
        schedule: &RedeliverySchedule,
        max_ack_pending: usize,
    ) -> Result<RelaySource, HookError> {
        // Room to queue an ack for every message the relay may hold while the connection is
        // down, so settling never waits on the client's queue (which is not drained while
        // async-nats reconnects).
        let plan = ConnectPlan::new(servers, nats, "sftpgo-hooks-relay")
            .map_err(|e| {
                HookError::new(ErrorKind::Other, e.to_string()).with_backend(Backend::Nats)
            })?
            .with_capacity(max_ack_pending.saturating_mul(2));
        let client = plan.connect().await?;
        let js = jetstream::ContextBuilder::new()
            .timeout(nats.ack_timeout())
            .build(client.clone());
        // During a failover (a node just died, a meta leader is being elected) the JetStream API
        // does not answer for a few seconds: keep trying for a minute.
        let started = std::time::Instant::now();
        let mut wait = Duration::from_millis(250);
        loop {
            match RelaySource::consumer(&js, nats, schedule, max_ack_pending).await {
                Ok(consumer) => {
                    return Ok(RelaySource {
                        client,
                        consumer,
                        plan,
                    });
                }
                Err(e)
                    if e.redelivery() == hook_core::Redelivery::Transient
                        && started.elapsed() < Duration::from_secs(60) =>
                {
                    tracing::warn!(target: "hook_nats", "{e}; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(4));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn consumer(
        js: &jetstream::Context,
        nats: &NatsSection,
        schedule: &RedeliverySchedule,
        max_ack_pending: usize,
    ) -> Result<consumer::PullConsumer, HookError> {
        let stream = if nats.create_stream {
            crate::stream::ensure_stream(js, nats).await?
        } else {
            js.get_stream(&nats.stream).await.map_err(|e| {
                let missing = matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND);
                HookError::new(
                    ErrorKind::Other,
                    format!("nats: stream {:?}: {}", nats.stream, error_chain(&e)),
                )
                .with_redelivery(if missing {
                    hook_core::Redelivery::Permanent
                } else {
                    hook_core::Redelivery::Transient
                })
            })?
        };
        stream
            .get_or_create_consumer(
                &nats.consumer,
                consumer::pull::Config {
                    durable_name: Some(nats.consumer.clone()),
                    filter_subject: nats.stream_subjects(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: nats.ack_wait(),
                    max_deliver: schedule.max_deliver(),
                    max_ack_pending: i64::try_from(max_ack_pending).unwrap_or(i64::MAX),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                HookError::new(
                    ErrorKind::Transport,
                    format!(
                        "nats: cannot get or create consumer {:?} on stream {:?}: {}",
                        nats.consumer,
                        nats.stream,
                        error_chain(&e)
                    ),
                )
                .with_backend(Backend::Nats)
            })
    }

    /// One pull request for at most `max` messages, waiting at most `expires` for them; the
    /// messages arrive on the returned stream as the server sends them. A relay asks for no more
    /// than it can track at once, so that no pulled message waits unseen in a buffer while its
    /// ack wait runs.
    pub async fn batch(&self, max: usize, expires: Duration) -> Result<RelayBatch, HookError> {
        self.consumer
            .batch()
            .max_messages(max.max(1))
            .expires(expires)
            .messages()
            .await
            .map_err(|e| {
                HookError::new(
                    ErrorKind::Transport,
                    format!("nats: cannot pull from the consumer: {}", error_chain(&e)),
                )
                .with_backend(Backend::Nats)
            })
    }

    /// The ack wait the server applies to this relay's messages: the consumer's own (an
    /// existing consumer keeps the `ack_wait` it was created with, whatever `nats.ack_wait` says
    /// now).
    pub fn ack_wait(&self) -> Duration {
        self.consumer.cached_info().config.ack_wait
    }

    /// Whether the connection is up now (a relay sends no progress while it is down: the
    /// server could not see it, and it would only fill the client's queue).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Resolves once every ack queued on this connection before the call has been written to
    /// its socket (`false` if the connection closed first). Nothing goes to the server: it is
    /// the client's own write, so it costs no round trip. While the connection is down it waits
    /// for the reconnection (bound it with a timeout).
    ///
    /// A relay holds a hook slot until its event's ack is written: a relay killed at any moment
    /// then leaves at most its slots' worth of events run but not acked (and so run again by
    /// another relay), not also the acks still queued in the client.
    pub fn acks_written(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let client = self.client.clone();
        async move { client.flush().await.is_ok() }
    }

    /// Sends every buffered ack to the server (call before exiting), waiting at most `within`
    /// (a server that is gone is never waited for: async-nats would wait for the reconnection).
    pub async fn flush(&self, within: Duration) -> Result<(), HookError> {
        let flushed = tokio::time::timeout(within, self.client.flush())
            .await
            .map_err(|_| {
                HookError::new(
                    ErrorKind::Timeout,
                    format!(
                        "nats {}: the server did not take the last acks within {within:?} \
                         (unreachable?); the messages they settle are redelivered after the \
                         ack wait",
                        self.plan.servers
                    ),
                )
                .with_backend(Backend::Nats)
            })?;
        flushed.map_err(|e| {
            HookError::new(
                ErrorKind::Transport,
                format!(
                    "nats {}: cannot flush the acks: {}",
                    self.plan.servers,
                    error_chain(&e)
                ),
            )
            .with_backend(Backend::Nats)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_caps_and_jitters() {
        let s = RedeliverySchedule::new(
            Duration::from_millis(200),
            Duration::from_secs(1),
            Duration::from_secs(3),
        );
        let base: Vec<u128> = (1..=5).map(|n| s.base_delay(n).as_millis()).collect();
        assert_eq!(base, [200, 400, 800, 1000, 1000]);
        // 0.2 + 0.4 + 0.8 + 1.0 = 2.4 s <= 3 s; + 1.0 > 3 s: 5 deliveries.
        assert_eq!(s.max_deliver(), 5);
        for seed in 0..1000 {
            let d = s.delay(2, seed).as_millis();
            assert!((360..=440).contains(&d), "{d}");
        }
        assert_ne!(s.delay(2, 1), s.delay(2, 2));
        let tiny = RedeliverySchedule::new(Duration::ZERO, Duration::ZERO, Duration::ZERO);
        assert_eq!(tiny.max_deliver(), 1);
        assert_eq!(tiny.base_delay(u32::MAX), Duration::from_millis(1));
    }
}
