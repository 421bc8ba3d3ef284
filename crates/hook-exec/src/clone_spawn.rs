//! Linux fast path for starting a hook program: `clone(CLONE_VM | CLONE_VFORK | CLONE_FILES |
//! CLONE_PIDFD)` with a child that gives itself a descriptor table holding only what the
//! program gets (stdin, stdout, stderr), then `execve`s.
//!
//! # Why not `posix_spawn` here
//!
//! glibc's `posix_spawn` (and `fork`) copies the parent's whole descriptor table into the child,
//! and `execve` then closes every close-on-exec descriptor one by one. A server has a descriptor
//! per client connection, and a hook storm has three per running hook (two output pipes and a
//! pidfd): with 150 hooks in flight that is about 450 descriptors copied and closed per spawn,
//! measured at about 8% of a `/bin/true` storm's CPU (docs/benchmarks.md), and it grows with every
//! connected client. Here the child shares the parent's table (`CLONE_FILES`, so nothing is
//! copied by `clone`) and then calls `close_range(k, ~0, CLOSE_RANGE_UNSHARE)`: the kernel gives
//! it a private table holding only descriptors `0..k`, where `k - 1` is the highest of the three
//! descriptors the program gets. Those three live in low, reserved slots ([`Slots`]), so `k` stays
//! small however many descriptors the process has. The child then `dup2`s them onto 0, 1 and 2 and
//! closes everything from 3 up, so the program inherits nothing else: not the server's sockets,
//! not a descriptor someone opened without close-on-exec (Go's `os/exec`, which SFTPGo uses, also
//! passes only 0, 1 and 2).
//!
//! The pidfd comes from `CLONE_PIDFD` (no `pidfd_open` afterwards), and the child's stack is one
//! mapping per thread, reused (glibc maps and unmaps one per `posix_spawn`).
//!
//! # What the child does, and why it is sound
//!
//! Like glibc's `posix_spawn`, the child runs in the parent's memory (`CLONE_VM`) while the
//! calling thread is suspended (`CLONE_VFORK`) until the child has called `execve` or exited. It
//! therefore only makes system calls through thin libc wrappers, touches no lock, allocates
//! nothing and never unwinds; everything it reads (paths, argv, envp, descriptors) was prepared by
//! the parent before `clone` and stays alive because the parent is suspended. All signals are
//! blocked in the calling thread around `clone`, so no handler of the parent can run on the
//! child's stack; the child resets every caught signal (and `SIGPIPE`) to its default action, then
//! unblocks signals right before `execve` (the same sequence as glibc). The child's own signal
//! handlers are its copy (no `CLONE_SIGHAND`), so the reset does not touch the parent's.
//!
//! # When it is not used
//!
//! Kernels before 5.9 (no `close_range` with `CLOSE_RANGE_UNSHARE`), a `clone` refused with
//! `EINVAL`, `ENOSYS` or `EPERM` (a seccomp filter), and a process running under Valgrind (which
//! supports no other `clone` than fork's, vfork's and threads'): [`spawn`] returns `Ok(None)` from
//! then on and the caller uses `posix_spawn`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::io::{DupFlags, dup3, fcntl_dupfd_cloexec};
use rustix::process::Pid;

/// Size of the child's stack (its frames are a few hundred bytes; the dynamic loader's lazy
/// binding of a libc symbol may add a few KiB), below one guard page.
const STACK_SIZE: usize = 64 * 1024;

/// Highest signal number on Linux (`_NSIG - 1`).
const MAX_SIGNAL: c_int = 64;

const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const UNAVAILABLE: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether the fast path can be used: `close_range` exists (Linux 5.9, which also has
/// `CLOSE_RANGE_UNSHARE` and `CLONE_PIDFD`) and no `clone` was refused so far.
fn available() -> bool {
    match STATE.load(Ordering::Relaxed) {
        AVAILABLE => true,
        UNAVAILABLE => false,
        _ => {
            // Valgrind cannot run a `clone` other than fork's, vfork's and threads' (it stops the
            // program): under it (its preload library is in LD_PRELOAD) use `posix_spawn`.
            let under_valgrind = std::env::var_os("LD_PRELOAD")
                .is_some_and(|p| p.as_encoded_bytes().windows(9).any(|w| w == b"vgpreload"));
            if under_valgrind {
                STATE.store(UNAVAILABLE, Ordering::Relaxed);
                return false;
            }
            // An empty range at the very top closes nothing; ENOSYS means no close_range at all.
            // SAFETY: close_range with flags 0 and a range holding no descriptor has no effect.
            let ok =
                unsafe { libc::syscall(libc::SYS_close_range, c_uint::MAX, c_uint::MAX, 0_u32) }
                    == 0;
            STATE.store(if ok { AVAILABLE } else { UNAVAILABLE }, Ordering::Relaxed);
            ok
        }
    }
}

/// Low descriptor slots that hold a program's stdout and stderr write ends while it is spawned.
///
/// Each pair is two duplicates of the null device taken when few descriptors existed (the first
/// is reserved when a hook is built, usually at server start). A spawn takes a pair, `dup3`s the
/// pipes' write ends into it, spawns, then points the slots back at the null device (which
/// releases the write ends, so the program's output reaches EOF when it exits) and returns the
/// pair. There are as many pairs as spawns ever ran at the same time (about one per runtime
/// thread).
struct Slots {
    free: Mutex<Vec<[OwnedFd; 2]>>,
}

static SLOTS: Slots = Slots {
    free: Mutex::new(Vec::new()),
};

impl Slots {
    fn take(&self, null: BorrowedFd<'_>) -> io::Result<[OwnedFd; 2]> {
        let reused = self.free.lock().map(|mut v| v.pop()).unwrap_or(None);
        match reused {
            Some(pair) => Ok(pair),
            None => Ok([fcntl_dupfd_cloexec(null, 3)?, fcntl_dupfd_cloexec(null, 3)?]),
        }
    }

    /// Points both slots back at the null device and keeps the pair; a pair that cannot be
    /// restored is closed instead (closing releases the write ends just as well).
    fn give_back(&self, mut pair: [OwnedFd; 2], null: BorrowedFd<'_>) {
        for slot in &mut pair {
            if dup3(null, slot, DupFlags::CLOEXEC).is_err() {
                return;
            }
        }
        if let Ok(mut free) = self.free.lock() {
            free.push(pair);
        }
    }
}

/// Reserves one pair of slots now (called when a hook is built, while descriptors are few).
pub(crate) fn reserve(null: BorrowedFd<'_>) {
    if !available() {
        return;
    }
    if let Ok(pair) = SLOTS.take(null) {
        SLOTS.give_back(pair, null);
    }
}

/// The child's stack: an anonymous mapping with a guard page at its low end, one per thread,
/// unmapped when the thread ends.
struct Stack {
    base: *mut c_void,
    len: usize,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        let page = 4096;
        let len = STACK_SIZE + page;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first page of the mapping made above becomes the guard page.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, used by nothing.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(Stack { base, len })
    }

    /// The initial stack pointer (stacks grow down on every Linux target Rust supports here).
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which is 16-byte aligned (page aligned).
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours; no child runs on it (the thread that used it is ending).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

thread_local! {
    static STACK: std::cell::OnceCell<Option<Stack>> = const { std::cell::OnceCell::new() };
}

/// What the child reads (prepared by the parent) and writes (the errno of the step that failed).
#[repr(C)]
struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// stdin, stdout and stderr for the program; all above 2.
    stdio: [c_int; 3],
    /// The private table keeps descriptors below this (the highest of `stdio` plus one).
    keep_below: c_uint,
    /// 0, or the errno of the failed step (then the child has exited with 127).
    error: c_int,
}

/// Starts `program` as `process::spawn` does (argv and envp exactly as given, stdin/stdout/stderr
/// from `stdio`, a new process group led by the child, `SIGPIPE` at its default action and an
/// empty signal mask), through the fast path. Returns the pid and its pidfd, or `Ok(None)` when
/// the fast path is not available (the caller then uses `posix_spawn`).
pub(crate) fn spawn(
    program: &CStr,
    argv: &[CString],
    envp: &[&CStr],
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
) -> io::Result<Option<(Pid, OwnedFd)>> {
    if !available() {
        return Ok(None);
    }
    let mut slots = SLOTS.take(stdin)?;
    let result = (|| {
        dup3(stdout, &mut slots[0], DupFlags::CLOEXEC)?;
        dup3(stderr, &mut slots[1], DupFlags::CLOEXEC)?;
        spawn_with(
            [stdin, slots[0].as_fd(), slots[1].as_fd()],
            program,
            argv,
            envp,
        )
    })();
    SLOTS.give_back(slots, stdin);
    result
}

fn spawn_with(
    stdio: [BorrowedFd<'_>; 3],
    program: &CStr,
    argv: &[CString],
    envp: &[&CStr],
) -> io::Result<Option<(Pid, OwnedFd)>> {
    let argv: Vec<*const c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain([ptr::null()])
        .collect();
    let envp: Vec<*const c_char> = envp
        .iter()
        .map(|e| e.as_ptr())
        .chain([ptr::null()])
        .collect();
    let stdio = stdio.map(|fd| fd.as_raw_fd());
    if stdio.iter().any(|&fd| fd <= 2) {
        return Err(io::Error::other(
            "internal: a descriptor for the child is below 3",
        ));
    }
    let mut args = ChildArgs {
        path: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        stdio,
        keep_below: stdio.iter().copied().max().unwrap_or(2) as c_uint + 1,
        error: 0,
    };

    // A thread whose locals are being destroyed (or with no stack) uses `posix_spawn` instead.
    let spawned = STACK.try_with(|cell| {
        let Some(stack) = cell.get_or_init(|| Stack::new().ok()) else {
            return Ok(None);
        };
        let mut pidfd: c_int = -1;
        let flags = libc::CLONE_VM
            | libc::CLONE_VFORK
            | libc::CLONE_FILES
            | libc::CLONE_PIDFD
            | libc::SIGCHLD;

        // SAFETY: sigset_t is plain data; sigfillset initialises it.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to local sets; blocks every signal in this thread only.
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        // SAFETY: `child` only makes async-signal-safe system calls on `stack` (unused by anyone
        // else: this thread is suspended until the child execs or exits, CLONE_VFORK), and reads
        // `args`, `argv` and `envp`, which outlive the call. `pidfd` receives the pidfd
        // (CLONE_PIDFD uses the parent_tid argument).
        let pid = unsafe {
            libc::clone(
                child,
                stack.top(),
                flags,
                (&raw mut args).cast(),
                &raw mut pidfd,
            )
        };
        let clone_error = io::Error::last_os_error();
        // SAFETY: restores this thread's mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };

        if pid < 0 {
            return match clone_error.raw_os_error() {
                Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) => {
                    STATE.store(UNAVAILABLE, Ordering::Relaxed);
                    Ok(None)
                }
                _ => Err(clone_error),
            };
        }
        // SAFETY: the kernel stored a new descriptor that nothing else owns (CLONE_PIDFD).
        let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
        // SAFETY: the child has exec'd or exited (CLONE_VFORK), so it no longer writes `args`.
        let error = unsafe { ptr::read_volatile(&raw const args.error) };
        let pid = Pid::from_raw(pid);
        match (pid, pidfd) {
            (Some(pid), Some(pidfd)) if error == 0 => Ok(Some((pid, pidfd))),
            (pid, _) => {
                // The child failed before its program ran and exited with 127, or (no pidfd,
                // which CLONE_PIDFD never leaves out) the program runs unsupervised: kill its
                // group and reap it.
                if let Some(pid) = pid {
                    if error == 0 {
                        let _ =
                            rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    }
                    let _ =
                        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
                }
                if error != 0 {
                    Err(io::Error::from_raw_os_error(error))
                } else {
                    Err(io::Error::other("clone returned no pid or pidfd"))
                }
            }
        }
    });
    spawned.unwrap_or(Ok(None))
}

/// The child: only async-signal-safe system calls, no allocation, no unwinding.
extern "C" fn child(arg: *mut c_void) -> c_int {
    let args = arg.cast::<ChildArgs>();
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent is suspended.
    let error = unsafe { child_steps(&*args) };
    // SAFETY: as above; the parent reads it after the child exits.
    unsafe {
        ptr::write_volatile(&raw mut (*args).error, error);
        libc::_exit(127)
    }
}

/// Returns only on failure, with the errno of the failed step.
///
/// # Safety
///
/// Must run in the child of `spawn_with`'s `clone`, with `args` filled in by it.
unsafe fn child_steps(args: &ChildArgs) -> c_int {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    // SAFETY (whole body): thin system-call wrappers on valid pointers and descriptors.
    unsafe {
        // Signal dispositions: caught signals (and SIGPIPE, which the Rust runtime ignores) go
        // back to their default before signals are unblocked.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=MAX_SIGNAL {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut current: libc::sigaction = std::mem::zeroed();
            // glibc's own signals (32, 33) are refused here; they only target its threads.
            if libc::sigaction(sig, ptr::null(), &mut current) != 0 {
                continue;
            }
            let caught =
                current.sa_sigaction != libc::SIG_DFL && current.sa_sigaction != libc::SIG_IGN;
            if (caught || sig == libc::SIGPIPE)
                && libc::sigaction(sig, &default, ptr::null_mut()) != 0
            {
                return errno();
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return errno();
        }
        // A private table holding only descriptors below `keep_below`.
        if libc::syscall(
            libc::SYS_close_range,
            args.keep_below,
            c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ) != 0
        {
            return errno();
        }
        for (target, &fd) in args.stdio.iter().enumerate() {
            if libc::dup2(fd, target as c_int) < 0 {
                return errno();
            }
        }
        if libc::syscall(libc::SYS_close_range, 3_u32, c_uint::MAX, 0_u32) != 0 {
            return errno();
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut()) != 0 {
            return errno();
        }
        libc::execve(args.path, args.argv, args.envp);
        errno()
    }
}
