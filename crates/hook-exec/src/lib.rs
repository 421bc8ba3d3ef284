//! `ExecHook`: run a post-disconnect hook program exactly as SFTPGo does, and clean up after it.
//!
//! **Who should depend on this crate:** servers that only run hook *programs* and want nothing
//! else compiled in, and the `hooks` facade (feature `exec`). It depends on `hook-core`,
//! `hook-config` (types only, no loader), `tokio`, `rustix`, `nix`, `tracing` and (on Linux)
//! `libc`: no HTTP stack
//! (`cargo tree -p hook-exec` shows no `hyper`, `reqwest` or `rustls`).
//!
//! What SFTPGo scripts rely on is kept byte for byte (spec section 3): no shell, no `PATH`
//! lookup, `argv[0]` the configured path, `args` and `env` from the first matching
//! `command.commands` entry, a cleared environment with the four `SFTPGO_CONNECTION_*` variables
//! last and winning, in Go's order. What SFTPGo gets wrong is fixed: a timed-out program's whole
//! process group is terminated then killed (D6), output is captured with a cap and failures are
//! typed errors logged at WARN (D7). See [`ExecHook`].
//!
//! A server that uses `ExecHook` alone:
//!
//! ```no_run
//! use std::time::Duration;
//! use hook_config::{CommandSection, HooksSection};
//! use hook_core::{DisconnectEvent, Hook, Protocol};
//! use hook_exec::ExecHook;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Normally read from sftpgo.json by hook-config's loader; defaults here.
//!     let command = CommandSection::default();
//!     let hooks = HooksSection::default();
//!     let hook = ExecHook::from_config("/usr/local/bin/on-disconnect.sh", &command, &hooks)?;
//!
//!     // ... when a connection ends:
//!     let event = DisconnectEvent::new("192.0.2.7", Protocol::Sftp, "alice", Duration::from_millis(5230));
//!     match hook.on_disconnect(&event).await {
//!         Ok(delivery) => println!("delivered in {:?}", delivery.elapsed()),
//!         Err(err) => eprintln!("hook failed ({}): {err}", err.kind()),
//!     }
//!     Ok(())
//! }
//! ```
//!
//! The program gets stdin from the null device, stdout and stderr as pipes, and on Linux 5.9 or
//! later no other descriptor of the server (it is started by a `clone`-based fast path whose cost
//! does not grow with the server's open descriptors; elsewhere by `posix_spawn`, and then it also
//! inherits descriptors the server opened without close-on-exec).
//!
//! Feature flags: none. Platforms: Unix; on Linux (kernel 5.3 or later) the exit is awaited
//! through a pidfd, elsewhere on tokio's blocking pool. A tokio runtime with I/O and time enabled
//! is required. MSRV: the workspace's `rust-version` (1.90).

// `unsafe` is denied everywhere but in `clone_spawn` (the Linux spawn fast path), which allows it.
#![deny(unsafe_code)]

#[cfg(target_os = "linux")]
mod clone_spawn;
mod env;
mod hook;
mod output;
mod process;
mod run;

pub use hook::{ExecHook, ExecHookBuilder};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use hook_core::{DisconnectEvent, ErrorKind, Hook, HookError, HookStatus, Protocol};

    use crate::hook::Inner;
    use crate::{ExecHook, ExecHookBuilder};

    /// `h.sh` in `dir`: with `sleep` as its argument it becomes a 30 s sleep; otherwise it prints
    /// the username, its argument and what its stdin is, writes `oops` to stderr and exits 4.
    fn script(dir: &Path) -> PathBuf {
        let body = "#!/bin/sh\n\
            if [ \"$1\" = sleep ]; then exec /bin/sleep 30; fi\n\
            echo \"$SFTPGO_CONNECTION_USERNAME $1 $(/bin/readlink /proc/$$/fd/0)\"\n\
            echo oops >&2\n\
            exit 4\n";
        // Written so that a concurrent spawn cannot hold it open for writing (no ETXTBSY).
        hook_test_support::write_file_safely(dir, "h.sh", body.as_bytes(), 0o755)
    }

    /// Runs `builder`'s hook once with `force` applied to its internals; returns the error.
    async fn run_forced(builder: ExecHookBuilder, force: impl FnOnce(&mut Inner)) -> HookError {
        let mut hook = builder.build().unwrap();
        force(Arc::get_mut(&mut hook.inner).unwrap());
        let event = DisconnectEvent::new("1.2.3.4", Protocol::Sftp, "u", Duration::ZERO);
        hook.on_disconnect(&event).await.unwrap_err()
    }

    fn sleeper(script: &Path) -> ExecHookBuilder {
        ExecHook::builder(script)
            .arg("sleep")
            .timeout(Duration::from_millis(200))
            .kill_grace(Duration::from_millis(200))
    }

    /// The `posix_spawn` path (used where the Linux fast path is unavailable) gives the same
    /// outcomes: environment, arguments, stdin, captured output, exit status, a timeout that
    /// terminates the program's group, a spawn error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn posix_spawn_path_gives_the_same_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let script = script(dir.path());
        let force = |inner: &mut Inner| inner.force_posix_spawn = true;

        let err = run_forced(ExecHook::builder(&script).arg("x"), force).await;
        assert_eq!(err.status(), Some(HookStatus::Exit(4)));
        let output = err.output().unwrap();
        assert_eq!(output.stdout_lossy(), "u x /dev/null\n");
        assert_eq!(output.stderr_lossy(), "oops\n");

        let err = run_forced(sleeper(&script), force).await;
        assert!(err.is_timeout());
        assert_eq!(err.status(), Some(HookStatus::Signal(15)));

        let err = run_forced(ExecHook::builder(dir.path().join("missing")), force).await;
        assert_eq!(err.kind(), ErrorKind::Spawn);
        assert!(err.to_string().contains("No such file"), "{err}");
    }

    /// The blocking-pool waiter (used where pidfds are unavailable) gives the same outcomes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_waiter_reports_exit_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let script = script(dir.path());
        let force = |inner: &mut Inner| inner.force_blocking_wait = true;

        let err = run_forced(ExecHook::builder(&script), force).await;
        assert_eq!(err.status(), Some(HookStatus::Exit(4)));

        let err = run_forced(sleeper(&script), force).await;
        assert!(err.is_timeout());
        assert_eq!(err.status(), Some(HookStatus::Signal(15)));
    }
}
