//! D11: no log line, error message or `Debug` output holds the URL password or a header value.

use std::io::Write;
use std::sync::{Arc, Mutex};

use hook_test_support::{Pki, RefusedPort, Response, TestServer, sample_event};
use tracing_subscriber::fmt::MakeWriter;

use crate::quick;

const PASSWORD: &str = "pw-S3cret-9f2";
const HEADER_VALUE: &str = "hdr-S3cret-7c1";
const AUTH_VALUE: &str = "Bearer auth-S3cret-4d8";

/// A `MakeWriter` collecting everything written into one buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn assert_clean(what: &str, text: &str) {
    for secret in [PASSWORD, HEADER_VALUE, "auth-S3cret"] {
        assert!(!text.contains(secret), "{what} leaks {secret:?}:\n{text}");
    }
}

#[tokio::test]
async fn failures_log_and_report_without_secrets() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let pki = Pki::new();
    let failing = TestServer::builder()
        .default_response(Response::status(500))
        .start()
        .await;
    let ok = TestServer::start().await;
    let tls = TestServer::builder().tls(pki.server_tls()).start().await;
    let refused = RefusedPort::new();
    let targets = [
        (failing.port(), "http", true),
        (refused.port(), "http", true),
        (tls.port(), "https", true),
        (ok.port(), "http", false),
    ];
    let mut outputs = Vec::new();
    for (port, scheme, fails) in targets {
        let url = format!("{scheme}://user:{PASSWORD}@127.0.0.1:{port}/hook?token=t");
        let builder = quick(&url)
            .retry_max(1)
            .header("X-Api-Key", HEADER_VALUE)
            .header_for_url(
                "Authorization",
                AUTH_VALUE,
                format!("{scheme}://user:{PASSWORD}@127.0.0.1:{port}/"),
            )
            .skip_tls_verify(false);
        outputs.push(format!("{builder:?}"));
        let hook = builder.build().unwrap();
        outputs.push(format!("{hook:?}"));
        outputs.push(hook.redacted_url().to_owned());
        match hook.send(&sample_event()).await {
            Err(err) => {
                assert!(fails, "{err}");
                outputs.push(err.to_string());
                outputs.push(format!("{err:?}"));
                let mut source = std::error::Error::source(&err);
                while let Some(s) = source {
                    outputs.push(s.to_string());
                    outputs.push(format!("{s:?}"));
                    source = s.source();
                }
            }
            Ok(delivery) => {
                assert!(!fails);
                outputs.push(format!("{delivery:?}"));
            }
        }
    }
    // The requests did carry the secrets...
    let request = &ok.requests()[0];
    assert_eq!(request.header("x-api-key"), Some(HEADER_VALUE));
    assert_eq!(request.header("authorization"), Some(AUTH_VALUE));
    // ...and nothing else did.
    for output in &outputs {
        assert_clean("an error or Debug output", output);
    }
    let text = logs.text();
    assert!(
        text.contains("post-disconnect hook failed"),
        "no failure logged:\n{text}"
    );
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains(&format!("user:xxxxx@127.0.0.1:{}", failing.port())),
        "{text}"
    );
    assert_clean("the logs", &text);
}

#[test]
fn configuration_errors_hold_no_secrets() {
    let url = format!("http://user:{PASSWORD}@127.0.0.1:1/hook");
    let bad_header = format!("{HEADER_VALUE}\r\nX-Injected: 1");
    let err = hook_http::HttpHook::builder(&url)
        .header("X-Api-Key", bad_header)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "http.headers[0].value");
    assert_clean("a header error", &format!("{err} {err:?}"));

    let err = hook_http::HttpHook::builder(format!("ftp://user:{PASSWORD}@h/"))
        .build()
        .unwrap_err();
    assert_clean("a URL error", &format!("{err} {err:?}"));
    let err = hook_http::HttpHook::builder(format!("http://user:{PASSWORD}@h/a%zz"))
        .build()
        .unwrap_err();
    assert_clean("a URL error", &format!("{err} {err:?}"));
}
