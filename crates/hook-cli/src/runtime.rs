//! Starting the tokio runtime without ever panicking or hanging when the process cannot create
//! threads (`RLIMIT_NPROC` reached, the system's thread limit, no memory for a stack: `EAGAIN`).
//!
//! tokio's `Builder::build` panics when a worker thread cannot be spawned, after some workers
//! may have started; unwinding then waits forever for those workers in the blocking pool's drop.
//! So a panic during start-up is turned into a clear message and `exit(2)` right in the panic
//! hook, before any unwinding. The blocking pool is also given one thread at start-up, kept for
//! the whole run: `spawn_blocking` (DNS resolution, file reads) panics only when the pool has no
//! thread at all, so once it has one, a later `EAGAIN` only queues work.

use std::error::Error;
use std::panic::PanicHookInfo;
use std::time::Duration;

use tokio::runtime::Runtime;

/// What to try when threads cannot be created.
const HINT: &str = "the process or its user may have reached RLIMIT_NPROC (`ulimit -u`), the \
                    system's thread limit (kernel.threads-max) or its memory";

/// The runtime `fire` runs on: one thread for HTTP storms, one worker per core plus one for
/// programs (see `fire.rs`), plus one blocking-pool thread started now and kept.
pub(crate) fn start(single_thread: bool) -> Result<Runtime, Box<dyn Error>> {
    // The common case, without a panic at all: not even one more thread.
    std::thread::Builder::new()
        .name("hookctl-probe".into())
        .spawn(|| {})
        .and_then(|probe| {
            probe
                .join()
                .map_err(|_| std::io::Error::other("the probe thread panicked"))
        })
        .map_err(|e| format!("cannot start the runtime: cannot create a thread: {e} ({HINT})"))?;

    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(start_up_panic));
    let runtime = build(single_thread);
    let runtime = runtime.and_then(|rt| {
        // One blocking thread, kept for the whole run (see the module docs).
        rt.block_on(async { tokio::task::spawn_blocking(|| {}).await })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(rt)
    });
    std::panic::set_hook(previous);
    runtime.map_err(|e| format!("cannot start the runtime: {e} ({HINT})").into())
}

fn build(single_thread: bool) -> std::io::Result<Runtime> {
    // An HTTP storm is bound by the event loop, not by CPU parallelism (the endpoint usually
    // shares the machine): one thread does it with no cross-thread wake-ups, measurably faster
    // (docs/benchmarks.md). posix_spawn blocks the calling thread until the child has exec'd
    // (its dynamic loader runs meanwhile), so programs get one worker per core plus one: while a
    // worker is blocked in a spawn, the others keep every core busy (about 10% more programs/s
    // than one worker per core on 2 cores; docs/benchmarks.md).
    let mut builder = if single_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(cores + 1);
        builder
    };
    builder
        .enable_all()
        // Idle blocking threads are kept: the pool never falls back to having none.
        .thread_keep_alive(Duration::from_secs(365 * 86_400))
        .build()
}

/// The panic hook while the runtime starts: only tokio runs then, and its only panics are
/// threads it could not create. Exits at once: unwinding would hang (see the module docs).
fn start_up_panic(info: &PanicHookInfo<'_>) {
    let payload = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown failure".to_owned());
    eprintln!("hookctl: cannot start the runtime's threads: {payload} ({HINT})");
    std::process::exit(2);
}
