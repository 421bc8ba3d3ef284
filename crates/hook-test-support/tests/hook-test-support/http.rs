//! Plain HTTP: recording, scripted responses, keep-alive, waiting, refused ports.

use std::time::Duration;

use hook_test_support::{RefusedPort, Response, TestServer, free_port};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// Reads one HTTP/1.1 response with a Content-Length body: (status, headers, body).
pub(crate) async fn read_response<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Option<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (n, v) = trimmed.split_once(':')?;
        headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await.ok()?;
    Some((status, headers, body))
}

async fn get(stream: &mut BufReader<TcpStream>, target: &str, extra: &str) {
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    stream.get_mut().write_all(req.as_bytes()).await.unwrap();
}

#[tokio::test]
async fn records_the_exact_target_headers_and_connection() {
    let server = TestServer::start().await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    let target = "/hook/path?connection_ip=2001%3Adb8%3A%3A1&username=a+b%26c&protocol=SFTP";
    get(
        &mut conn,
        target,
        "X-Custom: One\r\nX-Custom: Two\r\nAuthorization: Basic dTpw\r\n",
    )
    .await;
    let (status, _, body) = read_response(&mut conn).await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));

    let requests = server.wait_for_requests(1, WAIT).await;
    let r = &requests[0];
    assert_eq!(r.method, http::Method::GET);
    assert_eq!(r.target, target);
    assert_eq!(r.path(), "/hook/path");
    assert_eq!(
        r.query_param("connection_ip").as_deref(),
        Some("2001:db8::1")
    );
    assert_eq!(r.query_param("username").as_deref(), Some("a b&c"));
    assert_eq!(r.header_all("x-custom"), ["One", "Two"]);
    assert_eq!(r.header("AUTHORIZATION"), Some("Basic dTpw"));
    assert_eq!(r.header("host"), Some("127.0.0.1"));
    assert_eq!(r.connection_id, 0);
    assert!(!r.tls && !r.client_cert_presented && r.client_cert_cn.is_none());
    assert_eq!(
        server.url("/x"),
        format!("http://127.0.0.1:{}/x", server.port())
    );
}

#[tokio::test]
async fn response_sequence_is_served_in_order_then_the_default() {
    let server = TestServer::builder()
        .respond_seq([
            Response::status(500),
            Response::status(503).header("Retry-After", "1"),
            Response::redirect(302, "http://other.invalid/next"),
        ])
        .default_response(Response::status(204))
        .start()
        .await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    let mut seen = Vec::new();
    for i in 0..5 {
        get(&mut conn, &format!("/{i}"), "").await;
        seen.push(read_response(&mut conn).await.unwrap());
    }
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(statuses, [500, 503, 302, 204, 204]);
    let header = |i: usize, n: &str| {
        seen[i]
            .1
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header(1, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        header(2, "location").as_deref(),
        Some("http://other.invalid/next")
    );
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/0", "/1", "/2", "/3", "/4"]);
}

#[tokio::test]
async fn keep_alive_requests_share_one_connection() {
    let server = TestServer::start().await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    for _ in 0..2 {
        get(&mut conn, "/k", "").await;
        assert_eq!(read_response(&mut conn).await.unwrap().0, 200);
    }
    let requests = server.wait_for_requests(2, WAIT).await;
    assert_eq!(server.accepted_connections(), 1);
    assert_eq!(requests[0].connection_id, requests[1].connection_id);

    // A second connection gets a new id.
    let mut other = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut other, "/k", "").await;
    read_response(&mut other).await.unwrap();
    let requests = server.wait_for_requests(3, WAIT).await;
    assert_eq!(server.accepted_connections(), 2);
    assert_eq!(requests[2].connection_id, 1);
}

#[tokio::test]
async fn keep_alive_off_closes_after_each_response() {
    let server = TestServer::builder().keep_alive(false).start().await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/once", "").await;
    let (status, headers, _) = read_response(&mut conn).await.unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains(&("connection".into(), "close".into())));
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn close_drops_the_connection_without_a_response() {
    let server = TestServer::builder()
        .respond_seq([Response::close()])
        .start()
        .await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/reset", "").await;
    let mut rest = Vec::new();
    // EOF or a reset, but never a byte of response.
    let _ = conn.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "got {:?}", String::from_utf8_lossy(&rest));
    assert_eq!(server.wait_for_requests(1, WAIT).await[0].target, "/reset");

    // The next connection gets the default answer.
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/again", "").await;
    assert_eq!(read_response(&mut conn).await.unwrap().0, 200);
}

#[tokio::test(start_paused = true)]
async fn delay_holds_the_answer() {
    let server = TestServer::builder()
        .default_response(Response::status(201).delay(Duration::from_secs(30)))
        .start()
        .await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/slow", "").await;
    server.wait_for_requests(1, WAIT).await;
    let early = tokio::time::timeout(Duration::from_secs(29), read_response(&mut conn)).await;
    assert!(early.is_err(), "answered before the delay");
    let (status, _, _) = read_response(&mut conn).await.unwrap();
    assert_eq!(status, 201);
}

#[tokio::test]
async fn respond_with_and_runtime_changes() {
    let server = TestServer::builder()
        .respond_with(|r| {
            if r.path() == "/teapot" {
                Response::status(418)
            } else {
                Response::ok()
            }
        })
        .start()
        .await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/teapot", "").await;
    assert_eq!(read_response(&mut conn).await.unwrap().0, 418);
    server.push_responses([Response::status(500)]);
    get(&mut conn, "/teapot", "").await;
    assert_eq!(read_response(&mut conn).await.unwrap().0, 500);
    server.set_default_response(Response::status(202).body("accepted"));
    get(&mut conn, "/teapot", "").await;
    let (status, _, body) = read_response(&mut conn).await.unwrap();
    assert_eq!((status, body.as_slice()), (202, &b"accepted"[..]));
}

#[tokio::test]
async fn waiting_times_out_with_a_count() {
    let server = TestServer::start().await;
    let err = server
        .try_wait_for_requests(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("waiting for 1 requests; saw 0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_requests_over_a_few_connections() {
    let server = TestServer::start().await;
    let addr = server.addr();
    let mut tasks = Vec::new();
    for c in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
            for i in 0..500 {
                get(&mut conn, &format!("/{c}/{i}"), "").await;
                assert_eq!(read_response(&mut conn).await.unwrap().0, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let requests = server.wait_for_requests(2000, WAIT).await;
    assert_eq!(requests.len(), 2000);
    assert_eq!(server.accepted_connections(), 4);
}

#[test]
fn blocking_server_for_synchronous_tests() {
    let server = TestServer::builder()
        .respond_seq([Response::status(500)])
        .start_blocking();
    let mut conn = std::net::TcpStream::connect(server.addr()).unwrap();
    std::io::Write::write_all(&mut conn, b"GET /sync HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let requests = server.blocking_wait_for_requests(1, WAIT);
    assert_eq!(requests[0].target, "/sync");
    let mut buf = [0u8; 12];
    std::io::Read::read_exact(&mut conn, &mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 500");
}

#[tokio::test]
async fn refused_port_refuses_and_free_port_is_bindable() {
    let refused = RefusedPort::new();
    let err = TcpStream::connect(refused.addr()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        refused.url("/h"),
        format!("http://127.0.0.1:{}/h", refused.port())
    );
    let port = free_port();
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[tokio::test]
async fn dropping_the_server_closes_connections() {
    let server = TestServer::start().await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/a", "").await;
    read_response(&mut conn).await.unwrap();
    drop(server);
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn reset_sends_a_tcp_reset_without_a_response() {
    let server = TestServer::builder()
        .respond_seq([Response::reset()])
        .start()
        .await;
    let mut conn = BufReader::new(TcpStream::connect(server.addr()).await.unwrap());
    get(&mut conn, "/rst", "").await;
    let mut rest = Vec::new();
    let err = conn.read_to_end(&mut rest).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(rest.is_empty());
    assert_eq!(server.wait_for_requests(1, WAIT).await[0].target, "/rst");
}
