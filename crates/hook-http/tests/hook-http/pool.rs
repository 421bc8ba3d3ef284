//! D5: one pooled client per hook; connections are reused across events.

use std::sync::Arc;

use hook_core::Hook;
use hook_test_support::{TestServer, numbered_events};

use crate::{WAIT, quick};

#[tokio::test]
async fn hundred_sequential_events_use_at_most_two_connections() {
    let server = TestServer::start().await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    let events = numbered_events(100);
    for event in &events {
        let delivery = hook.on_disconnect(event).await.unwrap();
        assert_eq!(delivery.attempts(), 1);
    }
    let requests = server.wait_for_requests(100, WAIT).await;
    // Every event arrived, in order, with its own values.
    for (i, request) in requests.iter().enumerate() {
        assert_eq!(
            request.query_param("username").as_deref(),
            Some(format!("user-{i}").as_str())
        );
    }
    let accepted = server.accepted_connections();
    assert!(
        accepted <= 2,
        "SFTPGo would open 100 connections; we opened {accepted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_the_pool_under_concurrency() {
    let server = TestServer::start().await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    let events = Arc::new(numbered_events(400));
    // 8 workers, each sending 50 events one after another through its own clone.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let hook = hook.clone();
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            for event in events.iter().skip(w).step_by(8) {
                hook.send(event).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let requests = server.wait_for_requests(400, WAIT).await;
    assert_eq!(requests.len(), 400);
    // A worker's next request can race its previous connection's return to the pool, so a few
    // extra connections are normal; SFTPGo would open 400.
    let accepted = server.accepted_connections();
    assert!(
        accepted <= 80,
        "8 concurrent senders opened {accepted} connections for 400 events"
    );
}
