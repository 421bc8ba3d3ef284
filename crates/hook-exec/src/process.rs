//! Starting the program in its own process group, waiting for it without blocking the runtime,
//! and making sure it is killed and reaped whatever happens to the future.
//!
//! The program is started with `posix_spawn` (through `nix`'s safe wrapper) rather than
//! `std::process::Command`, because std passes the environment sorted by key, while SFTPGo's order
//! (spec 3.2) must be kept. `posix_spawn` is also what std uses on Linux: glibc implements it with
//! `clone(CLONE_VM | CLONE_VFORK)`, the fast path.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::mpsc;

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{
    Pid, Signal, WaitOptions, kill_process_group, test_kill_process_group, waitpid,
};

/// How the program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Ended by this signal.
    Signal(i32),
}

/// A started program: its pid (also its process-group id), its pidfd when the spawn made one, and
/// the read ends of its output pipes.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: Pid,
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// Starts `program` with exactly `argv` and `envp`, stdin from the null device, stdout and stderr
/// to fresh pipes, in a new process group whose id is the child's pid, with an empty signal mask
/// and `SIGPIPE` at its default action (as std does). The working directory is inherited.
///
/// On Linux 5.9 and later the program gets no descriptor but those three (see `clone_spawn`);
/// elsewhere, and with `posix_spawn` forced, it also inherits the server's descriptors that lack
/// close-on-exec.
pub(crate) fn spawn(
    program: &CStr,
    argv: &[CString],
    envp: &[&CStr],
    force_posix_spawn: bool,
) -> io::Result<Spawned> {
    let devnull = null_device()?;
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC)?;
    let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC)?;
    // A pipe end that landed on 0, 1 or 2 (the server closed its own stdio) would be clobbered by
    // the dup2 actions or keep its close-on-exec flag: move it above 2 first.
    let out_w = above_stdio(out_w)?;
    let err_w = above_stdio(err_w)?;

    #[cfg(target_os = "linux")]
    if !force_posix_spawn {
        let fast = crate::clone_spawn::spawn(
            program,
            argv,
            envp,
            devnull.as_fd(),
            out_w.as_fd(),
            err_w.as_fd(),
        )?;
        if let Some((pid, pidfd)) = fast {
            // The write ends are closed here, in the parent, when they drop.
            return Ok(Spawned {
                pid,
                pidfd: Some(pidfd),
                stdout: out_r,
                stderr: err_r,
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = force_posix_spawn;

    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_dup2(devnull.as_raw_fd(), 0)?;
    actions.add_dup2(out_w.as_raw_fd(), 1)?;
    actions.add_dup2(err_w.as_raw_fd(), 2)?;

    let mut attr = PosixSpawnAttr::init()?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )?;
    attr.set_pgroup(nix::unistd::Pid::from_raw(0))?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut default = SigSet::empty();
    default.add(NixSignal::SIGPIPE);
    attr.set_sigdefault(&default)?;

    let pid = posix_spawn(program, &actions, &attr, argv, envp)?;
    let pid = Pid::from_raw(pid.as_raw())
        .ok_or_else(|| io::Error::other("posix_spawn returned an invalid pid"))?;
    // The write ends are closed here, in the parent, when they drop.
    Ok(Spawned {
        pid,
        pidfd: None,
        stdout: out_r,
        stderr: err_r,
    })
}

/// Opens what spawns need while the process has few descriptors (called when a hook is built): the
/// null device and, on Linux, the first pair of low slots for the output pipes.
pub(crate) fn prepare() {
    #[cfg(target_os = "linux")]
    if let Ok(null) = null_device() {
        crate::clone_spawn::reserve(null.as_fd());
    }
    #[cfg(not(target_os = "linux"))]
    let _ = null_device();
}

/// The null device, opened (read-only, close-on-exec, above 2) once per process and given to
/// every child as its stdin; an open that fails is tried again at the next spawn.
fn null_device() -> io::Result<&'static OwnedFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd);
    }
    let fd = above_stdio(std::fs::File::open("/dev/null")?.into())?;
    // Another thread may have won the race; its descriptor is used and this one closed.
    Ok(NULL.get_or_init(|| fd))
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// How the exit of the child is awaited.
#[derive(Debug)]
enum Waiter {
    /// Linux >= 5.3: the pidfd becomes readable when the child exits; `waitid(P_PIDFD, WNOHANG)`
    /// then reaps it. No thread, no `SIGCHLD` handler.
    #[cfg(target_os = "linux")]
    PidFd(tokio::io::unix::AsyncFd<OwnedFd>),
    /// Elsewhere (or an old kernel): a blocking `waitpid` on tokio's blocking pool, which also
    /// reaps the child if the future is dropped (after the group was `SIGKILL`ed).
    Blocking(Option<tokio::task::JoinHandle<io::Result<Exit>>>),
}

/// Owns a running child: awaits its exit, and if dropped before the child was reaped (the future
/// was cancelled), sends `SIGKILL` to its whole process group and has it reaped, so neither an
/// orphaned group nor a zombie is left. Dropped while a terminated group is given its grace (the
/// leader already reaped, other members maybe not gone), it sends the group `SIGKILL` too.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    pid: Pid,
    waiter: Waiter,
    reaped: bool,
    /// The group was sent a signal other than `SIGKILL` and has not been seen gone since.
    terminating: bool,
}

impl ChildGuard {
    /// Takes charge of `pid`; `pidfd` is the one the spawn made, if any (one is opened otherwise).
    pub(crate) fn new(pid: Pid, pidfd: Option<OwnedFd>, force_blocking: bool) -> Self {
        let waiter = if force_blocking {
            Self::blocking(pid)
        } else {
            Self::pidfd_or_blocking(pid, pidfd)
        };
        ChildGuard {
            pid,
            waiter,
            reaped: false,
            terminating: false,
        }
    }

    #[cfg(target_os = "linux")]
    fn pidfd_or_blocking(pid: Pid, pidfd: Option<OwnedFd>) -> Waiter {
        use rustix::process::{PidfdFlags, pidfd_open};
        use tokio::io::Interest;
        use tokio::io::unix::AsyncFd;
        // `with_interest` is deprecated because an arbitrary `AsRawFd` may change or close its fd
        // while registered; an `OwnedFd` cannot, so this use is sound (and needs no `unsafe`).
        #[allow(deprecated)]
        let registered = match pidfd {
            Some(fd) => Ok(fd),
            None => pidfd_open(pid, PidfdFlags::empty()).map_err(io::Error::from),
        }
        .and_then(|fd| AsyncFd::with_interest(fd, Interest::READABLE));
        match registered {
            Ok(fd) => Waiter::PidFd(fd),
            Err(_) => Self::blocking(pid),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn pidfd_or_blocking(pid: Pid, _pidfd: Option<OwnedFd>) -> Waiter {
        Self::blocking(pid)
    }

    fn blocking(pid: Pid) -> Waiter {
        Waiter::Blocking(Some(tokio::task::spawn_blocking(move || {
            wait_blocking(pid)
        })))
    }

    /// Waits for the child to exit and reaps it. Cancel-safe. Once it returned `Ok`, the guard no
    /// longer touches the process group.
    pub(crate) async fn wait(&mut self) -> io::Result<Exit> {
        let exit = match &mut self.waiter {
            #[cfg(target_os = "linux")]
            Waiter::PidFd(fd) => loop {
                use rustix::process::{WaitId, WaitIdOptions, waitid};
                let mut ready = fd.readable().await?;
                match waitid(
                    WaitId::PidFd(fd.get_ref().as_fd()),
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
                ) {
                    Ok(Some(status)) => {
                        if let Some(code) = status.exit_status() {
                            break Exit::Code(code);
                        }
                        if let Some(sig) = status.terminating_signal() {
                            break Exit::Signal(sig);
                        }
                        ready.clear_ready();
                    }
                    Ok(None) => ready.clear_ready(),
                    Err(Errno::INTR) => {}
                    Err(e) => {
                        // ECHILD: someone else reaped it (SIGCHLD ignored, a stray waitpid(-1)).
                        self.reaped = e == Errno::CHILD;
                        return Err(e.into());
                    }
                }
            },
            Waiter::Blocking(handle) => {
                let Some(join) = handle.as_mut() else {
                    return Err(io::Error::other("the child was already waited for"));
                };
                let result = join.await.map_err(io::Error::other)?;
                handle.take();
                match result {
                    Ok(exit) => exit,
                    Err(e) => {
                        self.reaped = e.raw_os_error() == Some(Errno::CHILD.raw_os_error());
                        return Err(e);
                    }
                }
            }
        };
        self.reaped = true;
        Ok(exit)
    }

    /// Sends `signal` to the child's whole process group; a group that is already gone is fine.
    pub(crate) fn signal_group(&mut self, signal: Signal) {
        let _ = kill_process_group(self.pid, signal);
        self.terminating = signal != Signal::KILL;
    }

    /// Whether any process is left in the child's process group (zombies included).
    pub(crate) fn group_exists(&mut self) -> bool {
        let exists = !matches!(test_kill_process_group(self.pid), Err(Errno::SRCH));
        if !exists {
            self.terminating = false;
        }
        exists
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.reaped {
            // Cancelled during the grace after `SIGTERM`: what is left of the group goes now.
            if self.terminating {
                self.signal_group(Signal::KILL);
            }
            return;
        }
        // Cancelled while the program ran: kill the whole group, then make sure the leader is
        // reaped. Descendants are reparented and reaped by init (or the subreaper).
        self.signal_group(Signal::KILL);
        match &self.waiter {
            // The blocking waiter is still running on the blocking pool and reaps the child.
            Waiter::Blocking(Some(_)) => {}
            _ => reap_in_background(self.pid),
        }
    }
}

fn wait_blocking(pid: Pid) -> io::Result<Exit> {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(Exit::Code(code));
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(Exit::Signal(sig));
                }
            }
            Ok(None) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Hands `pid` to a process-wide reaper thread, started on first use, which blocks in `waitpid`
/// for each pid it is given. Used only when a running hook's future is dropped, after its group
/// was sent `SIGKILL`, so each wait is short. A thread (rather than a task) works even while the
/// tokio runtime is shutting down and dropping tasks.
fn reap_in_background(pid: Pid) {
    static REAPER: OnceLock<Option<mpsc::Sender<Pid>>> = OnceLock::new();
    let sender = REAPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Pid>();
        std::thread::Builder::new()
            .name("hook-exec-reaper".into())
            .spawn(move || {
                for pid in rx {
                    let _ = wait_blocking(pid);
                }
            })
            .ok()
            .map(|_| tx)
    });
    let sent = sender.as_ref().is_some_and(|tx| tx.send(pid).is_ok());
    if !sent {
        tracing::warn!(
            pid = pid.as_raw_nonzero().get(),
            "could not start the reaper thread; the cancelled hook may stay a zombie"
        );
    }
}
