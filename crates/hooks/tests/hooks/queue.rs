//! The bounded queue: refusals are errors, counted, and hand the event back.

use std::time::Duration;

use hooks::{Dispatcher, DispatcherOptions, FireErrorKind, Fired};

use crate::support::{TestHook, event, until_in_flight};

fn small() -> DispatcherOptions {
    DispatcherOptions::default()
        .with_queue_capacity(100)
        .with_max_in_flight(1)
}

/// A burst of 101 before the dispatcher task runs: 100 fit, the 101st is refused and counted.
#[tokio::test(start_paused = true)]
async fn queue_of_100_refuses_the_101st() {
    let hook = TestHook::new(Duration::from_secs(10));
    let dispatcher = Dispatcher::new(hook.clone(), small());
    for i in 0..100 {
        assert_eq!(
            dispatcher.fire(event(&format!("u{i}"))).unwrap(),
            Fired::Queued,
            "event {i}"
        );
    }
    let err = dispatcher.fire(event("u100")).unwrap_err();
    assert_eq!(err.kind(), FireErrorKind::QueueFull);
    assert_eq!(err.event().username(), "u100");
    assert!(
        err.to_string()
            .contains("queue is full (100 events waiting)"),
        "{err}"
    );
    let stats = dispatcher.stats();
    assert_eq!(
        (
            stats.accepted,
            stats.refused_queue_full,
            stats.refused(),
            stats.queued,
            stats.fired()
        ),
        (100, 1, 1, 100, 101),
        "{stats:?}"
    );
    assert_eq!(err.into_event().username(), "u100");

    let report = dispatcher.shutdown(Duration::ZERO).await;
    assert_eq!(
        (report.accepted, report.refused, report.abandoned),
        (100, 1, 100),
        "{report:?}"
    );
}

/// The queue holds waiting events only: with one hook running, 100 more wait and the next is
/// refused; once a slot frees, there is room again.
#[tokio::test(start_paused = true)]
async fn queue_capacity_counts_waiting_events_only() {
    let hook = TestHook::new(Duration::from_secs(10));
    let dispatcher = Dispatcher::new(hook.clone(), small());
    dispatcher.fire(event("first")).unwrap();
    until_in_flight(&dispatcher, 1).await;
    assert_eq!(dispatcher.stats().queued, 0);
    for i in 0..100 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    assert_eq!(
        dispatcher.fire(event("over")).unwrap_err().kind(),
        FireErrorKind::QueueFull
    );
    assert_eq!(dispatcher.stats().queued, 100);

    // The first hook ends after 10 s: the dispatcher takes the next one, freeing a queue slot.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(crate::support::yield_until(1_000, || dispatcher.stats().queued == 99).await);
    assert_eq!(dispatcher.fire(event("room")).unwrap(), Fired::Queued);
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.delivered, stats.refused_queue_full, stats.accepted),
        (1, 1, 102),
        "{stats:?}"
    );
    drop(dispatcher);
}
