//! Retries, timeouts and the delivery deadline on real loopback servers (spec 4.4, 4.5, D8),
//! with scaled-down waits.

use std::time::Duration;

use hook_core::{ErrorKind, HookStatus};
use hook_http::HttpHook;
use hook_test_support::{Pki, RefusedPort, Response, TestServer, sample_event};

use crate::{WAIT, quick};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn gaps(requests: &[hook_test_support::RecordedRequest]) -> Vec<Duration> {
    requests
        .windows(2)
        .map(|w| w[1].received_at - w[0].received_at)
        .collect()
}

#[tokio::test]
async fn server_errors_then_success_deliver_on_the_third_attempt() {
    let server = TestServer::builder()
        .respond_seq([Response::status(500), Response::status(500)])
        .start()
        .await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 3);
    assert_eq!(delivery.status(), Some(HookStatus::Http(200)));
    let requests = server.wait_for_requests(3, WAIT).await;
    assert_eq!(requests.len(), 3);
    // Every attempt is the same request.
    assert!(requests.iter().all(|r| r.target == requests[0].target));
    // The retries reused the connection.
    assert_eq!(server.accepted_connections(), 1);
}

#[tokio::test]
async fn not_implemented_and_not_found_are_tried_once() {
    for code in [501u16, 404, 400, 403, 302] {
        let server = TestServer::builder()
            .default_response(Response::status(code))
            .start()
            .await;
        let hook = quick(&server.url("/hook")).build().unwrap();
        let err = hook.send(&sample_event()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::HttpStatus, "{code}");
        assert_eq!(err.status(), Some(HookStatus::Http(code)), "{code}");
        assert_eq!(err.attempts(), 1, "{code}");
        assert!(err.elapsed().is_some());
        assert!(err.to_string().contains(&format!("HTTP {code}")), "{err}");
        assert_eq!(server.request_count(), 1, "{code}");
    }
}

#[tokio::test]
async fn bad_gateway_forever_stops_after_retry_max_plus_one_with_the_backoff_waits() {
    let server = TestServer::builder()
        .default_response(Response::status(502))
        .start()
        .await;
    let hook = HttpHook::builder(server.url("/hook"))
        .retry_max(4)
        .retry_wait_min(MS(40))
        .retry_wait_max(MS(200))
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HttpStatus);
    assert_eq!(err.status(), Some(HookStatus::Http(502)));
    assert_eq!(err.attempts(), 5);
    let requests = server.requests();
    assert_eq!(requests.len(), 5, "no attempt after the last");
    // Waits 40, 80, 160, 200 (capped) ms: each gap at least that, and not wildly more.
    let expected = [MS(40), MS(80), MS(160), MS(200)];
    for (gap, want) in gaps(&requests).into_iter().zip(expected) {
        assert!(gap >= want, "gap {gap:?} shorter than the backoff {want:?}");
        assert!(
            gap < want + MS(1500),
            "gap {gap:?} far longer than the backoff {want:?}"
        );
    }
}

#[tokio::test]
async fn retry_after_one_second_wins_over_the_backoff() {
    let server = TestServer::builder()
        .respond_seq([Response::status(429).header("Retry-After", "1")])
        .start()
        .await;
    // The backoff alone would wait 30 s.
    let hook = HttpHook::builder(server.url("/hook"))
        .retry_wait_min(Duration::from_secs(30))
        .retry_wait_max(Duration::from_secs(30))
        .build()
        .unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 2);
    let gap = gaps(&server.requests())[0];
    assert!(gap >= MS(1000) && gap < MS(5000), "waited {gap:?}");
}

#[tokio::test]
async fn huge_retry_after_is_capped() {
    let server = TestServer::builder()
        .respond_seq([Response::status(503).header("Retry-After", "86400")])
        .start()
        .await;
    let hook = quick(&server.url("/hook"))
        .retry_after_max(MS(300))
        .build()
        .unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 2);
    let gap = gaps(&server.requests())[0];
    assert!(gap >= MS(300) && gap < MS(5000), "waited {gap:?}");
}

#[tokio::test]
async fn retry_after_date_on_503_is_honoured() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let server = TestServer::builder()
        .respond_seq([Response::status(503).header("Retry-After", httpdate::fmt_http_date(at))])
        .start()
        .await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    hook.send(&sample_event()).await.unwrap();
    // The date has one-second resolution: at least ~1 s, far less than 30 s.
    let gap = gaps(&server.requests())[0];
    assert!(gap >= MS(900) && gap < MS(5000), "waited {gap:?}");
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let refused = RefusedPort::new();
    let hook = quick(&refused.url("/hook")).retry_max(2).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.status(), None);
    assert!(err.to_string().contains("connection failed"), "{err}");
}

#[tokio::test]
async fn closed_and_reset_connections_are_retried() {
    let server = TestServer::builder()
        .respond_seq([Response::close(), Response::reset()])
        .start()
        .await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 3);
}

#[tokio::test]
async fn untrusted_certificate_is_not_retried() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().await;
    let hook = quick(&server.url("/hook")).retry_max(3).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert_eq!(err.attempts(), 1);
    assert!(err.to_string().contains("certificate"), "{err}");
    server.wait_for_handshake_failures(1, WAIT).await;
    assert_eq!(server.accepted_connections(), 1);
}

#[tokio::test]
async fn each_attempt_has_its_own_timeout() {
    let server = TestServer::builder()
        .respond_seq([Response::ok().delay(Duration::from_secs(3))])
        .start()
        .await;
    let hook = quick(&server.url("/hook"))
        .timeout(MS(200))
        .build()
        .unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(
        delivery.attempts(),
        2,
        "the slow first attempt timed out, the second was served"
    );

    let slow = TestServer::builder()
        .default_response(Response::ok().delay(Duration::from_secs(3)))
        .start()
        .await;
    let hook = quick(&slow.url("/hook"))
        .timeout(MS(100))
        .retry_max(1)
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), 2);
}

#[tokio::test]
async fn the_delivery_deadline_bounds_the_event() {
    // Retry-After 1 s on every answer, 10 retries, but 1.5 s for the whole event.
    let server = TestServer::builder()
        .default_response(Response::status(503).header("Retry-After", "1"))
        .start()
        .await;
    let hook = quick(&server.url("/hook"))
        .retry_max(10)
        .delivery_deadline(MS(1500))
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert!(err.is_timeout());
    assert_eq!(err.status(), Some(HookStatus::Http(503)));
    assert_eq!(err.attempts(), 2);
    assert!(err.elapsed().unwrap() < Duration::from_secs(5));
    assert!(err.to_string().contains("delivery deadline"), "{err}");

    // A hanging server: the deadline cuts the attempt itself.
    let hanging = TestServer::builder()
        .default_response(Response::ok().delay(Duration::from_secs(30)))
        .start()
        .await;
    let hook = quick(&hanging.url("/hook"))
        .timeout(Duration::from_secs(20))
        .delivery_deadline(MS(300))
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(err.attempts(), 1);
    assert!(
        err.to_string().contains("delivery deadline passed"),
        "{err}"
    );
    assert!(err.elapsed().unwrap() < Duration::from_secs(10));
}

#[tokio::test]
async fn large_bodies_are_drained_or_dropped_without_harm() {
    let server = TestServer::builder()
        .respond_seq([
            Response::status(500).body(vec![b'x'; 10_000]),
            Response::ok().body(vec![b'y'; 1_000_000]),
        ])
        .start()
        .await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    assert_eq!(hook.send(&sample_event()).await.unwrap().attempts(), 2);
    assert_eq!(hook.send(&sample_event()).await.unwrap().attempts(), 1);
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn huge_deadline_and_waits_do_not_panic() {
    // Durations far past what an `Instant` can hold: "no deadline" and "no cap" in effect.
    let server = TestServer::builder()
        .respond_seq([Response::status(503).header("Retry-After", "0")])
        .start()
        .await;
    let hook = quick(&server.url("/hook"))
        .timeout(Duration::MAX)
        .delivery_deadline(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(hook.send(&sample_event()).await.unwrap().attempts(), 2);

    // The same from the configuration sections, which accept any finite number of seconds.
    let url = match hook_config::HookTarget::parse(&server.url("/hook")).unwrap() {
        hook_config::HookTarget::Http(url) => url,
        other => panic!("{other:?}"),
    };
    let mut hooks = hook_config::HooksSection::default();
    hooks.delivery_deadline = 1e19;
    let hook =
        HttpHook::from_config(&url, &hook_config::HttpClientsSection::default(), &hooks).unwrap();
    assert_eq!(hook.send(&sample_event()).await.unwrap().attempts(), 1);

    // A backoff wait no clock can reach fails at once instead of panicking or sleeping forever.
    let failing = TestServer::builder()
        .default_response(Response::status(500))
        .start()
        .await;
    let hook = HttpHook::builder(failing.url("/hook"))
        .retry_wait_min(Duration::MAX)
        .retry_wait_max(Duration::MAX)
        .delivery_deadline(Duration::from_secs(60))
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn the_last_retry_after_rides_on_the_error_for_a_spool() {
    let server = TestServer::builder()
        .default_response(Response::status(503).header("Retry-After", "120"))
        .start()
        .await;
    let hook = quick(&server.url("/hook")).retry_max(0).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.status(), Some(HookStatus::Http(503)));
    // Uncapped (the in-memory retries cap it; a spool's redelivery honours it as sent).
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(err.redelivery(), hook_core::Redelivery::Transient);

    let server = TestServer::builder()
        .default_response(Response::status(404))
        .start()
        .await;
    let hook = quick(&server.url("/hook")).retry_max(0).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.retry_after(), None);
    assert_eq!(err.redelivery(), hook_core::Redelivery::Permanent);
    let refused = RefusedPort::new();
    let hook = quick(&refused.url("/hook")).retry_max(0).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.redelivery(), hook_core::Redelivery::Transient);
}
