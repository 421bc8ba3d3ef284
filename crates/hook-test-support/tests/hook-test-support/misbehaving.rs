//! The misbehaving endpoints behave as documented, seen from a raw socket.

use std::time::Duration;

use hook_test_support::{MisbehavingServer, Misbehaviour};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REQUEST: &[u8] = b"GET /hook?username=a HTTP/1.1\r\nHost: x\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

async fn connect(server: &MisbehavingServer) -> TcpStream {
    let addr = server.url("").trim_start_matches("http://").to_owned();
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test]
async fn close_after_response_answers_without_connection_close_then_closes() {
    let server = MisbehavingServer::start(Misbehaviour::CloseAfterResponse, None).await;
    let mut stream = connect(&server).await;
    stream.write_all(REQUEST).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all))
        .await
        .expect("the server closes the connection")
        .unwrap();
    assert_eq!(all, OK, "a keep-alive response, then end of stream");
    assert_eq!(server.targets(), ["/hook?username=a"]);
}

#[tokio::test]
async fn close_when_idle_serves_back_to_back_requests_and_closes_an_idle_connection() {
    let server = MisbehavingServer::start(Misbehaviour::CloseWhenIdle, None).await;
    let mut stream = connect(&server).await;
    // Two requests in one write: the second is already there when the first is answered.
    stream
        .write_all(&[REQUEST, REQUEST].concat())
        .await
        .unwrap();
    let mut buf = vec![0u8; 2 * OK.len()];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, [OK, OK].concat());
    // Then idle: closed within a few milliseconds.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the idle connection is closed")
        .unwrap();
    assert!(rest.is_empty());
    assert_eq!(server.request_count(), 2);
    server
        .wait_for_open_at_most(0, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(server.accepted_connections(), 1);
}

#[tokio::test]
async fn trickle_body_sends_its_length_slowly() {
    let trickle = Misbehaviour::TrickleBody {
        len: 5,
        interval: Duration::from_millis(20),
    };
    let server = MisbehavingServer::start(trickle, None).await;
    let mut stream = connect(&server).await;
    stream.write_all(REQUEST).await.unwrap();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    let mut buf = vec![0u8; head.len() + 5];
    let started = std::time::Instant::now();
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf[..head.len()], head);
    assert_eq!(&buf[head.len()..], b"xxxxx");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "one byte per 20 ms"
    );
}
