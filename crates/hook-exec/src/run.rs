//! One run of the program: spawn, capture, supervise the timeout, classify the outcome, log.

use std::ffi::{CStr, CString};
use std::io;
use std::time::{Duration, Instant};

use hook_core::{
    Backend, CapturedOutput, Delivery, DisconnectEvent, ErrorKind, HookError, HookStatus,
    escape_control_chars,
};
use rustix::process::Signal;
use tokio::time::{sleep, sleep_until};

use crate::env::event_var;
use crate::hook::Inner;
use crate::output::{Capture, captured};
use crate::process::{ChildGuard, Exit, spawn};

/// Longest pause between two checks that a terminated group is gone.
const GROUP_POLL_MAX: Duration = Duration::from_millis(50);

pub(crate) async fn run(inner: &Inner, event: &DisconnectEvent) -> Result<Delivery, HookError> {
    let started = Instant::now();
    let result = run_inner(inner, event, started).await;
    log(inner, event, &result);
    result
}

async fn run_inner(
    inner: &Inner,
    event: &DisconnectEvent,
    started: Instant,
) -> Result<Delivery, HookError> {
    let path = inner.program.display();

    let vars = event_env(inner, event).map_err(|e| e.with_elapsed(started.elapsed()))?;

    let spawned = {
        let envp: Vec<&CStr> = inner
            .env
            .iter()
            .map(CString::as_c_str)
            .chain(vars.iter().map(CString::as_c_str))
            .collect();
        spawn(
            inner.program_c(),
            &inner.argv,
            &envp,
            inner.force_posix_spawn,
        )
    };
    let spawned = spawned.map_err(|e| spawn_error(inner, e, started))?;
    let mut child = ChildGuard::new(spawned.pid, spawned.pidfd, inner.force_blocking_wait);

    let (mut out, mut err) = match (
        Capture::new(spawned.stdout, inner.output_cap),
        Capture::new(spawned.stderr, inner.output_cap),
    ) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            // The guard kills and reaps the program when it drops.
            return Err(HookError::new(
                ErrorKind::Other,
                format!("{path}: cannot read the program's output: {e}"),
            )
            .with_backend(Backend::Exec)
            .with_attempts(1)
            .with_elapsed(started.elapsed())
            .with_source(e));
        }
    };

    let outcome = {
        let supervise = supervise(&mut child, inner.timeout, inner.kill_grace);
        tokio::pin!(supervise);
        let drain = sleep(Duration::MAX / 4);
        tokio::pin!(drain);
        let mut outcome = None;
        loop {
            tokio::select! {
                res = &mut supervise, if outcome.is_none() => {
                    outcome = Some(res);
                    drain.as_mut().reset(tokio::time::Instant::now() + inner.drain_timeout);
                }
                () = out.read_once(), if out.is_open() => {}
                () = err.read_once(), if err.is_open() => {}
                () = &mut drain, if outcome.is_some() => break,
            }
            if outcome.is_some() && !out.is_open() && !err.is_open() {
                break;
            }
        }
        outcome
    };
    let output = captured(out.finish(), err.finish());
    let elapsed = started.elapsed();
    let Some(outcome) = outcome else {
        // Not reachable: the loop only ends once `supervise` has completed.
        return Err(HookError::new(
            ErrorKind::Other,
            format!("{path}: the program was not awaited"),
        )
        .with_backend(Backend::Exec)
        .with_attempts(1)
        .with_elapsed(elapsed)
        .with_output(output));
    };

    let (exit, timed_out) = match outcome {
        Ok(v) => v,
        Err(e) => {
            return Err(HookError::new(
                ErrorKind::Other,
                format!("{path}: cannot wait for the program: {e}"),
            )
            .with_backend(Backend::Exec)
            .with_attempts(1)
            .with_elapsed(elapsed)
            .with_output(output)
            .with_source(e));
        }
    };
    let status = match exit {
        Exit::Code(code) => HookStatus::Exit(code),
        Exit::Signal(sig) => HookStatus::Signal(sig),
    };
    let fail = |kind, message: String| {
        Err(HookError::new(kind, message)
            .with_backend(Backend::Exec)
            .with_attempts(1)
            .with_elapsed(elapsed)
            .with_status(status)
            .with_output(output.clone()))
    };
    if timed_out {
        let how = match exit {
            Exit::Signal(sig) if sig == Signal::KILL.as_raw() => {
                "killed (SIGKILL) after the kill grace"
            }
            Exit::Signal(sig) if sig == Signal::TERM.as_raw() => "terminated (SIGTERM)",
            _ => "ended after SIGTERM",
        };
        return fail(
            ErrorKind::Timeout,
            format!(
                "{path}: timed out after {:?}; its process group was {how}",
                inner.timeout
            ),
        );
    }
    match exit {
        Exit::Code(0) => Ok(Delivery::new(Backend::Exec, 1, elapsed)
            .with_status(status)
            .with_output(output)),
        Exit::Code(code) => fail(
            ErrorKind::ExitStatus,
            format!("{path}: exit status {code}{}", stderr_suffix(&output)),
        ),
        Exit::Signal(sig) => fail(
            ErrorKind::Signal,
            format!(
                "{path}: killed by signal {sig}{}{}",
                signal_name(sig),
                stderr_suffix(&output)
            ),
        ),
    }
}

/// The four variables, per event; a value with a NUL cannot be passed.
pub(crate) fn event_env(inner: &Inner, event: &DisconnectEvent) -> Result<Vec<CString>, HookError> {
    let mut vars: Vec<CString> = Vec::with_capacity(4);
    for (field, value) in event.sftpgo_fields().iter() {
        let Some(kv) = event_var(field, value) else {
            return Err(HookError::new(
                ErrorKind::InvalidEvent,
                format!(
                    "{}: {} contains a NUL byte and cannot be passed to a program",
                    inner.program.display(),
                    field.env_var()
                ),
            )
            .with_backend(Backend::Exec));
        };
        vars.push(kv);
    }
    Ok(vars)
}

/// Waits for the program; on timeout terminates its group, then kills it after the grace.
/// Returns the leader's exit and whether the timeout fired.
async fn supervise(
    child: &mut ChildGuard,
    timeout: Duration,
    grace: Duration,
) -> io::Result<(Exit, bool)> {
    tokio::select! {
        exit = child.wait() => return exit.map(|e| (e, false)),
        () = sleep(timeout) => {}
    }
    child.signal_group(Signal::TERM);
    let grace_end = tokio::time::Instant::now() + grace;
    let exit = tokio::select! {
        exit = child.wait() => Some(exit?),
        () = sleep_until(grace_end) => None,
    };
    let Some(exit) = exit else {
        child.signal_group(Signal::KILL);
        return child.wait().await.map(|e| (e, true));
    };
    // The leader is gone; give the rest of its group until the end of the grace.
    let mut pause = Duration::from_millis(2);
    while child.group_exists() {
        let now = tokio::time::Instant::now();
        if now >= grace_end {
            child.signal_group(Signal::KILL);
            break;
        }
        sleep_until(grace_end.min(now + pause)).await;
        pause = (pause * 2).min(GROUP_POLL_MAX);
    }
    Ok((exit, true))
}

fn spawn_error(inner: &Inner, e: io::Error, started: Instant) -> HookError {
    let path = inner.program.display();
    let hint = if e.raw_os_error() == Some(rustix::io::Errno::ACCESS.raw_os_error())
        && inner.program.is_dir()
    {
        " (it is a directory)"
    } else if e.raw_os_error() == Some(rustix::io::Errno::NOEXEC.raw_os_error()) {
        " (a script needs a #! line: no shell is used)"
    } else {
        ""
    };
    HookError::new(
        ErrorKind::Spawn,
        format!("{path}: cannot start the program: {e}{hint}"),
    )
    .with_backend(Backend::Exec)
    .with_attempts(1)
    .with_elapsed(started.elapsed())
    .with_source(e)
}

fn stderr_suffix(output: &CapturedOutput) -> String {
    let text = output.stderr_lossy();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        // Escaped: the message goes into log lines and onto terminals.
        format!("; stderr: {}", escape_control_chars(last_chars(text, 512)))
    }
}

/// At most the last `n` characters of `s`.
fn last_chars(s: &str, n: usize) -> &str {
    match s.char_indices().rev().nth(n.saturating_sub(1)) {
        Some((i, _)) if n > 0 => &s[i..],
        _ if n == 0 => "",
        _ => s,
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        3 => " (SIGQUIT)",
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        10 => " (SIGUSR1)",
        11 => " (SIGSEGV)",
        12 => " (SIGUSR2)",
        13 => " (SIGPIPE)",
        14 => " (SIGALRM)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

fn log(inner: &Inner, event: &DisconnectEvent, result: &Result<Delivery, HookError>) {
    match result {
        Ok(delivery) => tracing::debug!(
            program = %inner.program.display(),
            protocol = %event.protocol(),
            username = event.username(),
            ip = event.ip(),
            elapsed_ms = delivery.elapsed().as_millis() as u64,
            "post-disconnect hook program exited 0"
        ),
        Err(err) => {
            // Escaped: the program must not be able to forge log lines or send escape sequences.
            let stderr = err
                .output()
                .map(|o| escape_control_chars(o.stderr_lossy().trim()).into_owned())
                .unwrap_or_default();
            tracing::warn!(
                program = %inner.program.display(),
                protocol = %event.protocol(),
                username = event.username(),
                ip = event.ip(),
                kind = %err.kind(),
                elapsed_ms = err.elapsed().map_or(0, |d| d.as_millis() as u64),
                stderr = %stderr,
                "post-disconnect hook program failed: {err}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_chars_counts_characters() {
        assert_eq!(last_chars("abcdef", 3), "def");
        assert_eq!(last_chars("ab", 3), "ab");
        assert_eq!(last_chars("ééé", 2), "éé");
        assert_eq!(last_chars("abc", 0), "");
    }
}
