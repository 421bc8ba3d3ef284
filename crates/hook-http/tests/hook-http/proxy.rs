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

/// Issue 11 item 4: a `NO_PROXY` entry with a port (`host:port`) keeps that origin away from the
/// proxy, as in Go; the same host on another port still goes through it. The host does not
/// resolve, so a request that bypasses the proxy fails to connect and the proxy sees nothing.
#[test]
fn item4_no_proxy_host_port_entry_bypasses_the_proxy() {
    let proxy = TestServer::builder().start_blocking();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "proxy::no_proxy_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOOK_HTTP_PROXY_CHILD", "1")
        .env("HTTP_PROXY", format!("http://127.0.0.1:{}", proxy.port()))
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{}", proxy.port()))
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env(
            "NO_PROXY",
            "other.invalid, hooks.example.invalid:8080,.skip.invalid",
        )
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Only the request to port 80 (not listed) went through the proxy.
    let requests = proxy.blocking_wait_for_requests(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    let requests = if proxy.request_count() > requests.len() {
        proxy.requests()
    } else {
        requests
    };
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].header("host"), Some("hooks.example.invalid"));
}

#[tokio::test]
async fn no_proxy_child() {
    if std::env::var_os("HOOK_HTTP_PROXY_CHILD").is_none() {
        return; // only meaningful in the child process started above
    }
    // Listed with its port: straight to the (unresolvable) host, so a connection failure.
    let listed = quick("http://hooks.example.invalid:8080/hook")
        .retry_max(0)
        .build()
        .unwrap();
    let err = listed.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), hook_core::ErrorKind::Transport, "{err}");
    // `.skip.invalid` covers sub-domains.
    let sub = quick("http://a.skip.invalid/hook")
        .retry_max(0)
        .build()
        .unwrap();
    assert!(sub.send(&sample_event()).await.is_err());
    // The same host on port 80 is not listed: through the proxy (which answers 200).
    let unlisted = quick("http://hooks.example.invalid/hook")
        .retry_max(0)
        .build()
        .unwrap();
    unlisted.send(&sample_event()).await.unwrap();
}
