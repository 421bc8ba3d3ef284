//! Test helper for `e2e::spool_kill` (not a tool): a "server" that fires events durably through
//! a Dispatcher with a spool, printing each event's username once `fire_durable` resolved, so
//! that a test can SIGKILL it at any point and check that no printed event is lost.
//!
//! ```text
//! spool-crash-helper fire URL SPOOL_DIR TAG COUNT   # fire COUNT events named TAG-0, TAG-1, ...
//! spool-crash-helper drain URL SPOOL_DIR            # deliver what the spool holds, then exit 0
//! ```

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, HookConfig, Protocol};
use tokio::sync::Semaphore;

/// `fire_durable` calls awaited at once.
const WINDOW: usize = 64;
/// The dispatcher's in-flight limit (the duplicate bound of the test uses it).
pub const MAX_IN_FLIGHT: usize = 8;

fn config(url: &str, dir: &str) -> HookConfig {
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook = url.to_owned();
    c.http.retry_max = 0;
    c.http.timeout = 5.0;
    c.hooks.max_in_flight = MAX_IN_FLIGHT;
    c.hooks.spool.dir = dir.to_owned();
    c.hooks.spool.min_free_bytes = 0;
    c.hooks.spool.redeliver_min = 0.05;
    c.hooks.spool.redeliver_max = 0.2;
    c
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: spool-crash-helper (fire URL DIR TAG COUNT | drain URL DIR)";
    let (mode, url, dir) = match args.get(1..4) {
        Some([mode, url, dir]) => (mode.as_str(), url.as_str(), dir.as_str()),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = config(url, dir);
    runtime.block_on(async {
        let hook = hooks::build_hook(&config).expect("hook").expect("a hook");
        let options = DispatcherOptions::from_config(&config.hooks).expect("options");
        let d = Dispatcher::try_new(hook, options).unwrap_or_else(|e| {
            eprintln!("spool-crash-helper: {e}");
            std::process::exit(2);
        });
        match mode {
            "fire" => {
                let tag = args.get(4).expect(usage).clone();
                let count: usize = args.get(5).and_then(|n| n.parse().ok()).expect(usage);
                fire(&d, &tag, count).await;
            }
            "drain" => drain(&d).await,
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
        d.shutdown(Duration::from_secs(10)).await;
    });
}

async fn fire(d: &Dispatcher, tag: &str, count: usize) {
    let window = Arc::new(Semaphore::new(WINDOW));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let permit = Arc::clone(&window).acquire_owned().await.expect("window");
        let d = d.clone();
        let name = format!("{tag}-{i}");
        tasks.spawn(async move {
            let event =
                DisconnectEvent::new("198.51.100.7", Protocol::Sftp, name.clone(), Duration::ZERO);
            if d.fire_durable(event).await.is_ok() {
                // Printed (and flushed: stdout is line-buffered) only once durable.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{name}");
                let _ = out.flush();
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn drain(d: &Dispatcher) {
    let spool = d.spool().expect("a spool");
    loop {
        let s = spool.status().expect("status");
        let stats = d.stats();
        if s.pending + s.deferred == 0 && stats.in_flight == 0 && stats.queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
