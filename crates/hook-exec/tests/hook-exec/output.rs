//! D7: capped concurrent capture, and no waiting on pipes held by background children.

use std::time::{Duration, Instant};

use hook_core::{Hook, HookStatus};
use hook_exec::ExecHook;

use crate::{HEAVY, event, is_alive, kill, read_pid, script};

#[tokio::test]
async fn exit_0_leaving_a_background_child_is_delivered_at_once_and_the_child_lives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // The background sleep inherits stdout and stderr: the pipes stay open after the hook exits.
    let program = script(
        dir.path(),
        "fork.sh",
        &format!("/bin/sleep 30 &\necho $! > {d}/bg\necho done\nexit 0\n"),
    );
    let hook = ExecHook::builder(&program).build().unwrap();
    let started = Instant::now();
    let delivery = hook.on_disconnect(&event()).await.unwrap();
    let took = started.elapsed();
    let bg = read_pid(&dir.path().join("bg")).await;
    let alive = is_alive(bg);
    kill(bg);

    assert!(
        took < Duration::from_secs(1),
        "delivery waited for the background child: {took:?}"
    );
    assert_eq!(delivery.status(), Some(HookStatus::Exit(0)));
    assert_eq!(delivery.output().unwrap().stdout_lossy(), "done\n");
    assert!(alive, "the background child was killed");
}

#[tokio::test]
async fn a_background_child_writing_after_delivery_is_not_broken_by_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // It writes to the inherited stdout well after the drain time; with the pipe closed it would
    // die of SIGPIPE before writing its marker (SFTPGo gives it /dev/null, so such scripts exist).
    let program = script(
        dir.path(),
        "late.sh",
        &format!("(/bin/sleep 0.5; echo late; echo late >&2; echo ok > {d}/marker) &\nexit 0\n"),
    );
    let hook = ExecHook::builder(&program).build().unwrap();
    let delivery = hook.on_disconnect(&event()).await.unwrap();
    assert_eq!(delivery.status(), Some(HookStatus::Exit(0)));
    let marker = dir.path().join("marker");
    let written = crate::eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&marker).is_ok_and(|t| t == "ok\n")
    })
    .await;
    assert!(written, "the background child did not finish its work");
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_drained_with_bounded_memory_and_only_the_tail_kept() {
    let _heavy = HEAVY.lock().await;
    const OUT: u64 = 200 * 1024 * 1024;
    const ERR: u64 = 50 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "loud.sh",
        &format!(
            "/usr/bin/head -c {ERR} /dev/zero >&2 &\n/usr/bin/head -c {OUT} /dev/zero\nwait\n\
             printf STDOUT-END\nprintf STDERR-END >&2\n"
        ),
    );
    let hook = ExecHook::builder(&program)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let before = vm_hwm_kib();
    let delivery = hook.on_disconnect(&event()).await.unwrap();
    let grown_mib = (vm_hwm_kib() - before) / 1024;

    let out = delivery.output().unwrap();
    assert_eq!(out.stdout().len(), 8192);
    assert_eq!(out.stderr().len(), 8192);
    assert!(out.stdout().ends_with(b"STDOUT-END") && out.stdout()[..8182].iter().all(|&b| b == 0));
    assert!(out.stderr().ends_with(b"STDERR-END") && out.stderr()[..8182].iter().all(|&b| b == 0));
    assert_eq!(out.stdout_dropped(), OUT + 10 - 8192);
    assert_eq!(out.stderr_dropped(), ERR + 10 - 8192);
    assert!(
        grown_mib < 64,
        "peak memory grew by {grown_mib} MiB while draining 250 MB"
    );
}

#[tokio::test]
async fn the_cap_keeps_the_last_bytes_of_each_stream() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "tail.sh",
        "for i in 1 2 3 4 5 6 7 8 9; do echo \"out line $i\"; echo \"err line $i\" >&2; done\nexit 3\n",
    );
    let hook = ExecHook::builder(&program).output_cap(22).build().unwrap();
    let err = hook.on_disconnect(&event()).await.unwrap_err();
    let out = err.output().unwrap();
    assert_eq!(out.stdout_lossy(), "out line 8\nout line 9\n");
    assert_eq!(out.stderr_lossy(), "err line 8\nerr line 9\n");
    assert_eq!(out.stdout_dropped(), 9 * 11 - 22);
    assert_eq!(out.stderr_dropped(), 9 * 11 - 22);
}
