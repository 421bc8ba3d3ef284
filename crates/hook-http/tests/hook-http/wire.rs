//! Spec 4.2 and 4.3 on the wire, read from a raw socket: Go's header spelling, the user-info as
//! Basic authorization, no body.

use std::time::Duration;

use hook_core::{DisconnectEvent, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::quick;

/// Accepts one connection, reads one request head, answers 200, returns the head.
async fn capture_one(listener: TcpListener) -> String {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .await
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn request_head_is_what_go_sends() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(capture_one(listener));
    let hook = quick(&format!("http://u:p@127.0.0.1:{port}/p?x=1#frag"))
        .header("x-api-key", "k")
        .build()
        .unwrap();
    let event = DisconnectEvent::new("10.0.0.1", Protocol::Ssh, "", Duration::from_millis(5));
    hook.send(&event).await.unwrap();
    let head = server.await.unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "GET /p?connection_duration=5&ip=10.0.0.1&protocol=SSH&username=&x=1 HTTP/1.1"
    );
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    // Go's canonical header case on HTTP/1.1; no body, no Content-Type, no Content-Length.
    for want in [
        format!("Host: 127.0.0.1:{port}"),
        "User-Agent: Go-http-client/1.1".to_owned(),
        "Accept-Encoding: gzip".to_owned(),
        "Authorization: Basic dTpw".to_owned(),
        "X-Api-Key: k".to_owned(),
    ] {
        assert!(
            headers.contains(&want.as_str()),
            "missing {want:?} in {headers:?}"
        );
    }
    // Nor `Accept` (Go sends none; reqwest, used for https:// hooks, adds `*/*`).
    for absent in [
        "accept:",
        "content-type",
        "content-length",
        "transfer-encoding",
        "cookie",
    ] {
        assert!(
            !headers
                .iter()
                .any(|h| h.to_ascii_lowercase().starts_with(absent)),
            "unexpected {absent} in {headers:?}"
        );
    }
}

/// Plain `http://` goes through hyper directly (no `Accept: */*`, asserted above); `https://`
/// through reqwest. `Debug` says which.
#[tokio::test]
async fn the_transport_depends_on_the_scheme() {
    let plain = quick("http://127.0.0.1:9/hook").build().unwrap();
    assert!(
        format!("{plain:?}").contains(r#"transport: "hyper (plain HTTP)""#),
        "{plain:?}"
    );
    let tls = quick("https://127.0.0.1:9/hook").build().unwrap();
    assert!(
        format!("{tls:?}").contains(r#"transport: "reqwest""#),
        "{tls:?}"
    );
}
