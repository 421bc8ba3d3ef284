//! The outcome callback: exactly once per accepted event, with the delivery or the error; a
//! panicking callback changes nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use hooks::{Backend, Dispatcher, DispatcherOptions, ErrorKind};

use crate::support::{FAIL, TestHook, event, recording, until_in_flight};

#[tokio::test(start_paused = true)]
async fn callback_sees_every_accepted_event_once() {
    let hook = TestHook::new(Duration::from_secs(1));
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(2));
    let dispatcher = Dispatcher::new(hook.clone(), options);
    for name in ["ok1", "fail1", "ok2", "fail2", "ok3", "ok4"] {
        dispatcher.fire(event(name)).unwrap();
    }
    // Two waves of 1 s complete, the third is cancelled while running.
    let report = dispatcher.shutdown(Duration::from_millis(2_500)).await;
    assert_eq!(
        (report.delivered, report.failed, report.abandoned_running),
        (2, 2, 2),
        "{report:?}"
    );

    let mut got: Vec<(String, Result<Backend, ErrorKind>)> = outcomes
        .lock()
        .unwrap()
        .iter()
        .map(|(e, o)| (e.username().to_owned(), *o))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let test = Ok(Backend::Custom("test"));
    assert_eq!(
        got,
        [
            ("fail1".into(), Err(ErrorKind::ExitStatus)),
            ("fail2".into(), Err(ErrorKind::ExitStatus)),
            ("ok1".into(), test),
            ("ok2".into(), test),
            ("ok3".into(), Err(ErrorKind::Cancelled)),
            ("ok4".into(), Err(ErrorKind::Cancelled)),
        ]
    );
    assert!(FAIL.starts_with("fail"));
}

#[tokio::test(start_paused = true)]
async fn panicking_callback_is_contained() {
    let calls = Arc::new(AtomicUsize::new(0));
    let options = {
        let calls = Arc::clone(&calls);
        DispatcherOptions::default()
            .with_max_in_flight(1)
            .with_on_outcome(move |_, _| {
                calls.fetch_add(1, SeqCst);
                panic!("callback bug");
            })
    };
    let dispatcher = Dispatcher::new(TestHook::new(Duration::from_secs(1)), options);
    for i in 0..3 {
        dispatcher.fire(event(&format!("u{i}"))).unwrap();
    }
    until_in_flight(&dispatcher, 1).await;
    let report = dispatcher.shutdown(Duration::from_secs(60)).await;
    assert_eq!(report.delivered, 3, "{report:?}");
    assert_eq!(calls.load(SeqCst), 3);
    assert_eq!(dispatcher.stats().in_flight, 0);
}
