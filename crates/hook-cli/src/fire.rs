//! `hookctl fire`: N copies of one event through the Dispatcher a server uses.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hooks::{
    Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, HookError, HookStatus, HookTarget,
    Protocol,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use crate::check::{check_program, load};
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

pub(crate) fn run(cli: &Cli, args: &FireArgs) -> Result<ExitCode, Box<dyn Error>> {
    let protocol: Protocol = args
        .protocol
        .parse()
        .map_err(|e| format!("--protocol: {e}"))?;
    let loaded = load(cli)?;
    let config = loaded.config;
    let (key, target) = match &args.hook {
        Some(hook) => ("--hook", HookTarget::parse_for_key("--hook", hook)?),
        None => (hooks::HOOK_KEY, config.target()?),
    };
    if !target.is_enabled() {
        return Err(NO_HOOK.into());
    }
    if let HookTarget::Program(path) = &target {
        check_program(key, path)?;
    }

    // An HTTP storm is bound by the event loop, not by CPU parallelism (the endpoint usually
    // shares the machine): one thread does it with no cross-thread wake-ups, measurably faster
    // (docs/benchmarks.md). posix_spawn blocks the calling thread until the child has exec'd
    // (its dynamic loader runs meanwhile), so programs get one worker per core plus one: while a
    // worker is blocked in a spawn, the others keep every core busy (about 10% more programs/s
    // than one worker per core on 2 cores; docs/benchmarks.md).
    let runtime = match &target {
        HookTarget::Http(_) => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(cores + 1);
            builder
        }
    }
    .enable_all()
    .build()?;
    runtime.block_on(async move {
        let hook = hooks::build_hook_for_target(key, &target, &config)?.ok_or(NO_HOOK)?;
        let events = args.events;
        // The configured queue (hooks.queue_capacity, default 10,000) is filled at once; a
        // bigger storm is fed as outcomes come back, so memory stays bounded and nothing is
        // refused.
        let queue_capacity = config.hooks.queue_capacity;
        let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
        let mut options = DispatcherOptions::from_config(&config.hooks)?
            .with_protocols([protocol])
            .with_queue_capacity(queue_capacity)
            .with_on_outcome(move |_event, result| {
                let _ = tx.send(Outcome {
                    result: result.clone(),
                });
            });
        if let Some(c) = args.concurrency {
            options = options.with_max_in_flight(usize::try_from(c)?);
        }
        let dispatcher = Dispatcher::new(hook, options);
        let events_of = EventMaker::new(args, protocol);

        let progress = progress_bar(events);
        let started = Instant::now();
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut latencies = Vec::with_capacity(usize::try_from(events.min(MAX_RESERVED))?);
        let mut failed = 0u64;
        let mut last = None;
        let (mut fired, mut received) = (0u64, 0u64);
        while received < events {
            // Never more outstanding than the queue holds: `fire` cannot be refused.
            while fired < events && fired - received < queue_capacity as u64 {
                // Each copy is its own event, with its own id (a NATS stream would otherwise
                // drop the copies as duplicates of the first).
                dispatcher
                    .fire(events_of.event(fired))
                    .map_err(|e| format!("the dispatcher refused an event: {e}"))?;
                fired += 1;
            }
            let Some(outcome) = rx.recv().await else {
                break;
            };
            latencies.push(outcome.elapsed());
            failed += u64::from(outcome.result.is_err());
            if args.json {
                writeln!(out, "{}", json_line(received, &outcome))?;
            }
            if let Some(bar) = &progress {
                bar.inc(1);
            }
            received += 1;
            last = Some(outcome);
        }
        let elapsed = started.elapsed();
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        // Nothing is left; this only stops the dispatcher's tasks.
        let report = dispatcher.shutdown(Duration::from_secs(1)).await;
        let missing = events - latencies.len() as u64;
        failed += missing;
        if missing > 0 || report.abandoned > 0 {
            eprintln!("hookctl: {missing} event(s) never reported an outcome");
        }

        if events == 1
            && !args.json
            && let Some(outcome) = &last
        {
            write!(out, "{}", describe(outcome))?;
        }
        writeln!(
            out,
            "{}",
            summary_line(events, failed, elapsed, &mut latencies)
        )?;
        out.flush()?;
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
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
            s.push_str(&text);
            if !text.ends_with('\n') {
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
