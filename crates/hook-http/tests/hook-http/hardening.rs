//! Issue 11, items 1-4: endpoints that misbehave the way real ones do. Each test is named after
//! the item it reproduces; each failed before its fix.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use hook_core::ErrorKind;
use hook_http::HttpHookBuilder;
use hook_test_support::{
    MisbehavingServer, Misbehaviour, Pki, Response, TestServer, numbered_events, sample_event,
};

use crate::{WAIT, quick};

const STORM: usize = 1000;
const SENDERS: usize = 32;

/// Fires `STORM` numbered events through `builder` (`retry_max` 0) from `SENDERS` concurrent
/// tasks; asserts that every one was delivered in exactly one attempt and that the endpoint saw
/// each event exactly once.
async fn storm_delivers_every_event(builder: HttpHookBuilder, server: &MisbehavingServer) {
    // A generous attempt timeout: the machine may be loaded (TLS handshakes in a debug build);
    // what is asserted is that nothing fails and nothing is retried.
    let hook = builder
        .retry_max(0)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let events = Arc::new(numbered_events(STORM));
    let mut tasks = Vec::new();
    for w in 0..SENDERS {
        let hook = hook.clone();
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for event in events.iter().skip(w).step_by(SENDERS) {
                match hook.send(event).await {
                    Ok(delivery) => {
                        if delivery.attempts() != 1 {
                            failures.push(format!(
                                "{}: {} attempts",
                                event.username(),
                                delivery.attempts()
                            ));
                        }
                    }
                    Err(err) => failures.push(format!("{}: {err}", event.username())),
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} of {STORM} events not delivered in one attempt, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let targets = server.wait_for_requests(STORM, WAIT).await.unwrap();
    let users: HashSet<String> = targets
        .iter()
        .filter_map(|t| {
            t.split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("username="))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(users.len(), STORM, "every event reached the endpoint once");
    assert_eq!(
        targets.len(),
        STORM,
        "no event was sent twice with a response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item1_storm_close_after_every_response_delivers_every_event() {
    let server = MisbehavingServer::start(Misbehaviour::CloseAfterResponse, None).await;
    storm_delivers_every_event(quick(&server.url("/hook")), &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item1_storm_close_idle_after_0_1_ms_delivers_every_event() {
    let server = MisbehavingServer::start(Misbehaviour::CloseWhenIdle, None).await;
    storm_delivers_every_event(quick(&server.url("/hook")), &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item1_storm_over_tls_close_after_every_response_delivers_every_event() {
    let pki = Pki::new();
    let server =
        MisbehavingServer::start(Misbehaviour::CloseAfterResponse, Some(pki.server_tls())).await;
    let builder = quick(&server.url("/hook")).ca_certificate(pki.ca().cert_path());
    storm_delivers_every_event(builder, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item1_storm_over_tls_close_idle_after_0_1_ms_delivers_every_event() {
    let pki = Pki::new();
    let server =
        MisbehavingServer::start(Misbehaviour::CloseWhenIdle, Some(pki.server_tls())).await;
    let builder = quick(&server.url("/hook")).ca_certificate(pki.ca().cert_path());
    storm_delivers_every_event(builder, &server).await;
}

/// The defect, deterministically: the second event goes on the pooled connection of the first,
/// which the server closes without answering. It is re-sent once, at once, on a new connection,
/// and is a delivery in one attempt (SFTPGo's retry schedule would have waited 2 s).
async fn reused_connection_closed_is_resent_once(server: &TestServer, builder: HttpHookBuilder) {
    let hook = builder.retry_max(3).build().unwrap();
    let first = hook.send(&sample_event()).await.unwrap();
    assert_eq!(first.attempts(), 1);
    let second = hook.send(&sample_event()).await.unwrap();
    assert_eq!(second.attempts(), 1, "the re-send is not a retry");
    let requests = server.wait_for_requests(3, WAIT).await;
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].connection_id, requests[1].connection_id,
        "reused"
    );
    assert_ne!(
        requests[1].connection_id, requests[2].connection_id,
        "re-sent on a new one"
    );
    assert_eq!(server.accepted_connections(), 2);
}

#[tokio::test]
async fn item1_reused_connection_closed_without_answer_is_resent_once_uncounted() {
    let server = TestServer::builder()
        .respond_seq([Response::ok(), Response::close()])
        .start()
        .await;
    reused_connection_closed_is_resent_once(&server, quick(&server.url("/hook"))).await;
}

#[tokio::test]
async fn item1_reused_tls_connection_closed_without_answer_is_resent_once_uncounted() {
    let pki = Pki::new();
    let server = TestServer::builder()
        .tls(pki.server_tls())
        .respond_seq([Response::ok(), Response::close()])
        .start()
        .await;
    let builder = quick(&server.url("/hook")).ca_certificate(pki.ca().cert_path());
    reused_connection_closed_is_resent_once(&server, builder).await;
}

/// A fresh connection that closes without an answer is a failure, never re-sent for free.
#[tokio::test]
async fn item1_fresh_connection_closed_without_answer_is_not_resent() {
    let server = TestServer::builder()
        .default_response(Response::close())
        .start()
        .await;
    let hook = quick(&server.url("/hook")).retry_max(0).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.attempts(), 1);
    assert_eq!(server.request_count(), 1, "sent once");
}

async fn slow_body_is_a_delivery(server: &MisbehavingServer, builder: HttpHookBuilder) {
    // 100 bytes over about 3 s, with a 1 s timeout per attempt and retries allowed.
    let hook = builder
        .timeout(Duration::from_secs(1))
        .retry_max(2)
        .build()
        .unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 1);
    assert_eq!(delivery.status(), Some(hook_core::HookStatus::Http(200)));
    // Give a wrongful retry the time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server.request_count(),
        1,
        "the endpoint processed the event once"
    );
}

#[tokio::test]
async fn item2_slow_2xx_body_is_a_delivery_not_a_timeout() {
    let trickle = Misbehaviour::TrickleBody {
        len: 100,
        interval: Duration::from_millis(30),
    };
    let server = MisbehavingServer::start(trickle, None).await;
    slow_body_is_a_delivery(&server, quick(&server.url("/hook"))).await;
}

#[tokio::test]
async fn item2_slow_2xx_body_over_tls_is_a_delivery_not_a_timeout() {
    let pki = Pki::new();
    let trickle = Misbehaviour::TrickleBody {
        len: 100,
        interval: Duration::from_millis(30),
    };
    let server = MisbehavingServer::start(trickle, Some(pki.server_tls())).await;
    let builder = quick(&server.url("/hook")).ca_certificate(pki.ca().cert_path());
    slow_body_is_a_delivery(&server, builder).await;
}

async fn endless_body_connection_dropped(server: &MisbehavingServer, builder: HttpHookBuilder) {
    let hook = builder
        .timeout(Duration::from_secs(1))
        .retry_max(2)
        .build()
        .unwrap();
    for _ in 0..2 {
        let delivery = hook.send(&sample_event()).await.unwrap();
        assert_eq!(delivery.attempts(), 1);
    }
    assert_eq!(server.request_count(), 2);
    // The endless body's connection is never reused: each event had its own, and both are
    // closed by the client once the bounded drain gives up.
    assert_eq!(server.accepted_connections(), 2);
    server.wait_for_open_at_most(0, WAIT).await.unwrap();
}

#[tokio::test]
async fn item2_endless_2xx_body_is_a_delivery_and_its_connection_dropped() {
    let server = MisbehavingServer::start(Misbehaviour::EndlessBody, None).await;
    endless_body_connection_dropped(&server, quick(&server.url("/hook"))).await;
}

#[tokio::test]
async fn item2_endless_2xx_body_over_tls_is_a_delivery_and_its_connection_dropped() {
    let pki = Pki::new();
    let server = MisbehavingServer::start(Misbehaviour::EndlessBody, Some(pki.server_tls())).await;
    let builder = quick(&server.url("/hook")).ca_certificate(pki.ca().cert_path());
    endless_body_connection_dropped(&server, builder).await;
}

fn many_headers(n: usize, value_len: usize) -> Response {
    let value = "v".repeat(value_len);
    (0..n).fold(Response::ok(), |r, i| {
        r.header(format!("x-h{i}"), value.clone())
    })
}

async fn head_accepted(server: &TestServer, builder: HttpHookBuilder) {
    let hook = builder.retry_max(0).build().unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 1);
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn item3_response_head_with_150_headers_is_accepted() {
    let server = TestServer::builder()
        .default_response(many_headers(150, 20))
        .start()
        .await;
    head_accepted(&server, quick(&server.url("/hook"))).await;
}

#[tokio::test]
async fn item3_response_head_with_150_headers_over_tls_is_accepted() {
    let pki = Pki::new();
    let server = TestServer::builder()
        .tls(pki.server_tls())
        .default_response(many_headers(150, 20))
        .start()
        .await;
    head_accepted(
        &server,
        quick(&server.url("/hook")).ca_certificate(pki.ca().cert_path()),
    )
    .await;
}

/// Far more headers than hyper's default of 100 pass on both transports: 990 headers of about
/// 100 bytes (about 100 KB of head).
#[tokio::test]
async fn item3_head_with_990_headers_is_accepted_on_both_transports() {
    let server = TestServer::builder()
        .default_response(many_headers(990, 90))
        .start()
        .await;
    head_accepted(&server, quick(&server.url("/hook"))).await;
    let pki = Pki::new();
    let tls = TestServer::builder()
        .tls(pki.server_tls())
        .default_response(many_headers(990, 90))
        .start()
        .await;
    head_accepted(
        &tls,
        quick(&tls.url("/hook")).ca_certificate(pki.ca().cert_path()),
    )
    .await;
}

/// On the plain-HTTP transport the head may be larger than hyper's default buffer (about
/// 408 KiB): 700 KB of head in 20 headers is accepted, as Go accepts it.
#[tokio::test]
async fn item3_head_of_700_kb_is_accepted_on_the_plain_http_transport() {
    let server = TestServer::builder()
        .default_response(many_headers(20, 35_000))
        .start()
        .await;
    head_accepted(&server, quick(&server.url("/hook"))).await;
}

/// A head larger than the bound (2 MiB) is refused with a clear reason, not read forever.
#[tokio::test]
async fn item3_head_over_the_size_bound_is_refused() {
    let server = TestServer::builder()
        .default_response(many_headers(32, 64 * 1024))
        .start()
        .await;
    let hook = quick(&server.url("/hook")).retry_max(0).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(err.to_string().contains("too large"), "{err}");
}
