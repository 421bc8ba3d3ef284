//! D2: the duration an event reports is fixed at disconnect, however long it waits in the queue.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hooks::{DisconnectEvent, Dispatcher, DispatcherOptions, Field, Protocol};

use crate::support::{TestHook, event, recording};

#[tokio::test(start_paused = true)]
async fn duration_is_the_one_fixed_at_disconnect() {
    let hook = TestHook::new(Duration::from_secs(10));
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(1));
    let dispatcher = Dispatcher::new(hook.clone(), options);

    // Occupies the only slot for 10 s.
    dispatcher.fire(event("blocker")).unwrap();
    // A connection that lasted 1234 ms, and one measured from its start instant.
    let fixed = DisconnectEvent::builder(Protocol::Scp)
        .ip("10.1.1.1")
        .username("fixed")
        .duration(Duration::from_millis(1234))
        .build();
    dispatcher.fire(fixed).unwrap();
    let started = Instant::now() - Duration::from_millis(250);
    let peer: SocketAddr = "192.0.2.3:50000".parse().unwrap();
    let measured = DisconnectEvent::from_socket_addr(peer, Protocol::Sftp, "measured", started);
    let at_disconnect = measured.duration();
    assert!(at_disconnect >= Duration::from_millis(250));
    dispatcher.fire(measured).unwrap();

    let report = dispatcher.shutdown(Duration::from_secs(3600)).await;
    assert_eq!(report.delivered, 3);
    let seen = hook.seen();
    assert_eq!(seen.len(), 3);
    let fixed_seen = seen.iter().find(|s| s.event.username() == "fixed").unwrap();
    let measured_seen = seen
        .iter()
        .find(|s| s.event.username() == "measured")
        .unwrap();
    // They waited 10 s and 20 s in the queue...
    assert_eq!(
        (fixed_seen.started_at, measured_seen.started_at),
        (Duration::from_secs(10), Duration::from_secs(20))
    );
    // ...and report the duration they had at disconnect, to the hook and in the SFTPGo field.
    assert_eq!(fixed_seen.event.duration(), Duration::from_millis(1234));
    assert_eq!(
        fixed_seen.event.sftpgo_fields().get(Field::Duration),
        "1234"
    );
    assert_eq!(measured_seen.event.duration(), at_disconnect);
    let outcomes = outcomes.lock().unwrap();
    let fixed_outcome = outcomes
        .iter()
        .find(|(e, _)| e.username() == "fixed")
        .unwrap();
    assert_eq!(fixed_outcome.0.duration(), Duration::from_millis(1234));
}
