//! Proxies from the environment, as Go's `ProxyFromEnvironment`: used for other hosts, never for
//! loopback. Run in a child process so the variables do not leak into other tests.

use std::time::Duration;

use hook_test_support::{TestServer, sample_event};

use crate::quick;

#[test]
fn environment_proxy_is_used_except_for_loopback() {
    let proxy = TestServer::builder().start_blocking();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "proxy::proxy_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOOK_HTTP_PROXY_CHILD", "1")
        .env("HTTP_PROXY", format!("http://127.0.0.1:{}", proxy.port()))
        .env("http_proxy", format!("http://127.0.0.1:{}", proxy.port()))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Only the request for the non-loopback host went through the proxy.
    let requests = proxy.blocking_wait_for_requests(1, Duration::from_secs(10));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("host"), Some("hooks.example.invalid"));
    assert!(
        requests[0].target.starts_with("/hook?connection_duration="),
        "{}",
        requests[0].target
    );
}

#[tokio::test]
async fn proxy_child() {
    if std::env::var_os("HOOK_HTTP_PROXY_CHILD").is_none() {
        return; // only meaningful in the child process started above
    }
    // Loopback: straight to the server, whatever HTTP_PROXY says.
    let direct = TestServer::start().await;
    quick(&direct.url("/hook"))
        .build()
        .unwrap()
        .send(&sample_event())
        .await
        .unwrap();
    let localhost = quick(&direct.url_with_host("localhost", "/hook"))
        .build()
        .unwrap();
    localhost.send(&sample_event()).await.unwrap();
    assert_eq!(direct.request_count(), 2);
    // Another host: through the proxy (which answers 200 itself).
    let remote = quick("http://hooks.example.invalid/hook")
        .retry_max(0)
        .build()
        .unwrap();
    remote.send(&sample_event()).await.unwrap();
}
