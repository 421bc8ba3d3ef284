//! `shutdown(deadline)`: stops intake, drains up to the deadline without polling lag, cancels
//! the rest and reports; calling it twice is harmless; dropping without it cancels.

use std::time::Duration;

use hooks::{Dispatcher, DispatcherOptions, ErrorKind, FireErrorKind};
use tokio::time::Instant;

use crate::support::{
    FAIL, TestHook, count_errors, event, recording, until_in_flight, yield_until,
};

fn four_slots() -> DispatcherOptions {
    DispatcherOptions::default().with_max_in_flight(4)
}

/// Hooks that take 10 s, a 2 s deadline: shutdown returns at the deadline (virtual time, exact)
/// and reports the 4 running and 6 queued events abandoned; the running futures were dropped.
#[tokio::test(start_paused = true)]
async fn deadline_cancels_hooks_still_running() {
    let hook = TestHook::new(Duration::from_secs(10));
    let (options, outcomes) = recording(four_slots());
    let dispatcher = Dispatcher::new(hook.clone(), options);
    for i in 0..10 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    until_in_flight(&dispatcher, 4).await;

    let began = Instant::now();
    let report = dispatcher.shutdown(Duration::from_secs(2)).await;
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2_100),
        "{took:?}"
    );
    assert!(report.elapsed >= Duration::from_secs(2), "{report:?}");
    assert_eq!((report.delivered, report.failed), (0, 0), "{report:?}");
    assert_eq!(
        (
            report.abandoned,
            report.abandoned_running,
            report.abandoned_queued
        ),
        (10, 4, 6),
        "{report:?}"
    );
    assert!(!report.is_complete());
    // The hook futures were dropped (the exec backend kills the group then), not left running.
    assert_eq!(
        (hook.cancelled(), hook.finished(), hook.started()),
        (4, 0, 4)
    );
    assert_eq!(count_errors(&outcomes, ErrorKind::Cancelled), 10);
    let stats = dispatcher.stats();
    assert_eq!((stats.in_flight, stats.queued), (0, 0), "{stats:?}");
}

/// A generous deadline delivers everything, and shutdown returns when the last hook ends (3
/// waves of 10 s = 30 s), not at a polling tick.
#[tokio::test(start_paused = true)]
async fn generous_deadline_delivers_everything_without_polling_lag() {
    let hook = TestHook::new(Duration::from_secs(10));
    let (options, outcomes) = recording(four_slots());
    let dispatcher = Dispatcher::new(hook.clone(), options);
    for i in 0..10 {
        let name = if i % 5 == 0 {
            format!("{FAIL}{i}")
        } else {
            format!("u{i}")
        };
        dispatcher.fire(event(&name)).unwrap();
    }
    let began = Instant::now();
    let report = dispatcher.shutdown(Duration::from_secs(600)).await;
    let took = began.elapsed();
    assert_eq!(
        (report.delivered, report.failed, report.abandoned),
        (8, 2, 0),
        "{report:?}"
    );
    assert!(report.is_complete());
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_millis(30_100),
        "{took:?}"
    );
    assert_eq!(hook.finished(), 10);
    assert_eq!(outcomes.lock().unwrap().len(), 10);
    assert_eq!(count_errors(&outcomes, ErrorKind::ExitStatus), 2);
}

/// Intake stops at once: events fired while the dispatcher drains are refused and counted.
#[tokio::test(start_paused = true)]
async fn fire_during_and_after_shutdown_is_refused_and_counted() {
    let hook = TestHook::new(Duration::from_secs(1));
    let dispatcher = Dispatcher::new(hook.clone(), four_slots());
    dispatcher.fire(event("before")).unwrap();
    let draining = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move { dispatcher.shutdown(Duration::from_secs(60)).await })
    };
    assert!(yield_until(1_000, || dispatcher.is_shutting_down()).await);
    let err = dispatcher.fire(event("during")).unwrap_err();
    assert_eq!(err.kind(), FireErrorKind::ShuttingDown);
    let report = draining.await.unwrap();
    assert_eq!((report.delivered, report.refused), (1, 1), "{report:?}");

    let err = dispatcher.fire(event("after")).unwrap_err();
    assert_eq!(err.kind(), FireErrorKind::ShuttingDown);
    assert!(err.to_string().contains("shutting down"), "{err}");
    let stats = dispatcher.stats();
    assert_eq!(
        (stats.refused_shutting_down, stats.accepted),
        (2, 1),
        "{stats:?}"
    );
    assert_eq!(hook.started(), 1);
}

/// A second call (concurrent or later) waits for the first and returns the same report; the
/// refusal count is brought up to date.
#[tokio::test(start_paused = true)]
async fn shutdown_twice_is_harmless() {
    let hook = TestHook::new(Duration::from_secs(5));
    let dispatcher = Dispatcher::new(hook.clone(), four_slots());
    for i in 0..6 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    let (a, b) = tokio::join!(
        dispatcher.shutdown(Duration::from_secs(7)),
        dispatcher.shutdown(Duration::from_secs(1)),
    );
    // The first call's deadline (7 s) governs: the first wave is delivered, the second cancelled.
    assert_eq!(a, b);
    assert_eq!(
        (a.delivered, a.abandoned_running, a.abandoned_queued),
        (4, 2, 0),
        "{a:?}"
    );
    let _ = dispatcher.fire(event("late"));
    let c = dispatcher.shutdown(Duration::from_secs(100)).await;
    assert_eq!(
        (c.delivered, c.abandoned, c.elapsed),
        (a.delivered, a.abandoned, a.elapsed)
    );
    assert_eq!(c.refused, 1);
}

/// Nothing queued or running: shutdown returns at once, whatever the deadline.
#[tokio::test(start_paused = true)]
async fn idle_shutdown_returns_at_once() {
    let dispatcher = Dispatcher::new(
        TestHook::new(Duration::from_secs(1)),
        DispatcherOptions::default(),
    );
    let began = Instant::now();
    let report = dispatcher.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(began.elapsed(), Duration::ZERO);
    assert_eq!(report.accepted, 0);
    assert!(report.is_complete());
}

/// Dropping the last handle without shutdown cancels the running hooks (their futures are
/// dropped) and abandons the queue; the callback hears about each.
#[tokio::test(start_paused = true)]
async fn drop_without_shutdown_cancels_everything() {
    let hook = TestHook::new(Duration::from_secs(10));
    let (options, outcomes) = recording(four_slots());
    let dispatcher = Dispatcher::new(hook.clone(), options);
    for i in 0..6 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    until_in_flight(&dispatcher, 4).await;
    let clone = dispatcher.clone();
    drop(dispatcher);
    // A clone keeps it alive.
    tokio::task::yield_now().await;
    assert_eq!(hook.cancelled(), 0);
    drop(clone);
    assert!(
        yield_until(1_000, || hook.cancelled() == 4).await,
        "cancelled {}",
        hook.cancelled()
    );
    assert!(yield_until(1_000, || outcomes.lock().unwrap().len() == 6).await);
    assert_eq!(count_errors(&outcomes, ErrorKind::Cancelled), 6);
    assert_eq!(hook.finished(), 0);
}

/// A hook task the dispatcher has spawned but the runtime has not polled yet is still an
/// accepted event: cancelling it (here by dropping the dispatcher; at a shutdown deadline the
/// same) reports it to the callback as cancelled, like a running one. Multi-thread runtime: the
/// scheduler then polls the cancelled dispatcher task before hook tasks spawned just before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn cancelling_a_hook_task_before_it_first_ran_still_reports_it() {
    const N: usize = 1_000;
    let hook = TestHook::new(Duration::from_secs(10));
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(N));
    let dispatcher = Dispatcher::new(hook.clone(), options);
    for i in 0..N {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    // Drop the dispatcher while it is spawning hook tasks: on a multi-thread runtime some of
    // them have not been polled yet when the dispatcher task (and its task set) is cancelled.
    let end = Instant::now() + Duration::from_secs(10);
    while dispatcher.stats().in_flight == 0 {
        assert!(Instant::now() < end, "{:?}", dispatcher.stats());
        tokio::task::yield_now().await;
    }
    drop(dispatcher);
    // The cancellation is under way; give a loaded machine time to finish it.
    let end = Instant::now() + Duration::from_secs(10);
    let reported = loop {
        let reported = outcomes.lock().unwrap().len();
        if reported == N || Instant::now() >= end {
            break reported;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        reported,
        N,
        "accepted events not reported (started {}, cancelled {})",
        hook.started(),
        hook.cancelled()
    );
    assert_eq!(count_errors(&outcomes, ErrorKind::Cancelled), N);
    assert_eq!(hook.finished(), 0);
}
