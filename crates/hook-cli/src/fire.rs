//! `hookctl fire`: N copies of one event through the Dispatcher a server uses.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::collections::HashSet;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hooks::{
    Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, EventId, FireErrorKind, Fired,
    HookError, HookStatus, HookTarget, Protocol,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use crate::check::{invalid, load};
use crate::cli::{Cli, FireArgs};
use crate::report::{ms, summary_line};

/// Where a hook can be configured, for the "no hook" error.
const NO_HOOK: &str = "no hook configured: set common.post_disconnect_hook in the configuration \
                       file, or the SFTPGO_COMMON__POST_DISCONNECT_HOOK variable, or pass --hook";

/// Latency samples reserved up front at most (the vector grows beyond if needed).
const MAX_RESERVED: u64 = 1 << 20;

/// One event's outcome, as the CLI reports it.
struct Outcome {
    result: Result<Delivery, HookError>,
}

impl Outcome {
    fn elapsed(&self) -> Duration {
        match &self.result {
            Ok(d) => d.elapsed(),
            Err(e) => e.elapsed().unwrap_or_default(),
        }
    }
}

/// How long the dispatcher's shutdown may take after an interrupting signal before the hooks
/// still running are cancelled (their process groups killed).
const INTERRUPT_DEADLINE: Duration = Duration::from_secs(1);

pub(crate) fn run(cli: &Cli, args: &FireArgs) -> Result<ExitCode, Box<dyn Error>> {
    let protocol: Protocol = args
        .protocol
        .parse()
        .map_err(|e| format!("--protocol: {e}"))?;
    let loaded = load(cli)?;
    let config = loaded.config;
    let (key, target) = match &args.hook {
        Some(hook) => ("--hook", HookTarget::parse_for_key("--hook", hook)?),
        None => (hooks::HOOK_KEY, config.target().map_err(invalid)?),
    };
    if !target.is_enabled() {
        return Err(NO_HOOK.into());
    }
    // Exactly what `check` and a server's start-up run (hooks::validate_config and the backend
    // build), before anything starts.
    let hook = hooks::build_hook_for_target(key, &target, &config)
        .map_err(invalid)?
        .ok_or(NO_HOOK)?;
    let options = DispatcherOptions::from_config(&config.hooks).map_err(invalid)?;

    let runtime = crate::runtime::start(matches!(target, HookTarget::Http(_)))?;
    runtime.block_on(storm(
        args,
        protocol,
        config.hooks.queue_capacity,
        hook,
        options,
        config.hooks.spool.enabled(),
    ))
}

/// Which signal interrupted the storm.
#[derive(Clone, Copy)]
struct Interrupt {
    name: &'static str,
    number: i32,
}

/// SIGINT and SIGTERM, as a stream of [`Interrupt`]s.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, Box<dyn Error>> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |kind, name| signal(kind).map_err(|e| format!("cannot handle {name}: {e}"));
        Ok(Signals {
            int: handler(SignalKind::interrupt(), "SIGINT")?,
            term: handler(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    async fn next(&mut self) -> Interrupt {
        tokio::select! {
            _ = self.int.recv() => Interrupt { name: "SIGINT", number: 2 },
            _ = self.term.recv() => Interrupt { name: "SIGTERM", number: 15 },
        }
    }
}

async fn storm(
    args: &FireArgs,
    protocol: Protocol,
    queue_capacity: usize,
    hook: std::sync::Arc<dyn hooks::Hook>,
    options: DispatcherOptions,
    spooled: bool,
) -> Result<ExitCode, Box<dyn Error>> {
    // Before the first event: from here on, SIGINT and SIGTERM stop the storm in order.
    let mut signals = Signals::install()?;
    let events = args.events;
    // The configured queue (hooks.queue_capacity, default 10,000) is filled at once; a bigger
    // storm is fed as outcomes come back, so memory stays bounded and nothing is refused.
    let (tx, mut rx) = mpsc::unbounded_channel::<(EventId, Outcome)>();
    let mut options = options
        .with_protocols([protocol])
        .with_queue_capacity(queue_capacity)
        .with_on_outcome(move |event, result| {
            let _ = tx.send((
                event.id(),
                Outcome {
                    result: result.clone(),
                },
            ));
        });
    if let Some(c) = args.concurrency {
        options = options.with_max_in_flight(usize::try_from(c)?);
    }
    if spooled {
        options = options.with_paused_start();
    }
    let dispatcher = Dispatcher::try_new(hook, options)?;
    let events_of = EventMaker::new(args, protocol);
    // With a spool: every event is made durable before delivery starts; outcomes of events
    // replayed from an earlier run are not counted. The clock includes the durable append of a
    // spooled run: the storm's rate is honest.
    let started = Instant::now();
    let ours = if spooled {
        Some(spool_all(&dispatcher, &events_of, events).await?)
    } else {
        None
    };

    let progress = progress_bar(events);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut tally = Tally {
        latencies: Vec::with_capacity(usize::try_from(events.min(MAX_RESERVED))?),
        failed: 0,
        received: 0,
        last: None,
    };
    let mut fired = 0u64;
    if ours.is_some() {
        fired = events;
        dispatcher.resume();
    }
    let mut interrupted = None;
    while tally.received < events {
        // Never more outstanding than the queue holds: `fire` cannot be refused.
        while fired < events && fired - tally.received < queue_capacity as u64 {
            dispatcher
                .fire(events_of.event(fired))
                .map_err(|e| format!("the dispatcher refused an event: {e}"))?;
            fired += 1;
        }
        let outcome = tokio::select! {
            biased;
            signal = signals.next() => {
                interrupted = Some(signal);
                break;
            }
            outcome = rx.recv() => outcome,
        };
        let Some((id, outcome)) = outcome else {
            break;
        };
        if let Some(ours) = &ours
            && !ours.contains(&id)
        {
            continue;
        }
        tally.record(outcome, args.json, &mut out)?;
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    let elapsed = started.elapsed();
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let report = match interrupted {
        // Nothing is left; this only stops the dispatcher's tasks.
        None => dispatcher.shutdown(Duration::from_secs(1)).await,
        Some(first) => {
            eprintln!(
                "hookctl: interrupted by {}: stopped firing after {fired} of {events} event(s); \
                 shutting the dispatcher down (running hooks get {:?}, then their process groups \
                 are killed); a second signal exits at once",
                first.name, INTERRUPT_DEADLINE
            );
            tokio::select! {
                report = dispatcher.shutdown(INTERRUPT_DEADLINE) => report,
                second = signals.next() => {
                    let _ = out.flush();
                    eprintln!("hookctl: second signal ({}): exiting at once", second.name);
                    std::process::exit(128 + second.number);
                }
            }
        }
    };
    // Outcomes reported during the shutdown (cancelled and abandoned events among them).
    while let Ok((id, outcome)) = rx.try_recv() {
        if ours.as_ref().is_none_or(|ours| ours.contains(&id)) {
            tally.record(outcome, args.json, &mut out)?;
        }
    }
    let missing = fired - tally.received;
    tally.failed += missing;
    if missing > 0 || (interrupted.is_none() && report.abandoned > 0) {
        eprintln!("hookctl: {missing} event(s) never reported an outcome");
    }

    if events == 1
        && !args.json
        && let Some(outcome) = &tally.last
    {
        write!(out, "{}", describe(outcome))?;
    }
    writeln!(
        out,
        "{}",
        summary_line(fired, tally.failed, elapsed, &mut tally.latencies)
    )?;
    out.flush()?;
    Ok(if tally.failed == 0 && interrupted.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The outcomes received so far.
struct Tally {
    latencies: Vec<Duration>,
    failed: u64,
    received: u64,
    last: Option<Outcome>,
}

impl Tally {
    fn record(
        &mut self,
        outcome: Outcome,
        json: bool,
        out: &mut impl Write,
    ) -> std::io::Result<()> {
        self.latencies.push(outcome.elapsed());
        self.failed += u64::from(outcome.result.is_err());
        if json {
            writeln!(out, "{}", json_line(self.received, &outcome))?;
        }
        self.received += 1;
        self.last = Some(outcome);
        Ok(())
    }
}

/// Appends all `events` durably (`fire_durable`, awaited together) while delivery is paused;
/// prints `spooled=N` on stderr. Returns the ids.
///
/// The futures are driven by one `FuturesUnordered` in this task rather than a task each: the
/// spool's writer completes a whole group commit at once, and its wake-ups then coalesce into a
/// few of this task instead of one cross-thread wake (an `eventfd` write) per event, which cost
/// about a fifth of the writer's time in a 10,000-event storm (docs/benchmarks.md).
async fn spool_all(
    dispatcher: &Dispatcher,
    events_of: &EventMaker,
    events: u64,
) -> Result<HashSet<EventId>, Box<dyn Error>> {
    let mut ids = HashSet::with_capacity(usize::try_from(events.min(MAX_RESERVED))?);
    let mut pending = FuturesUnordered::new();
    for index in 0..events {
        let event = events_of.event(index);
        ids.insert(event.id());
        pending.push(dispatcher.fire_durable(event));
        // Bounded: the spool's writer queue holds 65,536 appends.
        while pending.len() >= 16_384 {
            wait_one(&mut pending).await?;
        }
    }
    while !pending.is_empty() {
        wait_one(&mut pending).await?;
    }
    eprintln!("spooled={events}");
    Ok(ids)
}

async fn wait_one(
    pending: &mut FuturesUnordered<impl Future<Output = Result<Fired, hooks::FireError>>>,
) -> Result<(), Box<dyn Error>> {
    match pending.next().await {
        Some(Ok(_)) | None => Ok(()),
        Some(Err(e)) => {
            let what = match e.kind() {
                FireErrorKind::SpoolFull => "the spool is full",
                _ => "the spool refused an event",
            };
            Err(format!("{what}: {e}").into())
        }
    }
}

/// Makes the fired events: each with its own id; "{n}" in the username replaced by the index.
pub(crate) struct EventMaker {
    ip: String,
    protocol: Protocol,
    /// The username split at each "{n}" (one part: no placeholder).
    username: Vec<String>,
    duration: Duration,
}

impl EventMaker {
    pub(crate) fn new(args: &FireArgs, protocol: Protocol) -> Self {
        EventMaker {
            ip: args.ip.clone(),
            protocol,
            username: args.username.split("{n}").map(str::to_owned).collect(),
            duration: Duration::from_millis(args.duration_ms),
        }
    }

    /// Event number `index` (0-based).
    pub(crate) fn event(&self, index: u64) -> DisconnectEvent {
        let username = if self.username.len() == 1 {
            self.username[0].clone()
        } else {
            self.username.join(&index.to_string())
        };
        DisconnectEvent::new(self.ip.clone(), self.protocol, username, self.duration)
    }
}

fn progress_bar(events: u64) -> Option<ProgressBar> {
    if events <= 1 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(events), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} {eta}") {
        bar.set_style(style);
    }
    Some(bar)
}

fn status_text(status: Option<HookStatus>) -> String {
    status.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// The human-readable outcome of a single event.
fn describe(outcome: &Outcome) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let output = match &outcome.result {
        Ok(d) => {
            let _ = writeln!(
                s,
                "delivered: backend={} status={} attempts={} elapsed_ms={:.1}",
                d.backend(),
                status_text(d.status()),
                d.attempts(),
                ms(d.elapsed())
            );
            d.output()
        }
        Err(e) => {
            let _ = writeln!(
                s,
                "failed: {e}\n  kind={} backend={} status={} attempts={} elapsed_ms={:.1}",
                e.kind(),
                e.backend()
                    .map_or_else(|| "-".to_owned(), |b| b.to_string()),
                status_text(e.status()),
                e.attempts(),
                ms(e.elapsed().unwrap_or_default())
            );
            e.output()
        }
    };
    if let Some(output) = output {
        for (name, text, dropped) in [
            ("stdout", output.stdout_lossy(), output.stdout_dropped()),
            ("stderr", output.stderr_lossy(), output.stderr_dropped()),
        ] {
            if text.is_empty() {
                continue;
            }
            let note = if dropped > 0 {
                format!(" (last bytes; {dropped} earlier bytes dropped)")
            } else {
                String::new()
            };
            let _ = writeln!(s, "--- {name}{note}");
            // Shown line by line, with control characters (escape sequences, CR) escaped.
            for line in text.lines() {
                s.push_str(&hooks::escape_control_chars(line));
                s.push('\n');
            }
        }
        if !output.is_empty() {
            let _ = writeln!(s, "---");
        }
    }
    s
}

/// One JSON object per event.
fn json_line(index: u64, outcome: &Outcome) -> String {
    use serde_json::{Value, json};
    let status = |s: Option<HookStatus>| match s {
        Some(HookStatus::Exit(c)) => json!({"exit": c}),
        Some(HookStatus::Signal(n)) => json!({"signal": n}),
        Some(HookStatus::Http(c)) => json!({"http": c}),
        _ => Value::Null,
    };
    let output = |o: Option<&hooks::CapturedOutput>| match o {
        Some(o) => json!({"stdout": o.stdout_lossy(), "stderr": o.stderr_lossy(),
                          "stdout_dropped": o.stdout_dropped(), "stderr_dropped": o.stderr_dropped()}),
        None => Value::Null,
    };
    let v = match &outcome.result {
        Ok(d) => json!({
            "event": index,
            "delivered": true,
            "backend": d.backend().to_string(),
            "status": status(d.status()),
            "attempts": d.attempts(),
            "elapsed_ms": ms(d.elapsed()),
            "output": output(d.output()),
        }),
        Err(e) => json!({
            "event": index,
            "delivered": false,
            "backend": e.backend().map(|b| b.to_string()),
            "status": status(e.status()),
            "attempts": e.attempts(),
            "elapsed_ms": ms(e.elapsed().unwrap_or_default()),
            "error_kind": e.kind().as_str(),
            "error": e.to_string(),
            "output": output(e.output()),
        }),
    };
    v.to_string()
}
