//! Each failure gives its own typed error naming the path (spec 3.5 improved by D7).

use std::io;
use std::path::Path;

use hook_core::{Backend, ErrorKind, Hook, HookError, HookStatus};
use hook_exec::ExecHook;

use crate::{event, script, set_mode};

async fn run(program: &Path) -> HookError {
    ExecHook::builder(program)
        .build()
        .unwrap()
        .on_disconnect(&event())
        .await
        .unwrap_err()
}

fn os_error(err: &HookError) -> Option<i32> {
    std::error::Error::source(err)?
        .downcast_ref::<io::Error>()?
        .raw_os_error()
}

fn assert_spawn(err: &HookError, program: &Path, errno: i32, words: &str) {
    assert_eq!(err.kind(), ErrorKind::Spawn, "{err:?}");
    assert_eq!(err.backend(), Some(Backend::Exec));
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.status(), None);
    assert_eq!(os_error(err), Some(errno), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: ", program.display())),
        "{text}"
    );
    assert!(text.contains(words), "{text}");
}

#[tokio::test]
async fn missing_program() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("does-not-exist.sh");
    assert_spawn(
        &run(&program).await,
        &program,
        2,
        "No such file or directory",
    );
}

#[tokio::test]
async fn not_executable() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "noexec.sh", "exit 0\n");
    set_mode(&program, 0o644);
    // Root bypasses permission bits only when some execute bit is set: 0644 fails for root too.
    assert_spawn(&run(&program).await, &program, 13, "Permission denied");
}

#[tokio::test]
async fn a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("a-dir");
    std::fs::create_dir(&program).unwrap();
    assert_spawn(&run(&program).await, &program, 13, "it is a directory");
}

#[tokio::test]
async fn a_script_without_shebang_is_an_exec_format_error_not_run_by_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let program = hook_test_support::write_file_safely(
        dir.path(),
        "no-shebang.sh",
        format!("touch {}\n", marker.display()).as_bytes(),
        0o755,
    );
    assert_spawn(&run(&program).await, &program, 8, "Exec format error");
    assert!(!marker.exists(), "a shell ran the script");
}

#[tokio::test]
async fn exit_3_carries_the_code_and_the_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "exit3.sh",
        "echo to-stdout\necho 'billing API said no' >&2\nexit 3\n",
    );
    let err = run(&program).await;
    assert_eq!(err.kind(), ErrorKind::ExitStatus);
    assert_eq!(err.status(), Some(HookStatus::Exit(3)));
    assert_eq!(err.attempts(), 1);
    assert!(err.elapsed().is_some());
    let out = err.output().unwrap();
    assert_eq!(out.stdout_lossy(), "to-stdout\n");
    assert_eq!(out.stderr_lossy(), "billing API said no\n");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: exit status 3; stderr: billing API said no",
            program.display()
        )
    );
}

#[tokio::test]
async fn death_by_signal_carries_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "signal.sh",
        "echo dying >&2\nkill -USR1 $$\n/bin/sleep 5\n",
    );
    let err = run(&program).await;
    assert_eq!(err.kind(), ErrorKind::Signal);
    assert_eq!(err.status(), Some(HookStatus::Signal(10)));
    assert_eq!(err.output().unwrap().stderr_lossy(), "dying\n");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: killed by signal 10 (SIGUSR1)",
            program.display()
        )),
        "{text}"
    );
}
