//! With the real program backend: shutdown kills what is still running (no process left behind),
//! a generous deadline delivers everything, and the program sees the duration fixed at disconnect.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hooks::{
    DisconnectEvent, Dispatcher, DispatcherOptions, ErrorKind, HookConfig, Protocol, build_hook,
};

use crate::support::{count_errors, recording};

fn sleep_program() -> &'static str {
    ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a sleep program")
}

/// Writes an executable `/bin/sh` script into `dir` and returns its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    // Written so that no concurrent spawn can inherit a writable descriptor (no ETXTBSY).
    hook_test_support::write_script(dir, name, &format!("#!/bin/sh\n{body}"))
}

fn dispatcher_for(program: &Path, options: DispatcherOptions) -> Dispatcher {
    let mut config = HookConfig::default();
    config.common.post_disconnect_hook = program.to_str().unwrap().into();
    config.command.timeout = 60;
    let hook = build_hook(&config).unwrap().expect("a program hook");
    Dispatcher::new(hook, options)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether `pid` is a live process (a zombie is not: it has exited and holds no resources).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start())
                .unwrap_or("");
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let began = Instant::now();
    while !cond() {
        assert!(began.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ev(name: &str, duration_ms: u64) -> DisconnectEvent {
    DisconnectEvent::new(
        "192.0.2.44",
        Protocol::Sftp,
        name,
        Duration::from_millis(duration_ms),
    )
}

/// Three programs that would run 10 s (each with a `sleep 10` child), a 2 s deadline: shutdown
/// returns in about 2 s, reports them abandoned, and no hook process (script or child) is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_leaves_no_hook_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let program = script(
        dir.path(),
        "slow.sh",
        &format!(
            "echo $$ >> '{p}'\n{sleep} 10 &\necho $! >> '{p}'\nwait\n",
            p = pids.display(),
            sleep = sleep_program()
        ),
    );
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(3));
    let dispatcher = dispatcher_for(&program, options);
    for i in 0..3 {
        dispatcher.fire(ev(&format!("u{i}"), 10)).unwrap();
    }
    wait_for("6 pids", Duration::from_secs(20), || {
        lines(&pids).len() == 6
    })
    .await;
    let pids: Vec<u32> = lines(&pids)
        .iter()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");

    let began = Instant::now();
    let report = dispatcher.shutdown(Duration::from_secs(2)).await;
    let took = began.elapsed();
    // About 2 s: generous upper bound for a loaded machine.
    assert!(
        took >= Duration::from_millis(1_900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(
        (report.abandoned_running, report.delivered, report.failed),
        (3, 0, 0),
        "{report:?}"
    );
    assert_eq!(count_errors(&outcomes, ErrorKind::Cancelled), 3);

    // The groups were sent SIGKILL when the futures were dropped; give the kernel a moment.
    wait_for(
        "every hook process to be gone",
        Duration::from_secs(5),
        || !pids.iter().any(|p| alive(*p)),
    )
    .await;
}

/// A generous deadline delivers every program run; failures are counted as failed; the program
/// sees the duration fixed at disconnect although it waited in the queue behind a slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generous_deadline_delivers_every_program_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let program = script(
        dir.path(),
        "hook.sh",
        &format!(
            "[ \"$SFTPGO_CONNECTION_USERNAME\" = slow ] && {sleep} 0.3\n\
             echo \"$SFTPGO_CONNECTION_USERNAME $SFTPGO_CONNECTION_DURATION\" >> '{log}'\n\
             [ \"$SFTPGO_CONNECTION_USERNAME\" = fail ] && exit 3\nexit 0\n",
            sleep = sleep_program(),
            log = log.display()
        ),
    );
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(1));
    let dispatcher = dispatcher_for(&program, options);
    dispatcher.fire(ev("slow", 5)).unwrap();
    dispatcher.fire(ev("queued", 1234)).unwrap();
    dispatcher.fire(ev("fail", 7)).unwrap();
    let report = dispatcher.shutdown(Duration::from_secs(30)).await;
    assert_eq!(
        (report.delivered, report.failed, report.abandoned),
        (2, 1, 0),
        "{report:?}"
    );
    assert_eq!(count_errors(&outcomes, ErrorKind::ExitStatus), 1);
    let mut got = lines(&log);
    got.sort();
    assert_eq!(got, ["fail 7", "queued 1234", "slow 5"]);
}
