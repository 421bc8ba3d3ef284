//! `NatsHook` against Debian's real `nats-server`: the ack, deduplication on the event id, an
//! outage (server down, then restarted on the same store), and the missing-stream error.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use hook_config::{HookConfig, HookTarget, NatsServers};
use hook_core::{Backend, DisconnectEvent, ErrorKind, Hook, Protocol, Redelivery};
use hook_nats::NatsHook;
use hook_test_support::NatsServer;

fn servers(url: &str) -> NatsServers {
    match HookTarget::parse(url).unwrap() {
        HookTarget::Nats(s) => s,
        other => panic!("{other:?}"),
    }
}

async fn count(url: &str) -> u64 {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    js.get_stream("SFTPGO_HOOKS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_event_is_stored_once_and_a_duplicate_ack_is_delivered() {
    let server = NatsServer::start();
    let config = HookConfig::default();
    let hook = NatsHook::from_config(&servers(&server.url()), &config.nats, &config.hooks).unwrap();
    let event = DisconnectEvent::new("192.0.2.7", Protocol::Ssh, "eve", Duration::from_millis(9));
    let first = hook.on_disconnect(&event).await.unwrap();
    assert_eq!(first.backend(), Backend::Nats);
    assert_eq!(first.attempts(), 1);
    // The same event again (a spool redelivery): acked as a duplicate, delivered, not stored.
    hook.on_disconnect(&event).await.unwrap();
    hook.on_disconnect(&event.clone()).await.unwrap();
    let other = DisconnectEvent::new("192.0.2.7", Protocol::Ssh, "eve", Duration::from_millis(9));
    hook.on_disconnect(&other).await.unwrap();
    assert_eq!(count(&server.url()).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_transient_within_the_deadline_and_the_restarted_server_stores_once() {
    let mut server = NatsServer::start();
    let url = server.url();
    let mut config = HookConfig::default();
    config.nats.ack_timeout = 0.5;
    config.hooks.delivery_deadline = 2.0;
    let hook = NatsHook::from_config(&servers(&url), &config.nats, &config.hooks).unwrap();
    hook.connect().await.unwrap();
    server.kill();
    let event = DisconnectEvent::new("192.0.2.8", Protocol::Sftp, "frank", Duration::ZERO);
    let started = Instant::now();
    let err = hook.on_disconnect(&event).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert_eq!(err.redelivery(), Redelivery::Transient);
    assert!(err.attempts() > 1, "{err:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The same store comes back: the retried event (same id) is stored exactly once, even if
    // the client had queued an earlier attempt that reaches the server after the reconnect.
    server.restart();
    server.wait_healthy(Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match hook.on_disconnect(&event).await {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "not delivered after the restart: {e}"
            ),
        }
    }
    hook.on_disconnect(&event).await.unwrap();
    assert_eq!(count(&url).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_is_permanent_and_a_refused_connection_names_the_servers() {
    let server = NatsServer::start();
    let mut config = HookConfig::default();
    config.nats.create_stream = false;
    let hook = NatsHook::from_config(&servers(&server.url()), &config.nats, &config.hooks).unwrap();
    let event = DisconnectEvent::new("192.0.2.9", Protocol::Ftp, "", Duration::ZERO);
    let err = hook.on_disconnect(&event).await.unwrap_err();
    assert_eq!(err.redelivery(), Redelivery::Permanent, "{err}");
    assert_eq!(err.attempts(), 1);
    assert!(
        err.to_string()
            .contains("no stream stores subject \"sftpgo.hooks.disconnect.ftp\""),
        "{err}"
    );

    let refused = hook_test_support::RefusedPort::new();
    let url = format!("nats://u:s3cret@{}", refused.addr());
    let mut config = HookConfig::default();
    config.hooks.delivery_deadline = 0.5;
    let hook = NatsHook::from_config(&servers(&url), &config.nats, &config.hooks).unwrap();
    let err = hook.connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    let text = format!("{err} {err:?} {hook:?}");
    assert!(text.contains("nats://u:xxxxx@127.0.0.1:"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
