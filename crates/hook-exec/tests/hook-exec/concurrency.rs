//! Many hooks at once: every one delivered, no zombie and no process left behind.

use std::collections::HashSet;
use std::time::Duration;

use hook_core::{Hook, HookStatus};
use hook_exec::ExecHook;

use crate::{HEAVY, all_procs, event, eventually, script, self_pid};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_hooks_leave_no_zombie_and_no_process() {
    let _heavy = HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // Each hook also starts a short-lived grandchild, so every group has two processes.
    let program = script(dir.path(), "pid.sh", "/bin/true &\necho $$\nwait\n");
    let hook = ExecHook::builder(&program)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let hook = hook.clone();
            tokio::spawn(async move { hook.on_disconnect(&event()).await })
        })
        .collect();
    let mut pids = HashSet::new();
    for task in tasks {
        let delivery = task.await.unwrap().unwrap();
        assert_eq!(delivery.status(), Some(HookStatus::Exit(0)));
        let pid: i32 = delivery
            .output()
            .unwrap()
            .stdout_lossy()
            .trim()
            .parse()
            .unwrap();
        pids.insert(pid);
    }
    assert_eq!(pids.len(), 500, "each hook is its own process");

    let me = self_pid();
    let leftovers = || {
        all_procs()
            .into_iter()
            .filter(|p| pids.contains(&p.pgrp) || (p.ppid == me && pids.contains(&p.pid)))
            .collect::<Vec<_>>()
    };
    // The hooks' own processes are reaped before on_disconnect returns; allow init a moment to
    // reap the orphaned grandchildren (which are not ours to reap).
    let clean = eventually(Duration::from_secs(5), || leftovers().is_empty()).await;
    assert!(clean, "left behind: {:?}", leftovers());
    // And none of the leaders is a zombie child of ours, even for an instant after return.
    assert!(
        all_procs()
            .iter()
            .all(|p| !(p.ppid == me && p.state == 'Z' && pids.contains(&p.pid)))
    );
}
