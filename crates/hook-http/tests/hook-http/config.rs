//! `HttpHook::from_config`: the sections' values, validated with errors naming the key.

use std::time::Duration;

use hook_config::{HookTarget, HooksSection, HttpClientsSection, HttpHeader};
use hook_core::Hook;
use hook_http::HttpHook;
use hook_test_support::{Response, TestServer, sample_event};

use crate::WAIT;

fn url(text: &str) -> hook_config::HookUrl {
    match HookTarget::parse(text).unwrap() {
        HookTarget::Http(url) => url,
        other => panic!("{other:?}"),
    }
}

#[test]
fn sftpgo_defaults() {
    let hook = HttpHook::from_config(
        &url("http://h/x"),
        &HttpClientsSection::default(),
        &HooksSection::default(),
    )
    .unwrap();
    assert_eq!(hook.timeout(), Duration::from_secs(20));
    assert_eq!(hook.delivery_deadline(), Duration::from_secs(120));
    let policy = hook.retry_policy();
    assert_eq!(policy.max_attempts(), 4);
    assert_eq!(
        (policy.wait_min(), policy.wait_max()),
        (Duration::from_secs(2), Duration::from_secs(30))
    );
    assert_eq!(policy.retry_after_max(), Duration::from_secs(60));
}

/// A change to the two sections.
type Change = Box<dyn Fn(&mut HttpClientsSection, &mut HooksSection)>;

#[test]
fn invalid_values_are_rejected_naming_the_key() {
    let u = url("http://h/x");
    let hooks = HooksSection::default();
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|h, _| h.timeout = 0.0), "http.timeout"),
        (Box::new(|h, _| h.timeout = -1.0), "http.timeout"),
        (Box::new(|h, _| h.timeout = f64::NAN), "http.timeout"),
        (Box::new(|h, _| h.retry_max = -1), "http.retry_max"),
        (
            Box::new(|h, _| h.retry_wait_min = -2),
            "http.retry_wait_min",
        ),
        (
            Box::new(|h, _| h.retry_wait_max = -30),
            "http.retry_wait_max",
        ),
        (
            Box::new(|_, k| k.delivery_deadline = 0.0),
            "hooks.delivery_deadline",
        ),
        (
            Box::new(|_, k| k.retry_after_max = Some(-1.0)),
            "hooks.retry_after_max",
        ),
        (
            Box::new(|h, _| h.headers = vec![HttpHeader::new("Bad Key", "v")]),
            "http.headers[0].key",
        ),
        (
            Box::new(|h, _| {
                h.headers = vec![HttpHeader::new("K", "v"), HttpHeader::new("K", "a\nb")]
            }),
            "http.headers[1].value",
        ),
    ];
    for (change, key) in cases {
        let mut http = HttpClientsSection::default();
        let mut hooks = hooks.clone();
        change(&mut http, &mut hooks);
        let err = HttpHook::from_config(&u, &http, &hooks).unwrap_err();
        assert_eq!(err.key(), key, "{err}");
    }
}

#[tokio::test]
async fn config_values_reach_the_wire() {
    let server = TestServer::builder()
        .respond_seq([Response::status(503)])
        .start()
        .await;
    let mut http = HttpClientsSection::default();
    http.retry_wait_min = 0; // waits of 0 s
    http.retry_max = 1;
    http.headers = vec![
        HttpHeader::new("X-Dropped", ""), // empty value: dropped as SFTPGo does
        HttpHeader::new("X-Scoped", "yes").for_url(server.url("/hook")),
        HttpHeader::new("X-Elsewhere", "no").for_url("http://example.com"),
    ];
    let hook =
        HttpHook::from_config(&url(&server.url("/hook")), &http, &HooksSection::default()).unwrap();
    // Through the object-safe trait, as servers hold it.
    let hook: std::sync::Arc<dyn Hook> = std::sync::Arc::new(hook);
    let delivery = hook.on_disconnect(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 2);
    let request = &server.wait_for_requests(2, WAIT).await[1];
    assert_eq!(request.header("x-scoped"), Some("yes"));
    assert_eq!(request.header("x-elsewhere"), None);
    assert_eq!(request.header("x-dropped"), None);
}
