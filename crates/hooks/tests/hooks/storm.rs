//! `fire` never waits for the hook: 10,000 events at a hook that takes 1 s.

use std::time::{Duration, Instant};

use hooks::{Dispatcher, DispatcherOptions, Fired};

use crate::support::{TestHook, event};

/// Generous: a `fire` call is a few atomics and a `try_send`; the hook takes 1 s.
const MAX_FIRE_LATENCY: Duration = Duration::from_millis(50);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// A server-like loop on the runtime the hooks run on (paused time, so the 67 waves of 1 s hooks
/// take no wall time): every fire returns at once and all 10,000 are accepted with the default
/// queue (10,000) and in-flight limit (150).
#[tokio::test(start_paused = true)]
async fn ten_thousand_fires_at_a_one_second_hook_never_wait() {
    let hook = TestHook::new(Duration::from_secs(1));
    let dispatcher = Dispatcher::new(hook.clone(), DispatcherOptions::default());
    assert_eq!(
        (dispatcher.queue_capacity(), dispatcher.max_in_flight()),
        (10_000, 150)
    );

    let mut latencies = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let ev = event(&format!("user{i}"));
        let t = Instant::now();
        let fired = dispatcher.fire(ev);
        latencies.push(t.elapsed());
        assert_eq!(fired.unwrap(), Fired::Queued, "event {i}");
        if i % 100 == 99 {
            // Let the dispatcher and the hooks run between "connections", as a server would.
            tokio::task::yield_now().await;
        }
    }
    latencies.sort();
    let (p50, max) = (percentile(&latencies, 0.5), *latencies.last().unwrap());
    assert!(
        max < MAX_FIRE_LATENCY,
        "slowest fire took {max:?} (p50 {p50:?})"
    );
    let stats = dispatcher.stats();
    assert_eq!((stats.accepted, stats.refused()), (10_000, 0), "{stats:?}");
    assert!(stats.in_flight <= 150, "{stats:?}");

    let began = tokio::time::Instant::now();
    let report = dispatcher.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(
        (report.delivered, report.failed, report.abandoned),
        (10_000, 0, 0),
        "{report:?}"
    );
    assert_eq!(hook.max_concurrency(), 150);
    // 10,000 / 150 = 67 waves of 1 s: the limit held, and the drain ended with the last wave.
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(66) && took <= Duration::from_secs(68),
        "{took:?}"
    );
}

/// The same storm from 8 concurrent "connection" tasks on a multi-thread runtime in real time,
/// while the dispatcher starts 1 s hooks: no fire call waits. Shutdown with no deadline then
/// accounts for every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_from_many_tasks_on_a_multi_thread_runtime() {
    let hook = TestHook::new(Duration::from_secs(1));
    let dispatcher = Dispatcher::new(hook.clone(), DispatcherOptions::default());
    let mut tasks = Vec::new();
    for t in 0..8 {
        let dispatcher = dispatcher.clone();
        tasks.push(tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            for i in 0..1_250 {
                let ev = event(&format!("t{t}-{i}"));
                let started = Instant::now();
                let fired = dispatcher.fire(ev);
                worst = worst.max(started.elapsed());
                assert_eq!(fired.unwrap(), Fired::Queued);
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            worst
        }));
    }
    let mut worst = Duration::ZERO;
    for task in tasks {
        worst = worst.max(task.await.unwrap());
    }
    assert!(worst < MAX_FIRE_LATENCY, "slowest fire took {worst:?}");
    assert_eq!(dispatcher.stats().accepted, 10_000);

    let report = dispatcher.shutdown(Duration::ZERO).await;
    assert_eq!(report.accepted, 10_000);
    assert_eq!(
        report.delivered + report.failed + report.abandoned,
        10_000,
        "{report:?}"
    );
    assert!(hook.max_concurrency() <= 150, "{}", hook.max_concurrency());
    assert_eq!(hook.cancelled() as u64, report.abandoned_running);
    let stats = dispatcher.stats();
    assert_eq!((stats.queued, stats.in_flight), (0, 0), "{stats:?}");
}
