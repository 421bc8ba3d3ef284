//! Issue 11, items 5-9: each test is named after the item it reproduces (`item<N>_...`) and
//! failed before the fix.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use hook_test_support::{RefusedPort, write_script};

/// Generous bounds enforced by killing the child: a hang fails the test instead of stalling it.
const BOUND: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A directory every user can read (the item 5 test runs hookctl as `nobody` when it is root).
fn world_readable_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `prlimit --nproc=N`, and as root (whom the kernel never holds to RLIMIT_NPROC) also
/// `setpriv` to the `nobody` user, so the limit applies.
fn nproc_prefix(limit: u32) -> Vec<String> {
    let mut prefix = vec![
        "prlimit".to_owned(),
        format!("--nproc={limit}"),
        "--".into(),
    ];
    if is_root() {
        prefix.extend(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ]
            .map(str::to_owned),
        );
    }
    prefix
}

// ---------------------------------------------------------------------------------------------
// Item 5: hookctl never panics or hangs when its runtime cannot start its threads.

#[test]
fn item5_thread_limit_is_a_clear_error_and_exit_2_never_a_panic_or_hang() {
    let dir = world_readable_dir();
    // 1: not even one more thread. 2 and 3: a program storm's runtime (a worker per core plus
    // one, at least two) starts some of its threads, then one fails: the case that used to panic
    // and then hang forever. An HTTP storm needs one thread besides the main one: with 2 it runs
    // (and fails to connect: exit 1).
    let refused = RefusedPort::new();
    let url = refused.url("/hook");
    for (limit, hook, must_refuse) in [
        (1, "/bin/true", true),
        (1, url.as_str(), true),
        (2, "/bin/true", true),
        (3, "/bin/true", false),
        (2, url.as_str(), false),
    ] {
        let prefix = nproc_prefix(limit);
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        let cmd = hookctl_command(
            dir.path(),
            &prefix,
            &[
                "--config-dir",
                dir.path().to_str().unwrap(),
                "fire",
                "--hook",
                hook,
            ],
            &[("RUST_BACKTRACE", "0"), ("SFTPGO_HTTP__RETRY_MAX", "0")],
        );
        let out = output_within(cmd, BOUND);
        let err = stderr(&out);
        let code = out.status.code();
        assert!(
            !err.contains("panicked"),
            "nproc={limit} hook={hook}: {err}"
        );
        if must_refuse {
            assert_eq!(code, Some(2), "nproc={limit} hook={hook}: {err}");
        } else {
            // Either the runtime got its threads and the event ran (0, or 1 for the refused
            // port), or it did not: then the same clear refusal.
            assert!(
                matches!(code, Some(0..=2)),
                "nproc={limit} hook={hook}: {code:?} {err}"
            );
        }
        if code == Some(2) {
            assert!(
                err.contains("hookctl: cannot start")
                    && err.contains("thread")
                    && err.contains("RLIMIT_NPROC"),
                "nproc={limit} hook={hook}: {err}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Item 6: `check` runs the validation a server's start-up runs.

fn program_hook_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "hook.sh", "#!/bin/sh\nexit 0\n");
    (dir, script.to_str().unwrap().to_owned())
}

#[test]
fn item6_check_refuses_bad_tls_files_whatever_the_hook_target() {
    let (dir, script) = program_hook_dir();
    let d = dir.path();
    write(d, "empty.pem", "");
    write(d, "garbage.pem", "this is not PEM\n");
    std::fs::create_dir(d.join("adir")).unwrap();
    let cases: [(&str, &str, &str); 9] = [
        (
            "ca_certificates",
            r#"["missing.pem"]"#,
            "http.ca_certificates[0]",
        ),
        (
            "ca_certificates",
            r#"["empty.pem"]"#,
            "http.ca_certificates[0]",
        ),
        (
            "ca_certificates",
            r#"["garbage.pem"]"#,
            "http.ca_certificates[0]",
        ),
        ("ca_certificates", r#"["adir"]"#, "http.ca_certificates[0]"),
        (
            "certificates",
            r#"[{"cert": "missing.pem", "key": "empty.pem"}]"#,
            "http.certificates[0].cert",
        ),
        (
            "certificates",
            r#"[{"cert": "adir", "key": "garbage.pem"}]"#,
            "http.certificates[0].cert",
        ),
        (
            "certificates",
            r#"[{"cert": "empty.pem", "key": "garbage.pem"}]"#,
            "http.certificates[0].cert",
        ),
        (
            "certificates",
            r#"[{"cert": "garbage.pem", "key": "garbage.pem"}]"#,
            "http.certificates[0].cert",
        ),
        (
            "certificates",
            r#"[{"cert": "garbage.pem", "key": "adir"}]"#,
            "http.certificates[0]",
        ),
    ];
    for (hook, what) in [(script.as_str(), "program"), ("", "disabled")] {
        for (key, value, named) in cases {
            write(
                d,
                "sftpgo.json",
                &format!(
                    r#"{{"common": {{"post_disconnect_hook": "{hook}"}}, "http": {{"{key}": {value}}}}}"#
                ),
            );
            let out = hookctl(d, &["check"], &[]);
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what} hook, {key} = {value}: {err}"
            );
            assert!(err.contains(named), "{what} hook, {key} = {value}: {err}");
            // fire refuses the same configuration before firing anything.
            let out = hookctl(d, &["fire", "--hook", &script], &[]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "fire, {key} = {value}: {}",
                stderr(&out)
            );
            assert!(stderr(&out).contains(named), "{}", stderr(&out));
        }
    }
    // A FIFO as a CA file would block the start-up forever: refused without being opened.
    let status = Command::new("mkfifo")
        .arg(d.join("fifo.pem"))
        .status()
        .unwrap();
    assert!(status.success());
    write(
        d,
        "sftpgo.json",
        &format!(
            r#"{{"common": {{"post_disconnect_hook": "{script}"}}, "http": {{"ca_certificates": ["fifo.pem"]}}}}"#
        ),
    );
    let out = output_within(hookctl_command(d, &[], &["check"], &[]), BOUND);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("http.ca_certificates[0]")
            && stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item6_check_refuses_the_dispatcher_limits_fire_refuses() {
    let (dir, script) = program_hook_dir();
    let d = dir.path();
    // 2^61 - 1 is the most a dispatcher holds; 2^61 and beyond are refused by fire.
    for (key, value) in [
        ("queue_capacity", "2305843009213693952"),
        ("max_in_flight", "2305843009213693952"),
        ("queue_capacity", "9223372036854775807"),
        ("max_in_flight", "4611686018427387904"),
    ] {
        write(
            d,
            "sftpgo.json",
            &format!(
                r#"{{"common": {{"post_disconnect_hook": "{script}"}}, "hooks": {{"{key}": {value}}}}}"#
            ),
        );
        let check = hookctl(d, &["check"], &[]);
        let fire = hookctl(d, &["fire"], &[]);
        assert_eq!(
            fire.status.code(),
            Some(2),
            "fire, {key} = {value}: {}",
            stderr(&fire)
        );
        assert_eq!(
            check.status.code(),
            Some(2),
            "check, {key} = {value}: {}",
            stdout(&check)
        );
        assert!(
            stderr(&check).contains(&format!("hooks.{key}")),
            "{}",
            stderr(&check)
        );
    }
    // The largest accepted value is accepted by both, and fire really fires with it.
    write(
        d,
        "sftpgo.json",
        &format!(
            r#"{{"common": {{"post_disconnect_hook": "{script}"}}, "hooks": {{"queue_capacity": 2305843009213693951, "max_in_flight": 2305843009213693951}}}}"#
        ),
    );
    let check = hookctl(d, &["check"], &[]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let fire = hookctl(d, &["fire"], &[]);
    assert_eq!(fire.status.code(), Some(0), "{}", stderr(&fire));
}

// ---------------------------------------------------------------------------------------------
// Item 7: a YAML alias bomb, and configuration files of any size.

/// The classic "billion laughs" document: 342 bytes, 9^9 nodes once its aliases are expanded.
pub(crate) const ALIAS_BOMB: &str = r#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"#;

/// hookctl under a 2 GiB address-space limit: without the fix the alias bomb would exhaust the
/// machine's memory; with the limit it aborts instead (and the test fails on the exit status).
fn run_memory_bounded(d: &Path, args: &[&str]) -> std::process::Output {
    let cmd = hookctl_command(d, &["prlimit", "--as=2147483648", "--"], args, &[]);
    output_within(cmd, BOUND)
}

#[test]
fn item7_yaml_alias_bomb_is_refused_with_exit_2() {
    assert_eq!(ALIAS_BOMB.len(), 342);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "sftpgo.yaml", ALIAS_BOMB);
    let out = run_memory_bounded(d, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sftpgo.yaml") && err.contains("excessive aliasing"),
        "{err}"
    );
    // The same bomb inside a section the loader ignores (it is parsed all the same).
    let nested = format!(
        "command:\n  timeout: 10\nsftpd:\n{}",
        ALIAS_BOMB
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    write(d, "bomb.yml", &nested);
    let out = run_memory_bounded(d, &["--config-file", "bomb.yml", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bomb.yml"), "{}", stderr(&out));
}

#[test]
fn item7_yaml_aliases_within_go_yaml_limits_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "sftpgo.yaml",
        "defaults: &env [\"A=1\", \"B=2\"]\ncommand:\n  env: *env\n  commands:\n    - path: /bin/true\n      env: *env\n",
    );
    let out = hookctl(d, &["check"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(r#"command.env = ["A=1","B=2"]"#),
        "{}",
        stdout(&out)
    );
}

#[test]
fn item7_oversized_configuration_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 20 MiB of valid configuration text (a long comment or string), in each format.
    let filler = "x".repeat(20 << 20);
    for (name, text) in [
        ("big.json", format!(r#"{{"pad": "{filler}"}}"#)),
        ("big.yaml", format!("pad: {filler}\n")),
        ("big.toml", format!("pad = \"{filler}\"\n")),
    ] {
        write(d, name, &text);
        let out = run_memory_bounded(d, &["--config-file", name, "check"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains("larger than"),
            "{name}: {err}"
        );
        std::fs::remove_file(d.join(name)).unwrap();
    }
    // Not a regular file: refused without reading (a FIFO would block forever).
    let status = Command::new("mkfifo")
        .arg(d.join("fifo.json"))
        .status()
        .unwrap();
    assert!(status.success());
    let cmd = hookctl_command(d, &[], &["--config-file", "fifo.json", "check"], &[]);
    let out = output_within(cmd, BOUND);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fifo.json") && stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Item 8: fire interrupted by SIGINT or SIGTERM.

/// A hook script that records its process group, starts a background child in the same group,
/// then waits; `trap_term` makes it ignore SIGTERM (only SIGKILL stops it).
fn long_hook(dir: &Path, trap_term: bool) -> String {
    let marker = dir.join("pgid");
    let trap = if trap_term { "trap '' TERM\n" } else { "" };
    // (Hooks run with an empty environment: no PATH.) Field 5 of /proc/PID/stat is the group.
    let body = format!(
        "#!/bin/sh\n{trap}/bin/sleep 300 &\nread -r stat < /proc/$$/stat\nset -- $stat\necho \"$5\" > {m}.tmp\n/bin/mv {m}.tmp {m}\nwait\n",
        m = marker.display()
    );
    write_script(dir, "long.sh", &body)
        .to_str()
        .unwrap()
        .to_owned()
}

fn wait_for_pgid(dir: &Path) -> i32 {
    let marker = dir.join("pgid");
    let until = std::time::Instant::now() + BOUND;
    loop {
        if let Ok(text) = std::fs::read_to_string(&marker)
            && let Ok(pgid) = text.trim().parse()
        {
            return pgid;
        }
        assert!(std::time::Instant::now() < until, "the hook never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live (not zombie) processes whose process group is `pgid`, from `/proc`.
fn live_members(pgid: i32) -> Vec<String> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            members.push(stat);
        }
    }
    members
}

fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

fn start_fire(dir: &Path, script: &str, events: &str) -> std::process::Child {
    hookctl_command(
        dir,
        &[],
        &[
            "fire",
            "--hook",
            script,
            "--events",
            events,
            "--concurrency",
            "1",
        ],
        &[],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

#[test]
fn item8_sigint_stops_firing_kills_the_hook_group_prints_the_summary_and_exits_1() {
    for (sig, name) in [
        (rustix::process::Signal::INT, "SIGINT"),
        (rustix::process::Signal::TERM, "SIGTERM"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // The program ignores SIGTERM: only the group SIGKILL after the kill grace stops it.
        let script = long_hook(d, true);
        // One hook at a time, at most two events outstanding: firing stops at the signal.
        write(
            d,
            "sftpgo.json",
            r#"{"hooks": {"kill_grace": 0.2, "queue_capacity": 2}}"#,
        );
        let child = start_fire(d, &script, "1000");
        let pgid = wait_for_pgid(d);
        assert!(!live_members(pgid).is_empty());
        signal(&child, sig);
        let out = wait_within(child, BOUND);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!("interrupted by {name}")),
            "{name}: {err}"
        );
        // The summary line is printed; far fewer than the 1,000 requested events ran.
        let events = summary_value(&out, "events");
        assert!(events < 1000.0, "{name}: {}", stdout(&out));
        assert_eq!(summary_value(&out, "failed"), events, "{}", stdout(&out));
        // The hook's whole process group (the script and its background child) is gone: it was
        // sent SIGKILL before hookctl exited (the kernel may take a moment to finish them off).
        let until = std::time::Instant::now() + BOUND;
        let mut left = live_members(pgid);
        while !left.is_empty() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
            left = live_members(pgid);
        }
        assert!(left.is_empty(), "{name}: still alive: {left:?}");
    }
}

#[test]
fn item8_a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = long_hook(d, true);
    // A long kill grace: the first signal's shutdown would wait for it.
    write(d, "sftpgo.json", r#"{"hooks": {"kill_grace": 300}}"#);
    let child = start_fire(d, &script, "1");
    let pgid = wait_for_pgid(d);
    signal(&child, rustix::process::Signal::INT);
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, rustix::process::Signal::INT);
    let out = wait_within(child, BOUND);
    let err = stderr(&out);
    // 130 = 128 + SIGINT: the immediate exit, not the first signal's orderly exit 1.
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("second signal"), "{err}");
    // Clean up the program the immediate exit left behind.
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(pgid).unwrap(),
        rustix::process::Signal::KILL,
    );
}

// ---------------------------------------------------------------------------------------------
// Item 9: secrets and log safety.

#[test]
fn item9_hook_url_query_values_never_reach_logs_errors_or_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = RefusedPort::new();
    let url = port.url("/hook?token=s3cretvalue&tenant=acme42");
    write(
        d,
        "sftpgo.json",
        &format!(
            r#"{{"common": {{"post_disconnect_hook": "{url}"}}, "http": {{"retry_max": 0}}}}"#
        ),
    );
    for args in [
        &["fire"][..],
        &["fire", "--json"][..],
        &["check"][..],
        &["fire", "--hook", &url][..],
    ] {
        let out = hookctl(d, args, &[]);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !all.contains("s3cretvalue") && !all.contains("acme42"),
            "{args:?}: {all}"
        );
        assert!(all.contains("token=xxxxx"), "{args:?}: {all}");
    }
}

#[test]
fn item9_a_hooks_stderr_cannot_forge_log_lines_or_send_escape_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = write_script(
        d,
        "forger.sh",
        "#!/bin/sh\nprintf 'boom\\n2031-01-01T00:00:00.000000Z  WARN forged: all good\\n\\033[2J\\033[31mred\\r\\007' >&2\nexit 3\n",
    );
    let out = hookctl(d, &["fire", "--hook", script.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    // The log output (stderr): one WARN record on one line, no forged line, no escape byte.
    let log = stderr(&out);
    assert!(
        !log.bytes().any(|b| b == 0x1b || b == b'\r' || b == 0x07),
        "{log:?}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2031-01-01")),
        "a forged log line: {log}"
    );
    let warn_lines: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warn_lines.len(), 1, "{log}");
    assert!(
        warn_lines[0].contains(
            r"boom\n2031-01-01T00:00:00.000000Z  WARN forged: all good\n\x1b[2J\x1b[31mred\r\x07"
        ),
        "{log}"
    );
    // The failure line on stdout carries the same escaped tail.
    let text = stdout(&out);
    assert!(
        !text.bytes().any(|b| b == 0x1b || b == b'\r' || b == 0x07),
        "{text:?}"
    );
    let failed = text.lines().next().unwrap();
    assert!(
        failed.starts_with("failed: ") && failed.contains(r"boom\n2031"),
        "{text}"
    );
}
