//! `fire` needs no runtime context: from a `Drop` impl inside a runtime (the russh pattern) and
//! from plain threads.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, Fired, Protocol};

use crate::support::TestHook;

/// A connection object that reports its own end when dropped, as a russh handler would.
struct Session {
    dispatcher: Dispatcher,
    peer: SocketAddr,
    user: String,
    started: Instant,
}

impl Drop for Session {
    fn drop(&mut self) {
        let event =
            DisconnectEvent::from_socket_addr(self.peer, Protocol::Sftp, &*self.user, self.started);
        assert_eq!(self.dispatcher.fire(event).unwrap(), Fired::Queued);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_from_drop_inside_the_runtime() {
    let hook = TestHook::new(Duration::from_millis(1));
    let dispatcher = Dispatcher::new(hook.clone(), DispatcherOptions::default());
    let mut tasks = Vec::new();
    for i in 0..20u16 {
        let session = Session {
            dispatcher: dispatcher.clone(),
            peer: SocketAddr::from(([198, 51, 100, 7], 40_000 + i)),
            user: format!("user{i}"),
            started: Instant::now(),
        };
        // Dropped at the end of the connection's task, on a runtime worker thread.
        tasks.push(tokio::spawn(async move {
            tokio::task::yield_now().await;
            drop(session);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // And dropped in the middle of a select! on the test's own task.
    let last = Session {
        dispatcher: dispatcher.clone(),
        peer: "[2001:db8::1]:22".parse().unwrap(),
        user: "v6".into(),
        started: Instant::now(),
    };
    tokio::select! {
        () = async move { let _keep = last; std::future::pending::<()>().await } => {}
        () = tokio::task::yield_now() => {}
    }
    let report = dispatcher.shutdown(Duration::from_secs(30)).await;
    assert_eq!(report.delivered, 21, "{report:?}");
    let mut users: Vec<_> = hook
        .seen()
        .iter()
        .map(|s| (s.event.ip().to_owned(), s.event.username().to_owned()))
        .collect();
    users.sort();
    assert!(
        users.contains(&("198.51.100.7".into(), "user3".into())),
        "{users:?}"
    );
    assert!(
        users.contains(&("2001:db8::1".into(), "v6".into())),
        "{users:?}"
    );
}

/// Plain threads with no runtime context fire while the (current-thread) runtime is not even
/// being driven; the events run once it is.
#[test]
fn fire_from_plain_threads_without_a_runtime_context() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hook = TestHook::new(Duration::from_millis(1));
    let dispatcher =
        rt.block_on(async { Dispatcher::new(hook.clone(), DispatcherOptions::default()) });
    std::thread::scope(|scope| {
        for t in 0..4 {
            let dispatcher = dispatcher.clone();
            scope.spawn(move || {
                assert!(
                    tokio::runtime::Handle::try_current().is_err(),
                    "no runtime context here"
                );
                for i in 0..250 {
                    let ev = DisconnectEvent::new(
                        "203.0.113.9",
                        Protocol::Ftp,
                        format!("t{t}-{i}"),
                        Duration::ZERO,
                    );
                    assert_eq!(dispatcher.fire(ev).unwrap(), Fired::Queued);
                }
            });
        }
    });
    assert_eq!(dispatcher.stats().queued, 1_000);
    let report = rt.block_on(dispatcher.shutdown(Duration::from_secs(60)));
    assert_eq!(report.delivered, 1_000, "{report:?}");
    assert_eq!(hook.started(), 1_000);
}

/// Dropping the dispatcher outside any runtime (after its runtime is gone) is fine too.
#[test]
fn dispatcher_outlives_its_runtime_without_panicking() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hook = TestHook::new(Duration::from_secs(10));
    let dispatcher =
        rt.block_on(async { Dispatcher::new(hook.clone(), DispatcherOptions::default()) });
    dispatcher
        .fire(DisconnectEvent::new(
            "1.2.3.4",
            Protocol::Ssh,
            "u",
            Duration::ZERO,
        ))
        .unwrap();
    drop(rt);
    // The runtime is gone; fire is refused or queued but never panics or blocks.
    let _ = dispatcher.fire(DisconnectEvent::new(
        "1.2.3.4",
        Protocol::Ssh,
        "u",
        Duration::ZERO,
    ));
    drop(dispatcher);
}
