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
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hook_nats::{AckKind, Message, RedeliverySchedule, RelaySource, decode_body};
use hooks::{
    Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, EventId, HookConfig, HookError,
    HookTarget, NatsServers, Redelivery,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::check::{invalid, load};
use crate::cli::{Cli, RelayArgs};
use crate::report::summary_line;
use jobs::{Arrival, Budget, Job, Registry, Settled};

mod jobs;

/// A check that the acks queued before it were written (see `RelaySource::acks_written`).
type WriteCheck = Pin<Box<dyn Future<Output = bool>>>;

/// Slots held by settled events whose acks are not known to be written: those settled since the
/// running check was asked for, and those it covers.
fn unwritten(to_write: usize, writing: &Option<(usize, Instant, WriteCheck)>) -> usize {
    to_write + writing.as_ref().map_or(0, |(covered, _, _)| *covered)
}

/// Messages a relay may hold per hook slot (running, or waiting and sending progress).
const WINDOW_PER_SLOT: usize = 8;
/// Pull requests a relay keeps in flight.
const PULLERS: usize = 1;
/// How long a stopping relay waits for the server to take its last NAKs and acks.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long a pull request waits for messages (so a request lost in a failover is renewed
/// quickly, and a stopping relay waits at most this for its open request to run out).
const PULL_EXPIRES: Duration = Duration::from_secs(2);
/// How long a hook slot waits for its event's ack to be written before it is used again anyway
/// (the connection is down: the ack waits in the client's queue, and if it never leaves, the
/// server redelivers the message after the ack wait).
const WRITE_WAIT: Duration = Duration::from_secs(1);

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
    }
    .max(1);
    let schedule = RedeliverySchedule::from_spool(&config.hooks.spool);
    // JetStream is this relay's durable store: its dispatcher keeps events in memory only.
    config.hooks.spool.dir.clear();

    // HTTP hooks: one shard per core, each a current-thread runtime on its own thread with its
    // own NATS connection, dispatcher and connection pool (like one relay per core in one
    // process): nothing crosses threads per event but the registry's lock. Measured against
    // one multi-thread runtime: about a quarter more events/s for less CPU (docs/benchmarks.md,
    // "NATS: publish storm and the relay"). Programs: one shard on the multi-thread runtime
    // `fire` uses for them (a spawn blocks its thread until the child has exec'd).
    let program = matches!(target, HookTarget::Program(_));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = if program { 1 } else { cores.min(concurrency) };
    let max_ack_pending = concurrency.saturating_mul(WINDOW_PER_SLOT * 4).max(4096);
    // This thread serves the metrics and waits for the signals and the shards.
    let main = crate::runtime::start(true)?;
    let (mut sigterm, mut sigint) = main.block_on(async {
        // Before any dispatcher: it registers its metrics when it starts.
        if let Some(listen) = args.metrics_address {
            install_metrics_exporter(listen)?;
        }
        Ok::<_, Box<dyn Error>>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    // Start-up on this thread, shard by shard: a failure exits 2 before anything runs.
    let mut prepared = Vec::with_capacity(shards);
    let mut inboxes = Vec::with_capacity(shards);
    for index in 0..shards {
        let runtime = crate::runtime::start(!program)?;
        let concurrency = concurrency / shards + usize::from(index < concurrency % shards);
        let source = runtime
            .block_on(RelaySource::connect(
                &servers,
                &config.nats,
                &schedule,
                max_ack_pending,
            ))
            .map_err(|e| e.to_string())?;
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        inboxes.push(inbox_tx);
        prepared.push((runtime, source, inbox, concurrency));
    }
    // Settled events are remembered for twice the longest ack wait that applies.
    let ack_wait = prepared
        .iter()
        .map(|(_, source, _, _)| source.ack_wait())
        .fold(config.nats.ack_wait(), Duration::max);
    let shared = Arc::new(Shared {
        budget: Budget::new(args.max_events),
        max_events: args.max_events,
        handled: AtomicU64::new(0),
        stop: watch::channel(false).0,
        registry: Mutex::new(Registry::new(ack_wait * 2)),
        inboxes,
    });
    let settings = Arc::new(Settings {
        config,
        schedule,
        idle_exit,
    });
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut threads = Vec::with_capacity(shards);
    for (index, (runtime, source, inbox, concurrency)) in prepared.into_iter().enumerate() {
        let shard = Shard {
            index,
            concurrency,
            source: Arc::new(source),
            inbox,
            shared: shared.clone(),
            settings: settings.clone(),
        };
        let done_tx = done_tx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("relay-shard-{index}"))
                .spawn(move || {
                    let _ = done_tx.send(runtime.block_on(shard.run()));
                })
                .map_err(|e| format!("cannot start a relay thread: {e}"))?,
        );
    }
    drop(done_tx);
    let totals = main.block_on(async {
        let mut totals = ShardResult::default();
        let mut failure = None;
        loop {
            tokio::select! {
                _ = sigterm.recv() => { let _ = shared.stop.send(true); }
                _ = sigint.recv() => { let _ = shared.stop.send(true); }
                ended = done.recv() => match ended {
                    Some(Ok(result)) => totals.merge(result),
                    Some(Err(e)) => {
                        // One shard failed: the others stop too.
                        let _ = shared.stop.send(true);
                        failure.get_or_insert(e);
                    }
                    // Every shard has ended (or a thread panicked: see the joins).
                    None => break,
                },
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(totals),
        }
    });
    for thread in threads {
        thread.join().map_err(|_| "a relay thread panicked")?;
    }
    let totals = totals?;
    let ShardResult {
        handled,
        failed,
        acked,
        naked,
        duplicates,
        mut latencies,
        first_message,
        last_handled,
    } = totals;
    let elapsed = match (first_message, last_handled) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    eprintln!(
        "relay: acked={acked} terminated={failed} redelivery_requested={naked} duplicates={duplicates}"
    );
    println!("{}", summary_line(handled, failed, elapsed, &mut latencies));
    Ok(ExitCode::SUCCESS)
}

/// What every shard of a relay shares.
struct Shared {
    budget: Budget,
    max_events: Option<u64>,
    /// Events handled by every shard.
    handled: AtomicU64,
    /// `true` stops every shard (a signal, `--max-events` reached).
    stop: watch::Sender<bool>,
    registry: Mutex<Registry>,
    /// Each shard's inbox, for deliveries of an event another shard holds.
    inboxes: Vec<mpsc::UnboundedSender<Box<Forwarded>>>,
}

impl Shared {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic never holds the lock in a state worth refusing: the maps stay consistent.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The configuration every shard runs with.
struct Settings {
    config: HookConfig,
    schedule: RedeliverySchedule,
    idle_exit: Option<Duration>,
}

/// A delivery handed to the shard that holds its event.
struct Forwarded {
    message: Message,
    event: DisconnectEvent,
    delivered: u32,
    sequence: u64,
}

/// One shard: a NATS connection with its puller, a dispatcher, and the loop settling what they
/// bring.
struct Shard {
    index: usize,
    concurrency: usize,
    source: Arc<RelaySource>,
    inbox: mpsc::UnboundedReceiver<Box<Forwarded>>,
    shared: Arc<Shared>,
    settings: Arc<Settings>,
}

/// What one shard did, merged into the relay's summary.
#[derive(Default)]
struct ShardResult {
    handled: u64,
    failed: u64,
    acked: u64,
    naked: u64,
    duplicates: u64,
    latencies: Vec<Duration>,
    first_message: Option<Instant>,
    last_handled: Option<Instant>,
}

impl ShardResult {
    fn merge(&mut self, other: ShardResult) {
        self.handled += other.handled;
        self.failed += other.failed;
        self.acked += other.acked;
        self.naked += other.naked;
        self.duplicates += other.duplicates;
        self.latencies.extend(other.latencies);
        self.first_message = match (self.first_message, other.first_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_handled = self.last_handled.max(other.last_handled);
    }
}

/// The shard's view of a delivery: what to do with it.
enum Take {
    Run,
    Join,
    Forward(usize),
    Again(Settled),
}

impl Shard {
    async fn run(self) -> Result<ShardResult, String> {
        let Shard {
            index,
            concurrency,
            source,
            mut inbox,
            shared,
            settings,
        } = self;
        let Settings {
            config,
            schedule,
            idle_exit,
        } = &*settings;
        let relay_metrics = RelayMetrics::new();
        let hook = hooks::build_hook(config)
            .map_err(|e| e.to_string())?
            .ok_or("no hook configured")?;
        // The event comes back with a failure only (for its log line): a delivered one needs
        // no copy.
        type Outcome = (
            EventId,
            Result<Delivery, HookError>,
            Option<DisconnectEvent>,
        );
        let (tx, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
        let options = DispatcherOptions::from_config(&config.hooks)
            .map_err(|e| e.to_string())?
            .with_all_protocols()
            .with_max_in_flight(concurrency)
            .with_queue_capacity(concurrency)
            .with_on_outcome(move |event, result| {
                let _ = tx.send((
                    event.id(),
                    result.clone(),
                    result.is_err().then(|| event.clone()),
                ));
            });
        let dispatcher = Dispatcher::new(hook, options);
        // Credits: messages this shard may hold (running or waiting) at once, eight per hook
        // slot so the next pull overlaps the running hooks, within the `--max-events` budget.
        // The puller asks for exactly the free credits, so every pulled message is tracked (and
        // sends progress) from the moment it arrives.
        let window = concurrency.saturating_mul(WINDOW_PER_SLOT).max(1);
        let credits = Arc::new(tokio::sync::Semaphore::new(shared.budget.take(window)));
        let (message_tx, mut pulled) = mpsc::channel::<Message>(window);
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
        let mut stop = shared.stop.subscribe();

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
        let mut in_flight = 0usize;
        // Hook slots whose event is settled but whose ack (NAK, TERM) is not yet known to be
        // written to the socket: a relay killed now leaves those events run and unsettled, like
        // the running ones, so they hold their slot until then ([`unwritten`]): `to_write` of them
        // settled after the running write check was asked for; that check covers the others.
        let mut to_write = 0usize;
        let mut writing: Option<(usize, Instant, WriteCheck)> = None;
        let check_writes = |covered: usize| -> (usize, Instant, WriteCheck) {
            (covered, Instant::now(), Box::pin(source.acks_written()))
        };
        // A check that waits longer (the connection is down) is given up on this tick: one
        // timer for the shard, not one per check.
        let write_batch = (concurrency / 8).max(1);
        let mut write_tick = tokio::time::interval(WRITE_WAIT / 4);
        write_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut result = ShardResult::default();
        let mut last_activity = Instant::now();
        // Set by a signal, `--max-events` or `--idle-exit`. From then on no pull request and no
        // hook starts; the running hooks finish and are settled; the open pull request runs out
        // (what it still brings is held, sending progress); then every message not run is NAKed,
        // once, for another relay to take at once. (NAKing while a pull request of this relay is
        // open would hand the message straight back to it.)
        let mut stopping = false;
        let mut pulls_open = true;
        let mut drain_deadline = tokio::time::Instant::now();
        // Credits of messages that left: `handled` of them were handled (their credit is spent),
        // the others go back to the budget; then as many as the budget allows are issued again.
        let give_back = |handled: usize, others: usize| {
            shared.budget.put_back(others);
            credits.add_permits(shared.budget.take(handled + others));
        };

        loop {
            if *stop.borrow() {
                stopping = true;
            }
            if stopping && !credits.is_closed() {
                credits.close();
                drain_deadline =
                    tokio::time::Instant::now() + PULL_EXPIRES + Duration::from_millis(500);
            }
            // Ask whether the settled events' acks are written (after they were queued: the
            // client handles commands in order) once a batch of them gathered, or at once when a
            // waiting hook needs one of their slots: not after every outcome, each check costs a
            // command and a turn of this loop.
            if writing.is_none()
                && to_write > 0
                && (to_write >= write_batch
                    || (!waiting.is_empty()
                        && in_flight + unwritten(to_write, &writing) >= concurrency))
            {
                writing = Some(check_writes(std::mem::take(&mut to_write)));
            }
            // Start what waits, up to the concurrency.
            while !stopping && in_flight + unwritten(to_write, &writing) < concurrency {
                let Some(id) = waiting.pop_front() else { break };
                let Some(job) = jobs.get_mut(&id) else {
                    continue;
                };
                let Some(event) = job.event.take() else {
                    continue;
                };
                match dispatcher.fire(event) {
                    Ok(_) => in_flight += 1,
                    Err(e) => {
                        tracing::warn!(
                            "relay: the dispatcher refused an event ({e}); redelivering"
                        );
                        if let Some(job) = jobs.remove(&id) {
                            shared.registry().release(id, None, Instant::now());
                            let _ = job
                                .latest()
                                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                                .await;
                            give_back(0, job.count());
                        }
                    }
                }
            }
            if stopping && in_flight == 0 && !pulls_open {
                break;
            }
            let idle_deadline =
                idle_exit.map(|d| tokio::time::Instant::from_std(last_activity + d));
            // A delivery that arrived (pulled here, or handed over by another shard).
            let mut arrived: Option<(Message, DisconnectEvent, u32, u64, bool)> = None;
            tokio::select! {
                biased;
                _ = stop.changed() => { stopping = true; }
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
                _ = async {
                    match &mut writing {
                        Some((_, _, written)) => written.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => {
                    writing = None;
                }
                _ = write_tick.tick(), if writing.is_some() => {
                    if writing.as_ref().is_some_and(|(_, asked, _)| asked.elapsed() >= WRITE_WAIT) {
                        tracing::debug!(
                            "relay: acks not written within {WRITE_WAIT:?} (disconnected?); their slots are used again"
                        );
                        writing = None;
                    }
                }
                Some(first) = outcomes.recv() => {
                    // Every outcome that is ready, in one go: their acks leave in one write.
                    let mut ready = vec![first];
                    while let Ok(more) = outcomes.try_recv() {
                        ready.push(more);
                    }
                    for (id, outcome, event) in ready {
                        let Some(job) = jobs.remove(&id) else {
                            continue;
                        };
                        in_flight -= 1;
                        to_write += 1;
                        let now = Instant::now();
                        last_activity = now;
                        let settled = settle(&job, id, outcome, event, schedule, &relay_metrics, &mut result, now).await;
                        shared.registry().release(id, settled, now);
                        if settled.is_some() {
                            give_back(1, job.count() - 1);
                            let total = shared.handled.fetch_add(1, Ordering::AcqRel) + 1;
                            if shared.max_events.is_some_and(|n| total >= n) {
                                let _ = shared.stop.send(true);
                            }
                        } else {
                            give_back(0, job.count());
                        }
                    }
                }
                Some(forwarded) = inbox.recv() => {
                    arrived = Some((forwarded.message, forwarded.event, forwarded.delivered, forwarded.sequence, true));
                }
                next = pulled.recv(), if pulls_open => {
                    let Some(message) = next else {
                        // Every puller has ended (only at a stop).
                        pulls_open = false;
                        continue;
                    };
                    let now = Instant::now();
                    last_activity = now;
                    result.first_message.get_or_insert(now);
                    let (delivered, sequence) = match message.info() {
                        Ok(info) => (u32::try_from(info.delivered).unwrap_or(u32::MAX), info.stream_sequence),
                        Err(_) => (1, 0),
                    };
                    if delivered > 1 {
                        relay_metrics.redelivered.increment(1);
                    }
                    match decode_body(&message.payload) {
                        Ok(event) => arrived = Some((message, event, delivered, sequence, false)),
                        Err(e) => {
                            tracing::warn!(
                                subject = %message.subject, sequence,
                                "relay: dead letter: {e}; terminated"
                            );
                            let _ = message.ack_with(AckKind::Term).await;
                            result.failed += 1;
                            result.handled += 1;
                            result.last_handled = Some(now);
                            relay_metrics.terminated();
                            give_back(1, 0);
                            let total = shared.handled.fetch_add(1, Ordering::AcqRel) + 1;
                            if shared.max_events.is_some_and(|n| total >= n) {
                                let _ = shared.stop.send(true);
                            }
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
            let Some((message, event, delivered, sequence, forwarded)) = arrived else {
                continue;
            };
            let id = event.id();
            let now = Instant::now();
            let take = if forwarded && jobs.contains_key(&id) {
                Take::Join
            } else {
                match shared.registry().arrive(id, index, now) {
                    Arrival::New => Take::Run,
                    Arrival::Join => Take::Join,
                    Arrival::Forward(to) => Take::Forward(to),
                    Arrival::Settled(how) => Take::Again(how),
                }
            };
            match take {
                Take::Run => {
                    // Held here (sending progress) until a hook slot is free.
                    jobs.insert(id, Job::new(message, event, delivered, sequence));
                    waiting.push_back(id);
                }
                Take::Join => match jobs.get_mut(&id) {
                    Some(job) => {
                        tracing::debug!(id = %id, delivery = delivered, "relay: a second delivery of an event held here; settled with the first");
                        job.join(message, delivered);
                        result.duplicates += 1;
                        relay_metrics.duplicates.increment(1);
                    }
                    // Registered here but not held: cannot happen; run it rather than lose it.
                    None => {
                        jobs.insert(id, Job::new(message, event, delivered, sequence));
                        waiting.push_back(id);
                    }
                },
                Take::Forward(to) => {
                    let inbox = shared.inboxes.get(to);
                    let forwarded = Forwarded {
                        message,
                        event,
                        delivered,
                        sequence,
                    };
                    // Its credit goes with it (that shard gives it back when it settles).
                    if let Some(Err(back)) = inbox.map(|inbox| inbox.send(Box::new(forwarded))) {
                        // That shard is ending (it NAKs what it holds): back to the server too.
                        let _ = back.0.message.ack_with(AckKind::Nak(None)).await;
                        give_back(0, 1);
                    }
                }
                Take::Again(how) => {
                    // Settled lately (the ack reached the server too late, or was lost):
                    // settled the same way again, not run again.
                    tracing::debug!(id = %id, delivery = delivered, "relay: a redelivery of an event settled here ({how:?}); settled again");
                    let kind = match how {
                        Settled::Acked => AckKind::Ack,
                        Settled::Terminated => AckKind::Term,
                    };
                    let _ = message.ack_with(kind).await;
                    result.duplicates += 1;
                    relay_metrics.duplicates.increment(1);
                    give_back(0, 1);
                }
            }
        }
        // What was not run goes back at once (not after the ack wait): the held jobs (none is
        // running now), anything that arrived after the shard stopped reading, and what other
        // shards handed over.
        for puller in pullers {
            puller.abort();
            let _ = puller.await;
        }
        inbox.close();
        // Bounded: with the server gone, nothing is waited for beyond `EXIT_WAIT` (what was not
        // settled is redelivered after the ack wait).
        let give_back_all = async {
            while let Ok(message) = pulled.try_recv() {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
            while let Ok(forwarded) = inbox.try_recv() {
                let _ = forwarded.message.ack_with(AckKind::Nak(None)).await;
            }
            let now = Instant::now();
            for (id, job) in &jobs {
                shared.registry().release(*id, None, now);
                let _ = job.latest().ack_with(AckKind::Nak(None)).await;
            }
        };
        if tokio::time::timeout(EXIT_WAIT, give_back_all)
            .await
            .is_err()
        {
            tracing::warn!(
                "relay: NATS did not take the NAKs within {EXIT_WAIT:?}; those messages are redelivered after the ack wait"
            );
        }
        if let Err(e) = source.flush(EXIT_WAIT).await {
            tracing::warn!("relay: {e}");
        }
        let _ = dispatcher.shutdown(Duration::from_secs(1)).await;
        Ok(result)
    }
}

/// Settles a job by its hook's outcome: ack (delivered), NAK with the schedule's delay
/// (transient, young enough, deliveries left) or terminate (the dead letter). Returns how it
/// was settled, `None` for a NAK.
#[allow(clippy::too_many_arguments)]
async fn settle(
    job: &Job,
    id: EventId,
    outcome: Result<Delivery, HookError>,
    event: Option<DisconnectEvent>,
    schedule: &RedeliverySchedule,
    relay_metrics: &RelayMetrics,
    result: &mut ShardResult,
    now: Instant,
) -> Option<Settled> {
    match outcome {
        Ok(delivery) => {
            for message in job.messages() {
                if let Err(e) = message.ack().await {
                    tracing::warn!(id = %id, "relay: ack failed (the event will be redelivered): {e}");
                }
            }
            result.acked += 1;
            result.handled += 1;
            result.latencies.push(delivery.elapsed());
            result.last_handled = Some(now);
            relay_metrics.acked();
            Some(Settled::Acked)
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
                result.naked += 1;
                relay_metrics.naked.increment(1);
                None
            } else {
                let why = if !is_transient(&err) {
                    "permanent failure".to_owned()
                } else if last {
                    format!(
                        "gave up after {} deliveries (max_deliver, from hooks.spool.max_age)",
                        job.delivered
                    )
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
                result.failed += 1;
                result.handled += 1;
                result.latencies.push(elapsed);
                result.last_handled = Some(now);
                relay_metrics.terminated();
                Some(Settled::Terminated)
            }
        }
    }
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
