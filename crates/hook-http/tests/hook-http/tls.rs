//! TLS (spec 4.6 with D13, D14): system roots plus configured CAs, a listed server certificate
//! trusted as Go trusts it, mutual TLS chosen per handshake, `skip_tls_verify`.

use std::path::Path;
use std::time::Duration;

use hook_config::{ConfigErrorKind, HookTarget, Loader};
use hook_core::ErrorKind;
use hook_http::HttpHook;
use hook_test_support::{Pki, ServerTls, TestServer, sample_event};

use crate::{WAIT, quick};

#[tokio::test]
async fn untrusted_certificate_fails_fast() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().await;
    let hook = HttpHook::builder(server.url("/hook")).build().unwrap(); // SFTPGo defaults: 3 retries, 2 s waits
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert_eq!(err.attempts(), 1);
    assert!(
        err.elapsed().unwrap() < Duration::from_secs(2),
        "not retried, no backoff"
    );
    assert_eq!(server.request_count(), 0);
}

/// A config dir with `sftpgo.json` listing `http` settings; certificate paths relative to it.
fn load(dir: &Path, url: &str, http: &str) -> HttpHook {
    let json = format!(
        r#"{{"common": {{"post_disconnect_hook": "{url}"}}, "http": {{"retry_max": 0{http}}}}}"#
    );
    std::fs::write(dir.join("sftpgo.json"), json).unwrap();
    let loaded = Loader::new()
        .config_dir(dir)
        .env_vars(Vec::<(String, String)>::new())
        .load()
        .unwrap();
    let HookTarget::Http(hook_url) = loaded.config.target().unwrap() else {
        panic!("not a URL")
    };
    HttpHook::from_config(&hook_url, &loaded.config.http, &loaded.config.hooks).unwrap()
}

#[tokio::test]
async fn ca_from_ca_certificates_relative_to_the_config_dir() {
    let pki = Pki::new();
    let server = TestServer::builder().tls(pki.server_tls()).start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::copy(pki.ca().cert_path(), dir.path().join("certs/ca.pem")).unwrap();
    let hook = load(
        dir.path(),
        &server.url("/hook"),
        r#", "ca_certificates": ["certs/ca.pem"]"#,
    );
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 1);
    let request = &server.wait_for_requests(1, WAIT).await[0];
    assert!(request.tls);
    // Go's default headers through reqwest too (https:// hooks).
    assert_eq!(request.header("user-agent"), Some("Go-http-client/1.1"));
    assert_eq!(request.header("accept-encoding"), Some("gzip"));
}

#[tokio::test]
async fn self_signed_ca_true_certificate_listed_is_trusted() {
    let pki = Pki::new();
    let server = TestServer::builder()
        .tls(pki.self_signed_server_tls())
        .start()
        .await;
    let listed = quick(&server.url("/hook"))
        .ca_certificate(pki.self_signed().cert_path())
        .build()
        .unwrap();
    listed.send(&sample_event()).await.unwrap();
    // Also by the other host names of the certificate.
    let by_name = quick(&server.url_with_host("localhost", "/hook"))
        .ca_certificate(pki.self_signed().cert_path())
        .build()
        .unwrap();
    by_name.send(&sample_event()).await.unwrap();
    // Not listed: refused.
    let unlisted = quick(&server.url("/hook"))
        .ca_certificate(pki.ca().cert_path())
        .build()
        .unwrap();
    assert_eq!(
        unlisted.send(&sample_event()).await.unwrap_err().kind(),
        ErrorKind::Tls
    );
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn a_listed_leaf_is_trusted_but_its_host_name_is_still_checked() {
    let pki = Pki::new();
    // The server's own CA-issued certificate listed without its CA: Go trusts it.
    let server = TestServer::builder().tls(pki.server_tls()).start().await;
    let hook = quick(&server.url("/hook"))
        .ca_certificate(pki.server().cert_path())
        .build()
        .unwrap();
    hook.send(&sample_event()).await.unwrap();

    // A listed certificate for other names: the host name check still fails, not retried.
    let wrong = pki.issue_server(pki.ca(), &["other.example"], "wrong");
    let server = TestServer::builder()
        .tls(ServerTls::new(&wrong))
        .start()
        .await;
    let hook = quick(&server.url("/hook"))
        .ca_certificate(wrong.cert_path())
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert_eq!(err.attempts(), 1);
    assert!(err.to_string().to_lowercase().contains("name"), "{err}");
    // And with its CA trusted the name mismatch is refused the same way.
    let hook = quick(&server.url("/hook"))
        .ca_certificate(pki.ca().cert_path())
        .build()
        .unwrap();
    assert_eq!(
        hook.send(&sample_event()).await.unwrap_err().kind(),
        ErrorKind::Tls
    );
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn mutual_tls_with_the_right_pair_and_without() {
    let pki = Pki::new();
    let server = TestServer::builder()
        .tls(pki.mtls_server_tls())
        .start()
        .await;
    let url = server.url("/hook");
    let with = quick(&url)
        .ca_certificate(pki.ca().cert_path())
        .client_certificate(pki.client().cert_path(), pki.client().key_path())
        .build()
        .unwrap();
    with.send(&sample_event()).await.unwrap();
    let request = &server.wait_for_requests(1, WAIT).await[0];
    assert_eq!(request.client_cert_cn.as_deref(), Some("hook-client"));

    // The server refusing us (an alert, not our own certificate check) is retried, as Go does.
    let without = quick(&url)
        .ca_certificate(pki.ca().cert_path())
        .retry_max(1)
        .build()
        .unwrap();
    let err = without.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert_eq!(err.attempts(), 2);
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    let wrong = quick(&url)
        .ca_certificate(pki.ca().cert_path())
        .client_certificate(
            pki.untrusted_client().cert_path(),
            pki.untrusted_client().key_path(),
        )
        .retry_max(0)
        .build()
        .unwrap();
    // No configured pair was issued by a CA the server names: like Go, no certificate is sent.
    let err = wrong.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn the_pair_is_chosen_from_the_ca_names_the_server_sends() {
    let pki = Pki::new();
    let server = TestServer::builder()
        .tls(pki.mtls_server_tls())
        .start()
        .await;
    // The pair the server does not accept comes first: D14 picks the one issued by the CA
    // the server names, in either order.
    let pairs = [
        (pki.untrusted_client(), pki.client()),
        (pki.client(), pki.untrusted_client()),
    ];
    for (i, (first, second)) in pairs.into_iter().enumerate() {
        let hook = quick(&server.url("/hook"))
            .ca_certificate(pki.ca().cert_path())
            .client_certificate(first.cert_path(), first.key_path())
            .client_certificate(second.cert_path(), second.key_path())
            .retry_max(0)
            .build()
            .unwrap();
        hook.send(&sample_event()).await.unwrap();
        let requests = server.wait_for_requests(i + 1, WAIT).await;
        assert_eq!(requests[i].client_cert_cn.as_deref(), Some("hook-client"));
    }
}

#[tokio::test]
async fn skip_tls_verify_accepts_anything() {
    let pki = Pki::new();
    let wrong = pki.issue_server(pki.other_ca(), &["other.example"], "wrong");
    for tls in [
        pki.server_tls(),
        pki.self_signed_server_tls(),
        ServerTls::new(&wrong),
    ] {
        let server = TestServer::builder().tls(tls).start().await;
        let hook = quick(&server.url("/hook"))
            .skip_tls_verify(true)
            .build()
            .unwrap();
        hook.send(&sample_event()).await.unwrap();
        assert_eq!(server.request_count(), 1);
    }
}

#[test]
fn certificate_file_errors_name_the_key_and_the_path() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let url = "https://127.0.0.1:1/hook";

    let err = HttpHook::builder(url)
        .ca_certificate(pki.ca().cert_path())
        .ca_certificate(&empty)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "http.ca_certificates[1]");
    assert!(
        err.to_string().contains("empty.pem") && err.to_string().contains("no PEM certificate"),
        "{err}"
    );

    let err = HttpHook::builder(url)
        .ca_certificate(&missing)
        .build()
        .unwrap_err();
    assert_eq!(
        (err.key(), err.kind()),
        ("http.ca_certificates[0]", ConfigErrorKind::Io)
    );
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let err = HttpHook::builder(url)
        .ca_certificate("a/..")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.key(), err.kind()),
        ("http.ca_certificates[0]", ConfigErrorKind::Invalid)
    );

    let err = HttpHook::builder(url)
        .client_certificate(pki.client().cert_path(), &missing)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "http.certificates[0].key");

    let err = HttpHook::builder(url)
        .client_certificate(&empty, pki.client().key_path())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "http.certificates[0].cert");

    // A certificate with another pair's key.
    let err = HttpHook::builder(url)
        .client_certificate(pki.client().cert_path(), pki.client().key_path())
        .client_certificate(pki.client().cert_path(), pki.untrusted_client().key_path())
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "http.certificates[1]");
    assert!(err.to_string().contains("unable to load key pair"), "{err}");
}

/// Runs `no_trust_store_child` in a child process whose system trust store is empty.
#[test]
fn works_without_a_system_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-bundle.pem");
    std::fs::write(&empty, "").unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tls::no_trust_store_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOOK_HTTP_NO_TRUST_STORE_CHILD", "1")
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
}

#[tokio::test]
async fn no_trust_store_child() {
    if std::env::var_os("HOOK_HTTP_NO_TRUST_STORE_CHILD").is_none() {
        return; // only meaningful in the child process started above
    }
    let plain = TestServer::start().await;
    quick(&plain.url("/hook"))
        .build()
        .unwrap()
        .send(&sample_event())
        .await
        .unwrap();
    let pki = Pki::new();
    let tls = TestServer::builder().tls(pki.server_tls()).start().await;
    let trusted = quick(&tls.url("/hook"))
        .ca_certificate(pki.ca().cert_path())
        .build()
        .unwrap();
    trusted.send(&sample_event()).await.unwrap();
    let untrusted = quick(&tls.url("/hook")).build().unwrap();
    assert_eq!(
        untrusted.send(&sample_event()).await.unwrap_err().kind(),
        ErrorKind::Tls
    );
}
