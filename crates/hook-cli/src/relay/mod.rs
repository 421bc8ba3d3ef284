//! `hookctl relay`: JetStream -> the Dispatcher -> the configured program or HTTP hook.
//!
//! One durable pull consumer (`nats.consumer`) is shared by every relay, so the relays form a
//! work queue. Each message is decoded back into its event (same id, IP, protocol, username and
//! duration) and fired through the same Dispatcher and backend a server uses. Its outcome decides
//! the ack:
//!
//! * delivered: `+ACK`;
//! * transient failure (transport error, timeout or deadline of an HTTP hook, HTTP 408, 429 or
//!   5xx but 501, a cancelled hook): `-NAK` with the `hooks.spool` redelivery delay, unless the
//!   event is older than `hooks.spool.max_age` or this was the consumer's last delivery
//!   (`max_deliver`): then terminated as dead;
//! * permanent failure (any other HTTP status, TLS, refused redirect, a program that could not
//!   start or that ran and failed: SFTPGo never runs a program twice), or a message that is not
//!   an event: `+TERM`, logged at WARN with the event, counted (the dead letter).
//!
//! A message held (waiting for a slot or running) for a quarter of the consumer's `ack_wait`
//! sends `+WPI` (progress) so the server does not hand it to another relay. A second delivery
//! of an event held or lately settled here is settled with it, never run again ([`jobs`]).

use std::collections::{HashMap, VecDeque};
use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hook_nats::{AckKind, Message, RedeliverySchedule, RelaySource, decode_body};
use hooks::{
    Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, EventId, HookError, HookTarget,
    NatsServers, Redelivery,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::check::{invalid, load};
use crate::cli::{Cli, RelayArgs};
use crate::report::summary_line;
use jobs::{Job, RECENT_CAPACITY, Recent, Settled};

mod jobs;

/// Messages a relay may hold per hook slot (running, or waiting and sending progress).
const WINDOW_PER_SLOT: usize = 8;
/// Pull requests a relay keeps in flight.
const PULLERS: usize = 1;
/// How long a stopping relay waits for the server to take its last NAKs and acks.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long a pull request waits for messages (so a request lost in a failover is renewed
/// quickly, and a stopping relay waits at most this for its open request to run out).
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Whether a failure may heal by itself, so the message is redelivered later: the spool's rules
/// ([`HookError::redelivery`]): transient and cancelled come back, permanent and ran-and-failed
/// programs are terminated.
pub(crate) fn is_transient(err: &HookError) -> bool {
    matches!(
        err.redelivery(),
        Redelivery::Transient | Redelivery::Cancelled
    )
}

pub(crate) fn run(cli: &Cli, args: &RelayArgs) -> Result<ExitCode, Box<dyn Error>> {
    let servers = NatsServers::parse_for_key("--from", &args.from)?;
    let idle_exit = match args.idle_exit {
        None => None,
        Some(s) => Some(
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("--idle-exit: {s} is not a number of seconds > 0"))?,
        ),
    };
    let loaded = load(cli)?;
    let mut config = loaded.config;
    let target = config.target()?;
    match &target {
        HookTarget::Disabled => {
            return Err(
                "no hook configured for the relay to run: set common.post_disconnect_hook \
                        (or SFTPGO_COMMON__POST_DISCONNECT_HOOK) to a program or an http(s) URL"
                    .into(),
            );
        }
        HookTarget::Nats(_) => {
            return Err(format!(
                "{}: {target} is a NATS target: the relay would publish the events it consumes \
                 back to NATS (a loop); set it to the program or http(s) URL the relay should run",
                hooks::HOOK_KEY
            )
            .into());
        }
        _ => {}
    }
    // Exactly what `check`, `fire` and a server's start-up run.
    hooks::validate_config(&config).map_err(invalid)?;
    RelaySource::plan(&servers, &config.nats).map_err(|e| format!("invalid configuration: {e}"))?;
    let concurrency = match args.concurrency {
        Some(c) => usize::try_from(c)?,
        None => config.hooks.max_in_flight,
    };
    let schedule = RedeliverySchedule::from_spool(&config.hooks.spool);
    // JetStream is this relay's durable store: its dispatcher keeps events in memory only.
    config.hooks.spool.dir.clear();

    // Always the multi-thread runtime, HTTP hooks too (unlike `fire`): the NATS connection's
    // task (reading messages, writing acks) then runs next to the hooks instead of taking
    // turns with them on one thread; measured faster in every interleaved round
    // (docs/benchmarks.md, "NATS: publish storm and the relay").
    let runtime = crate::runtime::start(false)?;
    runtime.block_on(async move {
        // Before the dispatcher: it registers its metrics when it starts.
        if let Some(listen) = args.metrics_address {
            install_metrics_exporter(listen)?;
        }
        let relay_metrics = RelayMetrics::new();
        let hook = hooks::build_hook(&config)?.ok_or("no hook configured")?;
        let max_ack_pending = (concurrency * WINDOW_PER_SLOT * 4).max(4096);
        let source = RelaySource::connect(&servers, &config.nats, &schedule, max_ack_pending)
            .await
            .map_err(|e| e.to_string())?;
        // The event comes back with a failure only (for its log line): a delivered one needs
        // no copy.
        type Outcome = (EventId, Result<Delivery, HookError>, Option<DisconnectEvent>);
        let (tx, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
        let options = DispatcherOptions::from_config(&config.hooks)?
            .with_all_protocols()
            .with_max_in_flight(concurrency)
            .with_queue_capacity(concurrency.max(1))
            .with_on_outcome(move |event, result| {
                let _ = tx.send((
                    event.id(),
                    result.clone(),
                    result.is_err().then(|| event.clone()),
                ));
            });
        let dispatcher = Dispatcher::new(hook, options);
        // Credits: messages this relay may hold (running or queued in the dispatcher) at once,
        // twice the concurrency so the next pull overlaps the running hooks. The puller asks
        // for exactly the free credits, so every pulled message is tracked (and sends progress)
        // from the moment it arrives.
        let max_events = args.max_events;
        let budget = max_events.unwrap_or(u64::MAX);
        let window = concurrency.saturating_mul(WINDOW_PER_SLOT).max(1);
        let mut issued = usize::try_from(budget).unwrap_or(usize::MAX).min(window);
        let credits = std::sync::Arc::new(tokio::sync::Semaphore::new(issued));
        let source = std::sync::Arc::new(source);
        let (message_tx, mut pulled) = mpsc::channel::<Message>(window);
        // Several pull requests in flight, so that the round trip of one never leaves the hooks
        // idle.
        let pullers: Vec<_> = (0..PULLERS)
            .map(|_| {
                tokio::spawn(pull(
                    source.clone(),
                    credits.clone(),
                    message_tx.clone(),
                    window,
                ))
            })
            .collect();
        drop(message_tx);
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;

        // The consumer's ack wait (an existing consumer keeps its own), or `nats.ack_wait` if
        // that is shorter.
        let ack_wait = match source.ack_wait() {
            d if d.is_zero() => config.nats.ack_wait(),
            d => d.min(config.nats.ack_wait()),
        };
        // Progress once a held message has gone a quarter of the ack wait without, checked every
        // eighth: at most about 3/8 of the ack wait pass between two, the rest is margin for a
        // loaded machine and the network.
        let progress_after = (ack_wait / 4).max(Duration::from_millis(50));
        let mut progress_tick = tokio::time::interval(progress_after / 2);
        progress_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        // Every event held, by id (several deliveries of one event make one job, run once).
        let mut jobs: HashMap<EventId, Job> = HashMap::new();
        // The jobs whose hook has not started, in arrival order.
        let mut waiting: VecDeque<EventId> = VecDeque::new();
        let mut recent = Recent::new(ack_wait * 2, RECENT_CAPACITY);
        let mut in_flight = 0usize;
        let (mut handled, mut failed, mut acked, mut naked) = (0u64, 0u64, 0u64, 0u64);
        let mut duplicates = 0u64;
        let mut latencies: Vec<Duration> = Vec::new();
        let mut first_message: Option<Instant> = None;
        let mut last_handled = Instant::now();
        let mut last_activity = Instant::now();
        // Set by a signal, `--max-events` or `--idle-exit`. From then on no pull request and no
        // hook starts; the running hooks finish and are settled; the open pull request runs out
        // (what it still brings is held, sending progress); then every message not run is NAKed,
        // once, for another relay to take at once. (NAKing while a pull request of this relay is
        // open would hand the message straight back to it.)
        let mut stopping = false;
        let mut pulls_open = true;
        let mut drain_deadline = tokio::time::Instant::now();

        loop {
            if !stopping && max_events.is_some_and(|n| handled >= n) {
                stopping = true;
            }
            if stopping && !credits.is_closed() {
                credits.close();
                drain_deadline = tokio::time::Instant::now() + PULL_EXPIRES + Duration::from_millis(500);
            }
            // Start what waits, up to the concurrency.
            while !stopping && in_flight < concurrency {
                let Some(id) = waiting.pop_front() else { break };
                let Some(job) = jobs.get_mut(&id) else { continue };
                let Some(event) = job.event.take() else { continue };
                match dispatcher.fire(event) {
                    Ok(_) => in_flight += 1,
                    Err(e) => {
                        tracing::warn!("relay: the dispatcher refused an event ({e}); redelivering");
                        if let Some(job) = jobs.remove(&id) {
                            let _ = job.latest().ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                            give_back(&credits, &mut issued, budget, handled, job.count());
                        }
                    }
                }
            }
            if stopping && in_flight == 0 && !pulls_open {
                break;
            }
            let idle_deadline = idle_exit.map(|d| tokio::time::Instant::from_std(last_activity + d));
            tokio::select! {
                biased;
                _ = sigterm.recv() => { stopping = true; }
                _ = sigint.recv() => { stopping = true; }
                // Before the outcomes: a storm of outcomes must not starve the progress.
                // Not while the connection is down: the server could not see it, and it would
                // only fill the client's queue.
                _ = progress_tick.tick() => {
                    if source.is_connected() {
                        for job in jobs.values_mut() {
                            if job.last_progress.elapsed() >= progress_after {
                                let _ = job.latest().ack_with(AckKind::Progress).await;
                                job.last_progress = Instant::now();
                            }
                        }
                    }
                }
                Some(first) = outcomes.recv() => {
                    // Every outcome that is ready, in one go: their acks leave in one write.
                    let mut ready = vec![first];
                    while let Ok(more) = outcomes.try_recv() {
                        ready.push(more);
                    }
                    for (id, result, event) in ready {
                    let Some(job) = jobs.remove(&id) else {
                        continue;
                    };
                    in_flight -= 1;
                    let now = Instant::now();
                    last_activity = now;
                    match result {
                        Ok(delivery) => {
                            for message in job.messages() {
                                if let Err(e) = message.ack().await {
                                    tracing::warn!(id = %id, "relay: ack failed (the event will be redelivered): {e}");
                                }
                            }
                            recent.insert(id, Settled::Acked, now);
                            acked += 1;
                            handled += 1;
                            relay_metrics.acked();
                            latencies.push(delivery.elapsed());
                            last_handled = now;
                        }
                        Err(err) => {
                            let elapsed = err.elapsed().unwrap_or_default();
                            let age = age_of(id);
                            let event = event.map_or_else(|| id.to_string(), |e| e.to_string());
                            let last = i64::from(job.delivered) >= schedule.max_deliver();
                            if is_transient(&err) && age <= schedule.max_age() && !last {
                                let delay = schedule.delay(job.delivered, job.sequence);
                                tracing::info!(
                                    id = %id, delivery = job.delivered,
                                    "relay: {event}: transient failure ({err}); redelivery in {delay:?}"
                                );
                                // The newest delivery is the one the server waits on.
                                if let Err(e) = job.latest().ack_with(AckKind::Nak(Some(delay))).await {
                                    tracing::warn!(id = %id, "relay: NAK failed (redelivered after nats.ack_wait): {e}");
                                }
                                naked += 1;
                                relay_metrics.naked.increment(1);
                            } else {
                                let why = if !is_transient(&err) {
                                    "permanent failure".to_owned()
                                } else if last {
                                    format!("gave up after {} deliveries (max_deliver, from hooks.spool.max_age)", job.delivered)
                                } else {
                                    format!("older than hooks.spool.max_age ({age:?})")
                                };
                                tracing::warn!(
                                    id = %id, delivery = job.delivered, kind = %err.kind(),
                                    "relay: dead letter: {event}: {why}: {err}; terminated"
                                );
                                for message in job.messages() {
                                    if let Err(e) = message.ack_with(AckKind::Term).await {
                                        tracing::warn!(id = %id, "relay: TERM failed: {e}");
                                    }
                                }
                                recent.insert(id, Settled::Terminated, now);
                                failed += 1;
                                handled += 1;
                                relay_metrics.terminated();
                                latencies.push(elapsed);
                                last_handled = now;
                            }
                        }
                    }
                    give_back(&credits, &mut issued, budget, handled, job.count());
                    }
                }
                next = pulled.recv(), if pulls_open => {
                    let Some(message) = next else {
                        // Every puller has ended (only at a stop).
                        pulls_open = false;
                        continue;
                    };
                    let now = Instant::now();
                    last_activity = now;
                    first_message.get_or_insert(now);
                    let (delivered, sequence) = match message.info() {
                        Ok(info) => (u32::try_from(info.delivered).unwrap_or(u32::MAX), info.stream_sequence),
                        Err(_) => (1, 0),
                    };
                    if delivered > 1 {
                        relay_metrics.redelivered.increment(1);
                    }
                    match decode_body(&message.payload) {
                        Ok(event) => {
                            let id = event.id();
                            if let Some(job) = jobs.get_mut(&id) {
                                // Held here already (waiting or running): settled with it.
                                tracing::debug!(id = %id, delivery = delivered, "relay: a second delivery of an event held here; settled with the first");
                                job.join(message, delivered);
                                duplicates += 1;
                                relay_metrics.duplicates.increment(1);
                            } else if let Some(how) = recent.get(id, now) {
                                // Settled here lately (the ack reached the server too late, or
                                // was lost): settled the same way again, not run again.
                                tracing::debug!(id = %id, delivery = delivered, "relay: a redelivery of an event settled here ({how:?}); settled again");
                                let kind = match how {
                                    Settled::Acked => AckKind::Ack,
                                    Settled::Terminated => AckKind::Term,
                                };
                                let _ = message.ack_with(kind).await;
                                duplicates += 1;
                                relay_metrics.duplicates.increment(1);
                                give_back(&credits, &mut issued, budget, handled, 1);
                            } else {
                                // Held here (sending progress) until a hook slot is free.
                                jobs.insert(id, Job::new(message, event, delivered, sequence));
                                waiting.push_back(id);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(
                                subject = %message.subject, sequence,
                                "relay: dead letter: {e}; terminated"
                            );
                            let _ = message.ack_with(AckKind::Term).await;
                            failed += 1;
                            handled += 1;
                            relay_metrics.terminated();
                            last_handled = now;
                            give_back(&credits, &mut issued, budget, handled, 1);
                        }
                    }
                }
                // The open pull request should have run out by now; stop waiting for it.
                _ = tokio::time::sleep_until(drain_deadline), if stopping && pulls_open && in_flight == 0 => {
                    pulls_open = false;
                }
                _ = async {
                    match idle_deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                }, if !stopping && in_flight == 0 && waiting.is_empty() && idle_deadline.is_some() => {
                    stopping = true;
                }
            }
        }
        // What was not run goes back at once (not after the ack wait): the held jobs (none is
        // running now) and anything that arrived after the relay stopped reading.
        for puller in pullers {
            puller.abort();
            let _ = puller.await;
        }
        // Bounded: with the server gone, nothing is waited for beyond `EXIT_WAIT` (what was not
        // settled is redelivered after the ack wait).
        let give_back_all = async {
            while let Ok(message) = pulled.try_recv() {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
            for job in jobs.values() {
                let _ = job.latest().ack_with(AckKind::Nak(None)).await;
            }
        };
        if tokio::time::timeout(EXIT_WAIT, give_back_all).await.is_err() {
            tracing::warn!("relay: NATS did not take the NAKs within {EXIT_WAIT:?}; those messages are redelivered after the ack wait");
        }
        if let Err(e) = source.flush(EXIT_WAIT).await {
            tracing::warn!("relay: {e}");
        }
        let _ = dispatcher.shutdown(Duration::from_secs(1)).await;
        let elapsed = first_message.map_or(Duration::ZERO, |t| last_handled.saturating_duration_since(t));
        eprintln!(
            "relay: acked={acked} terminated={failed} redelivery_requested={naked} duplicates={duplicates}"
        );
        println!("{}", summary_line(handled, failed, elapsed, &mut latencies));
        Ok(ExitCode::SUCCESS)
    })
}

/// The relay's counters (docs/metrics.md), registered once; no-ops without `--metrics-address`.
struct RelayMetrics {
    handled: metrics::Counter,
    acked: metrics::Counter,
    naked: metrics::Counter,
    terminated: metrics::Counter,
    redelivered: metrics::Counter,
    duplicates: metrics::Counter,
}

impl RelayMetrics {
    fn new() -> RelayMetrics {
        use hooks::metrics::names;
        let counter = |name: &'static str, help: &'static str| {
            metrics::describe_counter!(name, help);
            let c = metrics::counter!(name);
            // The series exists from the start, at 0, so that rules see it.
            c.increment(0);
            c
        };
        RelayMetrics {
            handled: counter(
                names::RELAY_HANDLED,
                "Messages the relay took from the JetStream consumer and ran the hook for (acked or terminated).",
            ),
            acked: counter(
                names::RELAY_ACKED,
                "Messages acknowledged after the hook succeeded.",
            ),
            naked: counter(
                names::RELAY_NAKED,
                "Messages negatively acknowledged for a later redelivery (transient failure).",
            ),
            terminated: counter(
                names::RELAY_TERMINATED,
                "Messages terminated: never redelivered (permanent failure, too many deliveries, too old, undecodable).",
            ),
            redelivered: counter(
                names::RELAY_REDELIVERED,
                "Messages received that the stream had delivered before.",
            ),
            duplicates: counter(
                names::RELAY_DUPLICATES,
                "Messages of an event this relay held or had just settled: settled with it, the hook not run again.",
            ),
        }
    }

    fn acked(&self) {
        self.acked.increment(1);
        self.handled.increment(1);
    }

    fn terminated(&self) {
        self.terminated.increment(1);
        self.handled.increment(1);
    }
}

/// `--metrics-address`: metrics-exporter-prometheus as the global recorder, serving
/// `http://LISTEN/metrics`, with the hooks' histogram buckets.
fn install_metrics_exporter(listen: std::net::SocketAddr) -> Result<(), Box<dyn Error>> {
    use hooks::metrics::HISTOGRAM_BUCKETS;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let error = |e: &dyn std::fmt::Display| format!("--metrics-address {listen}: {e}");
    let mut builder = PrometheusBuilder::new().with_http_listener(listen);
    for (name, buckets) in HISTOGRAM_BUCKETS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            .map_err(|e| error(&e))?;
    }
    builder.install().map_err(|e| error(&e).into())
}

/// Pulls exactly as many messages as there are free credits (at least one, at most `window`),
/// in requests that expire after [`PULL_EXPIRES`]; ends when the credits are closed (a stop).
async fn pull(
    source: std::sync::Arc<RelaySource>,
    credits: std::sync::Arc<tokio::sync::Semaphore>,
    to: mpsc::Sender<Message>,
    window: usize,
) {
    loop {
        let Ok(first) = credits.acquire().await else {
            return;
        };
        first.forget();
        let mut want = 1;
        // Wait a few milliseconds for a quarter of the window to be free: a storm is then pulled
        // in large requests, not one request (a round trip) per finished hook, which could not
        // keep the hooks busy.
        let enough = (window / 8).max(1);
        let until = tokio::time::Instant::now() + Duration::from_millis(5);
        loop {
            while want < window {
                match credits.try_acquire() {
                    Ok(permit) => {
                        permit.forget();
                        want += 1;
                    }
                    Err(_) => break,
                }
            }
            if want >= enough || tokio::time::Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut got = 0;
        match source.batch(want, PULL_EXPIRES).await {
            Ok(mut batch) => {
                while let Some(next) = batch.next().await {
                    match next {
                        Ok(message) => {
                            got += 1;
                            if to.send(message).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!("relay: pulling from NATS: {e}"),
                    }
                }
            }
            Err(e) => {
                tracing::warn!("relay: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        credits.add_permits(want - got.min(want));
    }
}

/// Returns the credits of `messages` messages that left the relay (acked, NAKed or terminated), unless the
/// `--max-events` budget is covered by what was handled plus the credits still issued (held by
/// running, queued or requested messages, or free).
fn give_back(
    credits: &tokio::sync::Semaphore,
    issued: &mut usize,
    budget: u64,
    handled: u64,
    messages: usize,
) {
    for _ in 0..messages {
        *issued -= 1;
        if handled + (*issued as u64) < budget {
            credits.add_permits(1);
            *issued += 1;
        }
    }
}

/// How old an event is: now minus the creation time in its id.
fn age_of(id: EventId) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Duration::from_millis(now.saturating_sub(id.unix_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hooks::{Backend, ErrorKind, HookStatus};

    #[test]
    fn classification_follows_the_spool_rules() {
        let http = |code| {
            HookError::new(ErrorKind::HttpStatus, "x")
                .with_backend(Backend::Http)
                .with_status(HookStatus::Http(code))
        };
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_transient(&http(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 501] {
            assert!(!is_transient(&http(code)), "{code}");
        }
        let kind = |k, b| HookError::new(k, "x").with_backend(b);
        assert!(is_transient(&kind(ErrorKind::Transport, Backend::Http)));
        assert!(is_transient(&kind(ErrorKind::Timeout, Backend::Http)));
        assert!(!is_transient(&kind(ErrorKind::Timeout, Backend::Exec)));
        assert!(!is_transient(&kind(ErrorKind::ExitStatus, Backend::Exec)));
        assert!(!is_transient(&kind(ErrorKind::Spawn, Backend::Exec)));
        assert!(!is_transient(&kind(ErrorKind::Tls, Backend::Http)));
        assert!(is_transient(&kind(
            ErrorKind::DeadlineExceeded,
            Backend::Http
        )));
    }
}
