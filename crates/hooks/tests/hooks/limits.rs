//! The in-flight limit holds, retries and backoff waits included.

use std::time::Duration;

use hooks::{Dispatcher, DispatcherOptions};

use crate::support::{TestHook, event};

/// 50 events, 5 slots, each hook making 3 "attempts" of 1 s: never more than 5 run at once, and the drain takes 10 waves of 3 s.
#[tokio::test(start_paused = true)]
async fn in_flight_limit_is_never_exceeded_across_attempts() {
    let hook = TestHook::with_attempts(Duration::from_secs(1), 3);
    let dispatcher = Dispatcher::new(
        hook.clone(),
        DispatcherOptions::default().with_max_in_flight(5),
    );
    for i in 0..50 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    let began = tokio::time::Instant::now();
    let report = dispatcher.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(report.delivered, 50, "{report:?}");
    assert_eq!(hook.max_concurrency(), 5);
    assert_eq!(began.elapsed(), Duration::from_secs(30));
    // The hooks of each wave started together, 3 s after the previous wave.
    let mut starts: Vec<_> = hook.seen().iter().map(|s| s.started_at.as_secs()).collect();
    starts.sort();
    let expected: Vec<u64> = (0..10).flat_map(|w| [w * 3; 5]).collect();
    assert_eq!(starts, expected);
}

/// The same in real time on a multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_holds_on_a_multi_thread_runtime() {
    let hook = TestHook::new(Duration::from_millis(5));
    let dispatcher = Dispatcher::new(
        hook.clone(),
        DispatcherOptions::default().with_max_in_flight(3),
    );
    for i in 0..60 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    let report = dispatcher.shutdown(Duration::from_secs(60)).await;
    assert_eq!(report.delivered, 60, "{report:?}");
    assert!(
        hook.max_concurrency() <= 3 && hook.max_concurrency() >= 1,
        "{}",
        hook.max_concurrency()
    );
}

/// The largest limits a configuration can ask for start a dispatcher (they used to make
/// `Dispatcher::new` panic inside tokio).
#[tokio::test(start_paused = true)]
async fn huge_limits_from_the_configuration_do_not_panic() {
    let mut section = hooks::HooksSection::default();
    section.queue_capacity = usize::MAX;
    section.max_in_flight = usize::MAX;
    assert!(DispatcherOptions::from_config(&section).is_err());
    let options = DispatcherOptions::default()
        .with_queue_capacity(usize::MAX)
        .with_max_in_flight(usize::MAX);
    let hook = TestHook::new(Duration::from_millis(1));
    let dispatcher = Dispatcher::new(hook.clone(), options);
    dispatcher.fire(event("u")).unwrap();
    let report = dispatcher.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.delivered, 1, "{report:?}");
}
