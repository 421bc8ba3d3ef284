//! `hookctl spool ...`: inspect and manage the spool of `hooks.spool.dir`.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hooks::spool::{Purge, Spool, SpoolRecord, SpoolStatus, State};
use hooks::{Delivery, Dispatcher, DispatcherOptions, EventId, HookConfig, HookError};
use serde_json::json;
use tokio::sync::mpsc;

use crate::check::load;
use crate::cli::{Cli, SpoolCommand, StateArg};
use crate::report::summary_line;

/// Records read from the store at a time.
const PAGE: usize = 1_000;

pub(crate) fn run(cli: &Cli, command: &SpoolCommand) -> Result<ExitCode, Box<dyn Error>> {
    let config = load(cli)?.config;
    let dir = spool_dir(&config)?;
    match command {
        SpoolCommand::Status { json } => status(&dir, *json),
        SpoolCommand::List { state, json } => list(&dir, *state, *json),
        SpoolCommand::Replay { wait_max } => replay(&config, &dir, *wait_max),
        SpoolCommand::Retry { dead, id } => retry(&dir, *dead, id),
        SpoolCommand::Purge { dead: _, all, yes } => purge(&dir, *all, *yes),
    }
}

/// The configured spool directory, which must hold a spool.
fn spool_dir(config: &HookConfig) -> Result<PathBuf, String> {
    let spool = &config.hooks.spool;
    if !spool.enabled() {
        return Err(
            "no spool configured: set hooks.spool.dir in the configuration file or the \
             SFTPGO_HOOKS__SPOOL__DIR variable"
                .into(),
        );
    }
    let dir = PathBuf::from(&spool.dir);
    let file = dir.join("spool.redb");
    if !file.is_file() {
        return Err(format!(
            "no spool in {} (hooks.spool.dir): {} does not exist",
            dir.display(),
            file.display()
        ));
    }
    Ok(dir)
}

/// Opens the spool for inspection: locked, damaged (set aside by the opening) and unusable
/// spools are errors (exit 2).
fn open(dir: &Path) -> Result<Spool, String> {
    let (spool, report) = Spool::open(hooks::spool::SpoolOptions::new(dir))
        .map_err(|e| format!("cannot open the spool: {e}"))?;
    if let Some(corrupt) = report.corrupt {
        return Err(format!(
            "the spool in {} is damaged ({}): it was set aside as {} and an empty spool started",
            dir.display(),
            corrupt.reason,
            corrupt.renamed_to.display()
        ));
    }
    Ok(spool)
}

fn status(dir: &Path, as_json: bool) -> Result<ExitCode, Box<dyn Error>> {
    let spool = open(dir)?;
    let s = spool.status().map_err(|e| e.to_string())?;
    let now = SystemTime::now();
    let age = s.oldest_age(now).map(|d| d.as_secs_f64());
    if as_json {
        println!("{}", status_json(dir, &s, age));
    } else {
        println!(
            "pending={} deferred={} dead={} bytes={} file_bytes={} oldest_age_s={} next_due={}",
            s.pending,
            s.deferred,
            s.dead,
            s.bytes,
            s.file_bytes,
            age.map_or_else(|| "-".to_owned(), |a| format!("{a:.1}")),
            s.next_due.map_or_else(|| "-".to_owned(), rfc3339),
        );
    }
    spool.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn status_json(dir: &Path, s: &SpoolStatus, age: Option<f64>) -> serde_json::Value {
    json!({
        "dir": dir.display().to_string(),
        "pending": s.pending,
        "deferred": s.deferred,
        "dead": s.dead,
        "bytes": s.bytes,
        "file_bytes": s.file_bytes,
        "oldest_age_s": age,
        "next_due": s.next_due.map(rfc3339),
    })
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Deferred => "deferred",
        _ => "dead",
    }
}

fn list(dir: &Path, state: Option<StateArg>, as_json: bool) -> Result<ExitCode, Box<dyn Error>> {
    let spool = open(dir)?;
    let states: Vec<State> = match state {
        Some(StateArg::Pending) => vec![State::Pending],
        Some(StateArg::Deferred) => vec![State::Deferred],
        Some(StateArg::Dead) => vec![State::Dead],
        None => vec![State::Pending, State::Deferred, State::Dead],
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for state in states {
        let mut after = None;
        loop {
            let page = spool.list(state, after, PAGE).map_err(|e| e.to_string())?;
            for record in &page {
                if as_json {
                    writeln!(out, "{}", record_json(record))?;
                } else {
                    writeln!(out, "{}", record_line(record))?;
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id()),
                _ => break,
            }
        }
    }
    out.flush()?;
    drop(out);
    spool.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// One tab-separated line: id, state, attempts, next attempt, last error, ip, protocol,
/// username, duration_ms (`-` for an empty field; tabs and newlines in text shown as spaces).
fn record_line(r: &SpoolRecord) -> String {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let e = r.event();
    [
        r.id().to_string(),
        state_name(r.state()).to_owned(),
        r.attempts().to_string(),
        r.next_attempt().map_or_else(|| "-".to_owned(), rfc3339),
        r.last_error().map_or_else(|| "-".to_owned(), clean),
        e.ip().to_owned(),
        e.protocol().as_str().to_owned(),
        clean(e.username()),
        e.duration_ms().to_string(),
    ]
    .join("\t")
}

fn record_json(r: &SpoolRecord) -> serde_json::Value {
    let e = r.event();
    json!({
        "id": r.id().to_string(),
        "state": state_name(r.state()),
        "attempts": r.attempts(),
        "next_attempt": r.next_attempt().map(rfc3339),
        "last_error": r.last_error(),
        "ip": e.ip(),
        "protocol": e.protocol().as_str(),
        "username": e.username(),
        "duration_ms": u64::try_from(e.duration_ms()).unwrap_or(u64::MAX),
        "first_seen": rfc3339(r.first_seen()),
    })
}

fn retry(dir: &Path, dead: bool, ids: &[String]) -> Result<ExitCode, Box<dyn Error>> {
    let ids: Vec<EventId> = ids
        .iter()
        .map(|id| {
            id.parse::<EventId>()
                .map_err(|e| format!("--id {id:?}: not an event id: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let spool = open(dir)?;
    let moved = if dead {
        spool.retry_dead().wait()
    } else {
        spool.retry(&ids).wait()
    }
    .map_err(|e| e.to_string())?;
    spool.close().map_err(|e| e.to_string())?;
    println!("retried={moved}");
    Ok(ExitCode::SUCCESS)
}

fn purge(dir: &Path, all: bool, yes: bool) -> Result<ExitCode, Box<dyn Error>> {
    if !yes {
        return Err("spool purge removes events for good: add --yes to confirm".into());
    }
    let spool = open(dir)?;
    let what = if all { Purge::All } else { Purge::Dead };
    let removed = spool.purge(what).wait().map_err(|e| e.to_string())?;
    spool.close().map_err(|e| e.to_string())?;
    println!("purged={removed}");
    Ok(ExitCode::SUCCESS)
}

/// `spool replay`: start the dispatcher on the spool as a restarted server would, wait for the
/// pending events (and the deferred ones until `wait_max`), report.
fn replay(config: &HookConfig, dir: &Path, wait_max: f64) -> Result<ExitCode, Box<dyn Error>> {
    let wait_max = Duration::try_from_secs_f64(wait_max)
        .map_err(|_| format!("--wait-max {wait_max}: not a number of seconds >= 0"))?;
    let target = config.target()?;
    if !target.is_enabled() {
        return Err(
            "no hook configured: set common.post_disconnect_hook to replay the spool".into(),
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let hook = hooks::build_hook(config)?.ok_or("no hook configured")?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Result<Delivery, HookError>>();
        let options = DispatcherOptions::from_config(&config.hooks)?
            .with_all_protocols()
            .with_on_outcome(move |_, outcome| {
                let _ = tx.send(outcome.clone());
            });
        let started = Instant::now();
        let dispatcher = Dispatcher::try_new(hook, options)?;
        if dispatcher.stats().spool_corrupt > 0 {
            let _ = dispatcher.shutdown(Duration::ZERO).await;
            return Err(format!(
                "the spool in {} was damaged: it was set aside (spool.redb.corrupt-*) and an \
                 empty spool started",
                dir.display()
            )
            .into());
        }
        let spool = dispatcher.spool().ok_or("the spool is not open")?;
        let deferred_until = started + wait_max;
        loop {
            let s = spool.status()?;
            let stats = dispatcher.stats();
            let idle = stats.in_flight == 0 && stats.queued == 0;
            if s.pending == 0 && idle && (s.deferred == 0 || Instant::now() >= deferred_until) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let deadline = Duration::try_from_secs_f64(config.hooks.shutdown_deadline)
            .unwrap_or(Duration::from_secs(30));
        let report = dispatcher.shutdown(deadline).await;
        let elapsed = started.elapsed();
        let mut latencies = Vec::new();
        let mut failed = 0u64;
        while let Ok(outcome) = rx.try_recv() {
            match outcome {
                Ok(d) => latencies.push(d.elapsed()),
                Err(e) => {
                    failed += 1;
                    latencies.push(e.elapsed().unwrap_or_default());
                }
            }
        }
        let events = latencies.len() as u64;
        println!("{}", summary_line(events, failed, elapsed, &mut latencies));
        if report.kept > 0 {
            eprintln!(
                "hookctl: {} event(s) left in the spool (pending or deferred)",
                report.kept
            );
        }
        Ok(if report.kept == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// RFC 3339 in UTC, to the millisecond (`2026-12-03T15:04:05.123Z`).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_164_800_123); // 2024-02-29
        assert_eq!(rfc3339(t), "2024-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_868_799); // 2000-02-29T23:59:59
        assert_eq!(rfc3339(t), "2000-02-29T23:59:59.000Z");
    }
}
