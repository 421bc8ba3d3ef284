//! With the real HTTP backend against a loopback endpoint: a storm is delivered in full while no
//! fire waits, over pooled connections; shutdown cancels requests to an endpoint that hangs.

use std::time::{Duration, Instant};

use hook_test_support::{Response, TestServer};
use hooks::{
    DisconnectEvent, Dispatcher, DispatcherOptions, ErrorKind, HookConfig, Protocol, build_hook,
};

use crate::support::{count_errors, recording};

fn dispatcher_for(url: &str, options: DispatcherOptions) -> Dispatcher {
    let mut config = HookConfig::default();
    config.common.post_disconnect_hook = url.into();
    config.http.timeout = 30.0;
    let hook = build_hook(&config).unwrap().expect("an HTTP hook");
    Dispatcher::new(hook, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_storm_is_delivered_in_full_without_fire_waiting() {
    // Each answer takes 50 ms, so hooks pile up behind the in-flight limit.
    let server = TestServer::builder()
        .default_response(Response::ok().delay(Duration::from_millis(50)))
        .start()
        .await;
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(50));
    let dispatcher = dispatcher_for(&server.url("/hook"), options);
    let mut worst = Duration::ZERO;
    for i in 0..2_000u32 {
        let ev = DisconnectEvent::new(
            "192.0.2.8",
            Protocol::Ssh,
            format!("u{i}"),
            Duration::from_millis(u64::from(i)),
        );
        let t = Instant::now();
        dispatcher.fire(ev).unwrap();
        worst = worst.max(t.elapsed());
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert!(
        worst < Duration::from_millis(50),
        "slowest fire took {worst:?}"
    );
    let report = dispatcher.shutdown(Duration::from_secs(120)).await;
    assert_eq!(
        (report.delivered, report.failed, report.abandoned),
        (2_000, 0, 0),
        "{report:?}"
    );
    assert_eq!(server.request_count(), 2_000);
    assert_eq!(outcomes.lock().unwrap().len(), 2_000);
    // One pooled client: never more connections than hooks in flight.
    assert!(
        server.accepted_connections() <= 50,
        "{} connections",
        server.accepted_connections()
    );
    let req = server
        .requests()
        .into_iter()
        .find(|r| r.query_param("username").as_deref() == Some("u1234"))
        .unwrap();
    assert_eq!(
        req.query_param("connection_duration").as_deref(),
        Some("1234")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_requests_to_an_endpoint_that_hangs() {
    let server = TestServer::builder()
        .default_response(Response::ok().delay(Duration::from_secs(20)))
        .start()
        .await;
    let (options, outcomes) = recording(DispatcherOptions::default().with_max_in_flight(3));
    let dispatcher = dispatcher_for(&server.url("/hook"), options);
    for i in 0..5 {
        dispatcher
            .fire(DisconnectEvent::new(
                "192.0.2.8",
                Protocol::Ftp,
                format!("u{i}"),
                Duration::ZERO,
            ))
            .unwrap();
    }
    server.wait_for_requests(3, Duration::from_secs(20)).await;
    let began = Instant::now();
    let report = dispatcher.shutdown(Duration::from_millis(300)).await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        (
            report.abandoned_running,
            report.abandoned_queued,
            report.delivered
        ),
        (3, 2, 0),
        "{report:?}"
    );
    assert_eq!(count_errors(&outcomes, ErrorKind::Cancelled), 5);
}
