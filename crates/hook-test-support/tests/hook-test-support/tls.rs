//! HTTPS and mutual TLS, dialled with tokio-rustls.

use std::sync::Arc;
use std::time::Duration;

use hook_test_support::{Identity, Pki, ServerTls, TestServer, client_config};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::http::read_response;

const WAIT: Duration = Duration::from_secs(10);

/// Dials `server` over TLS as `host`, sends one GET and returns the status (None when the
/// handshake or the exchange failed).
async fn https_get(
    server: &TestServer,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> Option<u16> {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let mut tls = TlsConnector::from(config).connect(name, tcp).await.ok()?;
    let req = format!("GET /secure?x=1 HTTP/1.1\r\nHost: {host}\r\n\r\n");
    tls.write_all(req.as_bytes()).await.ok()?;
    tls.flush().await.ok()?;
    read_response(&mut BufReader::new(tls))
        .await
        .map(|(status, _, _)| status)
}

#[tokio::test]
async fn https_with_the_ca_works_for_ip_and_localhost() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().await;
    assert!(server.url("/h").starts_with("https://127.0.0.1:"));
    let trusting = client_config(&[pki.ca()], None);
    assert_eq!(
        https_get(&server, trusting.clone(), "127.0.0.1").await,
        Some(200)
    );
    assert_eq!(https_get(&server, trusting, "localhost").await, Some(200));
    let requests = server.wait_for_requests(2, WAIT).await;
    assert_eq!(requests[0].target, "/secure?x=1");
    assert!(requests[0].tls);
    assert!(!requests[0].client_cert_presented);
    assert_eq!(requests[0].client_cert_cn, None);
    assert_eq!(server.tls_handshake_failures(), 0);
}

#[tokio::test]
async fn a_client_not_trusting_the_ca_fails_the_handshake() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().await;
    let other = client_config(&[pki.other_ca()], None);
    assert_eq!(https_get(&server, other, "127.0.0.1").await, None);
    server.wait_for_handshake_failures(1, WAIT).await;
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn mutual_tls_records_the_client_cn_and_rejects_others() {
    let pki = Pki::new();
    let server = TestServer::builder()
        .tls(pki.mtls_server_tls())
        .start()
        .await;

    let with_cert = client_config(&[pki.ca()], Some(pki.client()));
    assert_eq!(https_get(&server, with_cert, "127.0.0.1").await, Some(200));
    let requests = server.wait_for_requests(1, WAIT).await;
    assert!(requests[0].client_cert_presented);
    assert_eq!(requests[0].client_cert_cn.as_deref(), Some("hook-client"));

    let without = client_config(&[pki.ca()], None);
    assert_eq!(https_get(&server, without, "127.0.0.1").await, None);
    server.wait_for_handshake_failures(1, WAIT).await;

    let rogue = client_config(&[pki.ca()], Some(pki.untrusted_client()));
    assert_eq!(https_get(&server, rogue, "127.0.0.1").await, None);
    server.wait_for_handshake_failures(2, WAIT).await;
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn optional_client_certificates_are_reported() {
    let pki = Pki::new();
    let second = pki.issue_client(pki.client_ca(), "second client", "second");
    let tls = ServerTls::optional_client_cert(pki.server(), pki.client_ca());
    let server = TestServer::builder().tls(tls).start().await;
    let anonymous = client_config(&[pki.ca()], None);
    let named = client_config(&[pki.ca()], Some(&second));
    assert_eq!(https_get(&server, anonymous, "localhost").await, Some(200));
    assert_eq!(https_get(&server, named, "localhost").await, Some(200));
    let requests = server.wait_for_requests(2, WAIT).await;
    let seen: Vec<_> = requests
        .iter()
        .map(|r| (r.client_cert_presented, r.client_cert_cn.clone()))
        .collect();
    assert_eq!(
        seen,
        [(false, None), (true, Some("second client".to_owned()))]
    );
}

/// basicConstraints (2.5.29.19) critical, value SEQUENCE { BOOLEAN TRUE }.
fn has_ca_true(identity: &Identity) -> bool {
    let der = identity.cert_der().as_ref();
    let needle = [
        0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff,
    ];
    der.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn self_signed_certificate_is_a_ca_and_served() {
    let pki = Pki::new();
    assert!(has_ca_true(pki.self_signed()));
    assert!(!has_ca_true(pki.server()));
    assert_eq!(pki.self_signed().ca_path(), pki.self_signed().cert_path());
    let pem = std::fs::read_to_string(pki.self_signed().cert_path()).unwrap();
    assert_eq!(pem, pki.self_signed().cert_pem());
    let key = std::fs::read_to_string(pki.self_signed().key_path()).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));

    // Served as is: a client trusting only the server CA rejects it.
    let server = TestServer::builder()
        .tls(pki.self_signed_server_tls())
        .start()
        .await;
    assert_eq!(
        https_get(&server, client_config(&[pki.ca()], None), "127.0.0.1").await,
        None
    );
    server.wait_for_handshake_failures(1, WAIT).await;
}

#[test]
fn identity_debug_hides_the_key() {
    let pki = Pki::new();
    let debug = format!("{:?}", pki.client());
    assert!(debug.contains("hook-client"));
    assert!(!debug.contains("PRIVATE KEY"));
    assert!(pki.client().combined_pem().contains("PRIVATE KEY"));
}
