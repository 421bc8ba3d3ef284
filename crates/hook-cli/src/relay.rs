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
//! A hook still running after a third of `nats.ack_wait` sends `+WPI` (progress) so the server
//! does not hand the message to another relay.

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

/// Messages a relay may hold per hook slot (running, or waiting and sending progress).
const WINDOW_PER_SLOT: usize = 8;
/// Pull requests a relay keeps in flight.
const PULLERS: usize = 1;

/// A message waiting for a hook slot, or whose hook is running.
struct Running {
    message: Message,
    id: EventId,
    /// The decoded event while it waits; moved into the dispatcher when its hook starts (a
    /// failed outcome brings it back for the log line).
    event: Option<DisconnectEvent>,
    delivered: u32,
    sequence: u64,
    last_progress: Instant,
}

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

        let ack_wait = config.nats.ack_wait();
        let progress_every = (ack_wait / 3).max(Duration::from_millis(100));
        let mut progress_tick = tokio::time::interval(progress_every);
        progress_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        // By event id; the rare second message of an id already running waits in `twins`.
        let mut running: HashMap<EventId, Running> = HashMap::new();
        let mut twins: Vec<Running> = Vec::new();
        let mut waiting: VecDeque<Running> = VecDeque::new();
        let mut in_flight = 0usize;
        let (mut handled, mut failed, mut acked, mut naked) = (0u64, 0u64, 0u64, 0u64);
        let mut latencies: Vec<Duration> = Vec::new();
        let mut first_message: Option<Instant> = None;
        let mut last_handled = Instant::now();
        let mut last_activity = Instant::now();
        let mut stopping = false;

        loop {
            // Start what waits, up to the concurrency (not at a stop: those go back to NATS).
            while !stopping && in_flight < concurrency {
                let Some(mut job) = waiting.pop_front() else { break };
                let Some(event) = job.event.take() else { continue };
                match dispatcher.fire(event) {
                    Ok(_) => {
                        in_flight += 1;
                        if let Some(twin) = running.insert(job.id, job) {
                            // The same event twice in flight (a redelivery while the first copy
                            // runs): the first stays here, the second waits in `twins`. Each
                            // outcome settles one of the two messages; both carry the event.
                            if let Some(later) = running.insert(twin.id, twin) {
                                twins.push(later);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!("relay: the dispatcher refused an event ({e}); redelivering");
                        let _ = job.message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                        give_back(&credits, &mut issued, budget, handled);
                    }
                }
            }
            if stopping && !waiting.is_empty() {
                for job in waiting.drain(..) {
                    let _ = job.message.ack_with(AckKind::Nak(None)).await;
                }
            }
            let can_pull = !stopping;
            if stopping && in_flight == 0 {
                break;
            }
            if max_events.is_some_and(|n| handled >= n) && in_flight == 0 {
                break;
            }
            let idle_deadline = idle_exit.map(|d| tokio::time::Instant::from_std(last_activity + d));
            tokio::select! {
                biased;
                _ = sigterm.recv() => { stopping = true; }
                _ = sigint.recv() => { stopping = true; }
                Some(first) = outcomes.recv() => {
                    // Every outcome that is ready, in one go: their acks leave in one write.
                    let mut ready = vec![first];
                    while let Ok(more) = outcomes.try_recv() {
                        ready.push(more);
                    }
                    for (id, result, event) in ready {
                    let Some(job) = running.remove(&id) else {
                        continue;
                    };
                    if let Some(i) = twins.iter().position(|t| t.id == id) {
                        running.insert(id, twins.remove(i));
                    }
                    in_flight -= 1;
                    last_activity = Instant::now();
                    match result {
                        Ok(delivery) => {
                            if let Err(e) = job.message.ack().await {
                                tracing::warn!(id = %id, "relay: ack failed (the event will be redelivered): {e}");
                            }
                            acked += 1;
                            handled += 1;
                            relay_metrics.acked();
                            latencies.push(delivery.elapsed());
                            last_handled = Instant::now();
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
                                if let Err(e) = job.message.ack_with(AckKind::Nak(Some(delay))).await {
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
                                if let Err(e) = job.message.ack_with(AckKind::Term).await {
                                    tracing::warn!(id = %id, "relay: TERM failed: {e}");
                                }
                                failed += 1;
                                handled += 1;
                                relay_metrics.terminated();
                                latencies.push(elapsed);
                                last_handled = Instant::now();
                            }
                        }
                    }
                    give_back(&credits, &mut issued, budget, handled);
                    }
                }
                Some(message) = pulled.recv(), if can_pull => {
                    last_activity = Instant::now();
                    first_message.get_or_insert_with(Instant::now);
                    let (delivered, sequence) = match message.info() {
                        Ok(info) => (u32::try_from(info.delivered).unwrap_or(u32::MAX), info.stream_sequence),
                        Err(_) => (1, 0),
                    };
                    if delivered > 1 {
                        relay_metrics.redelivered.increment(1);
                    }
                    match decode_body(&message.payload) {
                        Ok(event) => {
                            // Held here (sending progress) until a hook slot is free.
                            waiting.push_back(Running {
                                message,
                                id: event.id(),
                                event: Some(event),
                                delivered,
                                sequence,
                                last_progress: Instant::now(),
                            });
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
                            last_handled = Instant::now();
                            give_back(&credits, &mut issued, budget, handled);
                        }
                    }
                }
                _ = progress_tick.tick() => {
                    for job in running.values_mut().chain(twins.iter_mut()).chain(waiting.iter_mut()) {
                        if job.last_progress.elapsed() >= progress_every {
                            let _ = job.message.ack_with(AckKind::Progress).await;
                            job.last_progress = Instant::now();
                        }
                    }
                }
                _ = async {
                    match idle_deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                }, if in_flight == 0 && waiting.is_empty() && idle_deadline.is_some() => {
                    break;
                }
            }
        }
        // Messages pulled but not handed to the dispatcher go back at once (not after the ack
        // wait).
        for puller in pullers {
            puller.abort();
            let _ = puller.await;
        }
        while let Ok(message) = pulled.try_recv() {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        if let Err(e) = source.flush().await {
            tracing::warn!("relay: {e}");
        }
        let _ = dispatcher.shutdown(Duration::from_secs(1)).await;
        let elapsed = first_message.map_or(Duration::ZERO, |t| last_handled.saturating_duration_since(t));
        eprintln!("relay: acked={acked} terminated={failed} redelivery_requested={naked}");
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
/// in requests that expire after 2 s (so a request lost in a failover is renewed quickly).
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
        match source.batch(want, Duration::from_secs(2)).await {
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

/// Returns the credit of a message that left the relay (acked, NAKed or terminated), unless the
/// `--max-events` budget is covered by what was handled plus the credits still issued (held by
/// running, queued or requested messages, or free).
fn give_back(credits: &tokio::sync::Semaphore, issued: &mut usize, budget: u64, handled: u64) {
    *issued -= 1;
    if handled + (*issued as u64) < budget {
        credits.add_permits(1);
        *issued += 1;
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
