//! Configured headers: scoping by URL prefix at a boundary (D9), later entries winning, and never
//! leaving the hook's origin through a redirect.

use hook_core::ErrorKind;
use hook_test_support::{Response, TestServer, sample_event};

use crate::{WAIT, quick};

#[tokio::test]
async fn prefixes_match_only_at_a_boundary() {
    let server = TestServer::start().await;
    let port = server.port();
    let base = format!("http://127.0.0.1:{port}");
    let lookalike = format!("http://127.0.0.1:{}", port / 10); // "…:4567" vs "…:45678"
    let hook = quick(&format!("{base}/hook"))
        .header("X-All", "all")
        .header_for_url("X-Origin", "origin", base.clone())
        .header_for_url("X-Origin-Slash", "slash", format!("{base}/"))
        .header_for_url("X-Exact", "exact", format!("{base}/hook"))
        .header_for_url("X-Mid", "mid", format!("{base}/ho"))
        .header_for_url("X-Longer", "longer", format!("{base}/hook/sub"))
        .header_for_url("X-Lookalike", "look", lookalike)
        .header_for_url("X-Case", "case", format!("HTTP://127.0.0.1:{port}/hook"))
        .header_for_url("X-Other", "other", "http://example.com/")
        .header("X-Dup", "one")
        .header("x-dup", "two")
        .build()
        .unwrap();
    hook.send(&sample_event()).await.unwrap();
    let request = &server.wait_for_requests(1, WAIT).await[0];
    for (name, value) in [
        ("x-all", "all"),
        ("x-origin", "origin"),
        ("x-origin-slash", "slash"),
        ("x-exact", "exact"),
    ] {
        assert_eq!(request.header(name), Some(value), "{name}");
    }
    for name in ["x-mid", "x-longer", "x-lookalike", "x-case", "x-other"] {
        assert_eq!(request.header(name), None, "{name} must not be sent");
    }
    assert_eq!(
        request.header_all("x-dup"),
        ["two"],
        "the later entry wins, one value"
    );
}

#[tokio::test]
async fn a_configured_authorization_replaces_the_user_info() {
    let server = TestServer::start().await;
    let url = format!("http://u:p@127.0.0.1:{}/hook", server.port());
    quick(&url)
        .build()
        .unwrap()
        .send(&sample_event())
        .await
        .unwrap();
    quick(&url)
        .header("Authorization", "Bearer t0k")
        .build()
        .unwrap()
        .send(&sample_event())
        .await
        .unwrap();
    let requests = server.wait_for_requests(2, WAIT).await;
    assert_eq!(requests[0].header_all("authorization"), ["Basic dTpw"]);
    assert_eq!(requests[1].header_all("authorization"), ["Bearer t0k"]);
}

#[tokio::test]
async fn cross_origin_redirect_is_not_followed_and_leaks_nothing() {
    let other = TestServer::start().await;
    let location = format!(
        "http://user:pw-in-location@127.0.0.1:{}/elsewhere",
        other.port()
    );
    let server = TestServer::builder()
        .default_response(Response::redirect(302, location))
        .start()
        .await;
    let hook = quick(&format!("http://u:p@127.0.0.1:{}/hook", server.port()))
        .header("X-Secret", "s3cret-header")
        .build()
        .unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_eq!(err.attempts(), 1, "a refused redirect is not retried");
    let text = err.to_string();
    assert!(text.contains("another origin"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}/elsewhere", other.port())),
        "{text}"
    );
    assert!(
        !text.contains("pw-in-location") && !text.contains("s3cret"),
        "{text}"
    );
    // The first server saw the header; the other origin saw nothing at all.
    assert_eq!(
        server.requests()[0].header("x-secret"),
        Some("s3cret-header")
    );
    assert_eq!(other.request_count(), 0);
    assert_eq!(other.accepted_connections(), 0);
}

#[tokio::test]
async fn same_origin_redirects_are_followed_with_the_headers() {
    let server = TestServer::builder()
        .respond_seq([
            Response::redirect(301, "/moved"),
            Response::redirect(307, "/moved-again?x=1"),
        ])
        .start()
        .await;
    let hook = quick(&format!("http://u:p@127.0.0.1:{}/hook", server.port()))
        .header("X-Secret", "v")
        .build()
        .unwrap();
    let delivery = hook.send(&sample_event()).await.unwrap();
    assert_eq!(delivery.attempts(), 1);
    let requests = server.wait_for_requests(3, WAIT).await;
    assert_eq!(requests[1].target, "/moved");
    assert_eq!(requests[2].target, "/moved-again?x=1");
    // Go's Referer on a followed redirect: the previous URL, without its user-info.
    assert_eq!(requests[0].header("referer"), None);
    let origin = format!("http://127.0.0.1:{}", server.port());
    let first = format!("{origin}{}", requests[0].target);
    assert_eq!(requests[1].header("referer"), Some(first.as_str()));
    let second = format!("{origin}/moved");
    assert_eq!(requests[2].header("referer"), Some(second.as_str()));
    for r in &requests {
        assert_eq!(r.header("x-secret"), Some("v"), "{}", r.target);
        assert_eq!(
            r.header("authorization"),
            Some("Basic dTpw"),
            "{}",
            r.target
        );
    }
}

#[tokio::test]
async fn a_redirect_loop_stops_after_ten_requests_like_go() {
    let server = TestServer::builder()
        .default_response(Response::redirect(302, "/loop"))
        .start()
        .await;
    let hook = quick(&server.url("/hook")).build().unwrap();
    let err = hook.send(&sample_event()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect);
    assert_eq!(err.attempts(), 1);
    assert!(
        err.to_string().contains("stopped after 10 redirects"),
        "{err}"
    );
    assert_eq!(server.request_count(), 10);
}
