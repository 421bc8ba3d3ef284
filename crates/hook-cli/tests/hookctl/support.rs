use std::path::Path;
use std::process::{Command, Output};

/// Runs `hookctl` with a clean environment (plus `extra_env`) in `dir`.
pub(crate) fn hookctl(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookctl"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(dir)
        .args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hookctl")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The last line of stdout, parsed as `events=N failed=F elapsed_ms=X events_per_s=Y p50_ms=A p99_ms=B`.
pub(crate) fn summary(out: &Output) -> Vec<(String, f64)> {
    let text = stdout(out);
    let last = text.lines().last().unwrap_or_default().to_owned();
    let fields: Vec<(String, f64)> = last
        .split(' ')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("bad summary {last:?}"));
            (
                k.to_owned(),
                v.parse()
                    .unwrap_or_else(|_| panic!("bad number in {last:?}")),
            )
        })
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "events",
            "failed",
            "elapsed_ms",
            "events_per_s",
            "p50_ms",
            "p99_ms"
        ],
        "summary line {last:?}"
    );
    fields
}

pub(crate) fn summary_value(out: &Output, key: &str) -> f64 {
    summary(out)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A working dir with a hook script that records each run (environment, argv) into `records`.
pub(crate) struct RecordingHook {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) records: tempfile::TempDir,
    pub(crate) script: String,
}

/// A [`RecordingHook`] whose script runs `tail` after recording.
pub(crate) fn recording_hook(tail: &str) -> RecordingHook {
    let dir = tempfile::tempdir().unwrap();
    let records = tempfile::tempdir().unwrap();
    let body = hook_test_support::record_script_body(records.path(), tail);
    let script = hook_test_support::write_script(dir.path(), "hook.sh", &body);
    let script = script.to_str().unwrap().to_owned();
    RecordingHook {
        dir,
        records,
        script,
    }
}

/// A `hookctl` command with a clean environment (plus `extra_env`) in `dir`, not yet started;
/// `prefix` is a wrapper command line (`prlimit ...`) run in front of it.
pub(crate) fn hookctl_command(
    dir: &Path,
    prefix: &[&str],
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Command {
    let bin = env!("CARGO_BIN_EXE_hookctl");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(dir)
        .args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` to completion with its output captured, killing it (and failing the test) when it
/// has not exited within `bound`: a hang becomes a test failure, never a stuck test run. The
/// bound is generous (the machine is shared); it is not a speed assertion.
pub(crate) fn output_within(mut cmd: Command, bound: std::time::Duration) -> Output {
    use std::process::Stdio;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hookctl");
    wait_within(child, bound)
}

/// [`output_within`] for a child already started with piped stdout and stderr.
pub(crate) fn wait_within(mut child: std::process::Child, bound: std::time::Duration) -> Output {
    use std::io::Read;
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let until = std::time::Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for hookctl") {
            break status;
        }
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hookctl did not exit within {bound:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}
