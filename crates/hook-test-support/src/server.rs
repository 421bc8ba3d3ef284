//! The recording loopback HTTP(S) server.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::tls::{ServerTls, subject_common_name};

/// One request as the server received it.
///
/// Header names are lower-case (hyper normalises them); values are decoded lossily as UTF-8.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request target exactly as on the request line: path and query (`/hook?a=b`).
    pub target: String,
    /// The HTTP version of the request line.
    pub version: Version,
    /// The headers in the order received, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The request body (empty for a GET).
    pub body: Bytes,
    /// When the request head had arrived.
    pub received_at: Instant,
    /// The accept-order index of the TCP connection it came on (0 for the first connection).
    pub connection_id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// Whether the client presented a certificate during the TLS handshake.
    pub client_cert_presented: bool,
    /// The subject common name of the client's certificate, if one was presented and has a CN.
    pub client_cert_cn: Option<String>,
}

impl RecordedRequest {
    /// The path part of the target (before any `?`).
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The raw query string (after the first `?`), if there is one.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The query decoded as `application/x-www-form-urlencoded` pairs, in order.
    ///
    /// `+` decodes to a space and `%XX` to its byte; invalid escapes are kept literally.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let Some(query) = self.query() else {
            return Vec::new();
        };
        query
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                (form_decode(k), form_decode(v))
            })
            .collect()
    }

    /// The decoded value of the first query parameter named `key`.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Respond,
    Close,
    Reset,
}

/// A scripted answer: status, headers, body, an optional delay, or closing without answering.
///
/// ```
/// use std::time::Duration;
/// use hook_test_support::Response;
///
/// let retry = Response::status(503).header("Retry-After", "1");
/// let redirect = Response::redirect(302, "http://127.0.0.1:9/elsewhere");
/// let slow = Response::ok().delay(Duration::from_millis(200));
/// let eof = Response::close(); // drop the connection without a response
/// let reset = Response::reset(); // the same, with a TCP reset
/// # let _ = (retry, redirect, slow, eof, reset);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
    action: Action,
}

impl Response {
    /// `200 OK` with body `ok\n`: the default answer.
    pub fn ok() -> Self {
        Response::status(200).body("ok\n")
    }

    /// An answer with `status` and an empty body.
    ///
    /// # Panics
    /// If `status` is not in 100..=999.
    pub fn status(status: u16) -> Self {
        Response {
            status: StatusCode::from_u16(status).expect("valid HTTP status code"),
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
            action: Action::Respond,
        }
    }

    /// A redirect: `status` (301, 302, 303, 307, 308) with `Location: location`.
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Response::status(status).header("Location", location)
    }

    /// Close the connection without sending any response (the client sees the connection end
    /// before a response: "connection closed before message completed").
    pub fn close() -> Self {
        Response {
            action: Action::Close,
            ..Response::status(200)
        }
    }

    /// Reset the connection without sending any response: the socket is closed with
    /// `SO_LINGER` 0, so the client reads `ECONNRESET` ("connection reset by peer").
    pub fn reset() -> Self {
        Response {
            action: Action::Reset,
            ..Response::status(200)
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits this long after the request arrived before answering (or closing).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The status this response sends.
    pub fn status_code(&self) -> u16 {
        self.status.as_u16()
    }

    /// Whether this response closes or resets the connection instead of answering.
    pub fn is_close(&self) -> bool {
        self.action != Action::Respond
    }
}

impl Default for Response {
    fn default() -> Self {
        Response::ok()
    }
}

type Handler = Arc<dyn Fn(&RecordedRequest) -> Response + Send + Sync>;

struct Inner {
    requests: Vec<RecordedRequest>,
    queue: VecDeque<Response>,
    default: Response,
    handler: Option<Handler>,
    accepted: u64,
    open: u64,
    handshake_failures: u64,
}

struct State {
    inner: Mutex<Inner>,
    cond: Condvar,
    changed: watch::Sender<()>,
    tls: Option<ServerTls>,
    keep_alive: bool,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `f` under the lock and wakes every waiter.
    fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = f(&mut self.lock());
        self.cond.notify_all();
        self.changed.send_replace(());
        r
    }
}

/// Configures a [`TestServer`]; from [`TestServer::builder`].
#[must_use]
pub struct TestServerBuilder {
    queue: VecDeque<Response>,
    default: Response,
    handler: Option<Handler>,
    tls: Option<ServerTls>,
    keep_alive: bool,
    port: u16,
}

impl fmt::Debug for TestServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServerBuilder")
            .field("queue", &self.queue)
            .field("default", &self.default)
            .field("handler", &self.handler.as_ref().map(|_| "Fn"))
            .field("tls", &self.tls)
            .field("keep_alive", &self.keep_alive)
            .field("port", &self.port)
            .finish()
    }
}

impl TestServerBuilder {
    /// Listens on this port of `127.0.0.1` (default 0: any free port); to bring an endpoint
    /// back on the port a stopped one used (connections refused in between).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Answers the first requests with these responses, in order; then the default.
    pub fn respond_seq(mut self, responses: impl IntoIterator<Item = Response>) -> Self {
        self.queue.extend(responses);
        self
    }

    /// The answer once the sequence is used up (default: [`Response::ok`]).
    pub fn default_response(mut self, response: Response) -> Self {
        self.default = response;
        self
    }

    /// Computes the answer from the request once the sequence is used up (instead of the
    /// default response).
    pub fn respond_with(
        mut self,
        handler: impl Fn(&RecordedRequest) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// Serves HTTPS with this TLS configuration.
    pub fn tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Whether connections are kept alive between requests (default `true`). With `false`,
    /// every response carries `Connection: close` and the server closes after it.
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    fn bind(self) -> (std::net::TcpListener, Arc<State>) {
        let listener =
            std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
                .unwrap_or_else(|e| panic!("bind 127.0.0.1:{}: {e}", self.port));
        listener.set_nonblocking(true).expect("set_nonblocking");
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                requests: Vec::new(),
                queue: self.queue,
                default: self.default,
                handler: self.handler,
                accepted: 0,
                open: 0,
                handshake_failures: 0,
            }),
            cond: Condvar::new(),
            changed: watch::Sender::new(()),
            tls: self.tls,
            keep_alive: self.keep_alive,
        });
        (listener, state)
    }

    /// Starts the server on `127.0.0.1:0` inside the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if binding fails.
    pub async fn start(self) -> TestServer {
        let (listener, state) = self.bind();
        let addr = listener.local_addr().expect("local_addr");
        let listener = tokio::net::TcpListener::from_std(listener).expect("register listener");
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        TestServer {
            addr,
            state,
            runner: Runner::Task(task),
        }
    }

    /// Starts the server on its own thread with its own single-threaded runtime, for
    /// synchronous tests (for example ones that run a binary with `std::process::Command`).
    /// Use the `blocking_*` waits with it.
    ///
    /// # Panics
    /// If binding fails or the runtime cannot be built.
    pub fn start_blocking(self) -> TestServer {
        let (listener, state) = self.bind();
        let addr = listener.local_addr().expect("local_addr");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("hook-test-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("register listener");
                    tokio::select! {
                        () = accept_loop(listener, thread_state) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("spawn server thread");
        TestServer {
            addr,
            state,
            runner: Runner::Thread {
                stop: Some(stop),
                thread: Some(thread),
            },
        }
    }
}

enum Runner {
    Task(tokio::task::JoinHandle<()>),
    Thread {
        stop: Option<oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

/// Timed out waiting for the server to see something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitTimedOut {
    what: &'static str,
    wanted: u64,
    seen: u64,
    timeout: Duration,
}

impl fmt::Display for WaitTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {} {}; saw {}",
            self.timeout, self.wanted, self.what, self.seen
        )
    }
}

impl std::error::Error for WaitTimedOut {}

impl WaitTimedOut {
    pub(crate) fn new(what: &'static str, wanted: u64, seen: u64, timeout: Duration) -> Self {
        WaitTimedOut {
            what,
            wanted,
            seen,
            timeout,
        }
    }
}

/// A loopback HTTP/1.1 (or HTTPS) server that records every request and answers from a script.
///
/// Dropping it stops accepting and closes every connection. See the [crate docs](crate) for an
/// example.
///
/// [`TestServerBuilder::start`] runs it on the caller's tokio runtime: a test that blocks that
/// runtime's only thread (say, `std::process::Command::output()` in a current-thread
/// `#[tokio::test]`) starves it. Use [`TestServerBuilder::start_blocking`] there.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    runner: Runner,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("tls", &self.state.tls.is_some())
            .field("requests", &self.request_count())
            .field("accepted_connections", &self.accepted_connections())
            .finish()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Requests,
    Accepted,
    HandshakeFailures,
}

impl Counter {
    fn get(self, inner: &Inner) -> u64 {
        match self {
            Counter::Requests => inner.requests.len() as u64,
            Counter::Accepted => inner.accepted,
            Counter::HandshakeFailures => inner.handshake_failures,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Counter::Requests => "requests",
            Counter::Accepted => "accepted connections",
            Counter::HandshakeFailures => "failed TLS handshakes",
        }
    }
}

impl TestServer {
    /// A builder: scripted responses, TLS, keep-alive.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            queue: VecDeque::new(),
            default: Response::ok(),
            handler: None,
            tls: None,
            keep_alive: true,
            port: 0,
        }
    }

    /// A plain-HTTP server answering every request with [`Response::ok`].
    pub async fn start() -> TestServer {
        TestServer::builder().start().await
    }

    /// The listening address (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `scheme://127.0.0.1:port` followed by `path` (a `/` is inserted if `path` lacks one).
    pub fn url(&self, path: &str) -> String {
        self.url_with_host("127.0.0.1", path)
    }

    /// Like [`url`](Self::url) with another host name, e.g. `localhost`.
    pub fn url_with_host(&self, host: &str, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{}://{host}:{}{slash}{path}", self.scheme(), self.port())
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }

    /// How many requests have been received.
    pub fn request_count(&self) -> usize {
        self.state.lock().requests.len()
    }

    /// How many TCP connections have been accepted (TLS or not, handshake succeeded or not).
    pub fn accepted_connections(&self) -> u64 {
        self.state.lock().accepted
    }

    /// How many connections are open right now.
    pub fn open_connections(&self) -> u64 {
        self.state.lock().open
    }

    /// How many TLS handshakes failed (for example a client rejecting the certificate, or a
    /// missing client certificate under mutual TLS).
    pub fn tls_handshake_failures(&self) -> u64 {
        self.state.lock().handshake_failures
    }

    /// Appends responses to the scripted sequence.
    pub fn push_responses(&self, responses: impl IntoIterator<Item = Response>) {
        self.state.update(|inner| inner.queue.extend(responses));
    }

    /// Replaces the default response (and removes any [`respond_with`] handler).
    ///
    /// [`respond_with`]: TestServerBuilder::respond_with
    pub fn set_default_response(&self, response: Response) {
        self.state.update(|inner| {
            inner.default = response;
            inner.handler = None;
        });
    }

    /// Waits until at least `n` requests have arrived and returns all requests so far.
    ///
    /// # Panics
    /// On timeout, with how many arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        match self.try_wait_for_requests(n, timeout).await {
            Ok(requests) => requests,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`wait_for_requests`](Self::wait_for_requests), returning an error on timeout.
    pub async fn try_wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, WaitTimedOut> {
        self.wait_counter(Counter::Requests, n as u64, timeout)
            .await?;
        Ok(self.requests())
    }

    /// Waits until at least `n` connections have been accepted.
    ///
    /// # Panics
    /// On timeout.
    pub async fn wait_for_connections(&self, n: u64, timeout: Duration) {
        if let Err(e) = self.wait_counter(Counter::Accepted, n, timeout).await {
            panic!("{e}");
        }
    }

    /// Waits until at least `n` TLS handshakes have failed.
    ///
    /// # Panics
    /// On timeout.
    pub async fn wait_for_handshake_failures(&self, n: u64, timeout: Duration) {
        if let Err(e) = self
            .wait_counter(Counter::HandshakeFailures, n, timeout)
            .await
        {
            panic!("{e}");
        }
    }

    /// Blocking [`wait_for_requests`](Self::wait_for_requests) for synchronous tests. Never
    /// call it on a thread that drives this server's runtime.
    ///
    /// # Panics
    /// On timeout.
    pub fn blocking_wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.state.lock();
        while inner.requests.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = WaitTimedOut {
                    what: Counter::Requests.name(),
                    wanted: n as u64,
                    seen: inner.requests.len() as u64,
                    timeout,
                };
                drop(inner);
                panic!("{e}");
            }
            inner = self
                .state
                .cond
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        inner.requests.clone()
    }

    async fn wait_counter(
        &self,
        c: Counter,
        n: u64,
        timeout: Duration,
    ) -> Result<(), WaitTimedOut> {
        let mut changed = self.state.changed.subscribe();
        let wait = async {
            loop {
                if c.get(&self.state.lock()) >= n {
                    return;
                }
                // The sender lives as long as `self`.
                let _ = changed.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitTimedOut {
                what: c.name(),
                wanted: n,
                seen: c.get(&self.state.lock()),
                timeout,
            })
    }

    /// Stops accepting and closes every connection; the recorded requests stay readable.
    pub fn shutdown(&mut self) {
        match &mut self.runner {
            Runner::Task(task) => task.abort(),
            Runner::Thread { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors and the like: back off briefly rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = state.update(|inner| {
            inner.accepted += 1;
            inner.open += 1;
            inner.accepted - 1
        });
        let state = state.clone();
        connections.spawn(async move {
            let _open = OpenGuard(state.clone());
            serve_connection(stream, peer, id, state).await;
        });
    }
}

struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.update(|inner| inner.open -= 1);
    }
}

#[derive(Clone, Copy)]
struct ConnInfo {
    id: u64,
    peer: SocketAddr,
    tls: bool,
    client_cert_presented: bool,
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, id: u64, state: Arc<State>) {
    let info = ConnInfo {
        id,
        peer,
        tls: false,
        client_cert_presented: false,
    };
    let reset = Arc::new(AtomicBool::new(false));
    let stream = ResettableIo {
        stream,
        reset: reset.clone(),
    };
    match state.tls.clone() {
        None => serve_http(stream, info, None, reset, state).await,
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config().clone());
            match acceptor.accept(stream).await {
                Ok(tls_stream) => {
                    let certs = tls_stream.get_ref().1.peer_certificates();
                    let presented = certs.is_some_and(|c| !c.is_empty());
                    let cn = certs
                        .and_then(|c| c.first())
                        .and_then(|c| subject_common_name(c));
                    let info = ConnInfo {
                        tls: true,
                        client_cert_presented: presented,
                        ..info
                    };
                    serve_http(tls_stream, info, cn, reset, state).await;
                }
                Err(_) => state.update(|inner| inner.handshake_failures += 1),
            }
        }
    }
}

/// The service error that makes hyper drop the connection without answering.
#[derive(Debug)]
struct CloseWithoutResponse;

impl fmt::Display for CloseWithoutResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scripted close without response")
    }
}

impl std::error::Error for CloseWithoutResponse {}

async fn serve_http<S>(
    io: S,
    info: ConnInfo,
    cn: Option<String>,
    reset: Arc<AtomicBool>,
    state: Arc<State>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let keep_alive = state.keep_alive;
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let state = state.clone();
        let cn = cn.clone();
        let reset = reset.clone();
        async move {
            let received_at = Instant::now();
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let record = RecordedRequest {
                method: parts.method,
                target: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned()),
                version: parts.version,
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body,
                received_at,
                connection_id: info.id,
                peer: info.peer,
                tls: info.tls,
                client_cert_presented: info.client_cert_presented,
                client_cert_cn: cn,
            };
            let response = state.update(|inner| {
                let response = match inner.queue.pop_front() {
                    Some(r) => r,
                    None => match &inner.handler {
                        Some(handler) => handler(&record),
                        None => inner.default.clone(),
                    },
                };
                inner.requests.push(record);
                response
            });
            if !response.delay.is_zero() {
                tokio::time::sleep(response.delay).await;
            }
            match response.action {
                Action::Respond => {}
                Action::Close => return Err(CloseWithoutResponse),
                Action::Reset => {
                    reset.store(true, Ordering::SeqCst);
                    return Err(CloseWithoutResponse);
                }
            }
            let mut builder = hyper::Response::builder().status(response.status);
            for (name, value) in &response.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            if !keep_alive {
                builder = builder.header("connection", "close");
            }
            Ok::<_, CloseWithoutResponse>(
                builder
                    .body(Full::new(response.body))
                    .expect("valid scripted response"),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// The accepted stream; closed with `SO_LINGER` 0 (a TCP reset) when `reset` is set.
struct ResettableIo {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.reset.load(Ordering::SeqCst) {
            // No FIN before the reset.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to `:0`, then released).
///
/// Another process may take it before you use it; for a connection-refused test prefer
/// [`RefusedPort`], which holds the port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A port on 127.0.0.1 where connections are refused, held for as long as this value lives.
///
/// The port is bound by a socket that never listens, so nobody else can take it and every
/// connection attempt gets `ECONNREFUSED`.
#[derive(Debug)]
pub struct RefusedPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl RefusedPort {
    /// Reserves a refusing port.
    ///
    /// # Panics
    /// If no socket can be bound.
    pub fn new() -> RefusedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind 127.0.0.1:0");
        let addr = socket.local_addr().expect("local_addr");
        RefusedPort {
            _socket: socket,
            addr,
        }
    }

    /// The refusing address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The refusing port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:port` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://127.0.0.1:{}{slash}{path}", self.port())
    }
}

impl Default for RefusedPort {
    fn default() -> Self {
        RefusedPort::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%26c%3D%2B"), "a b&c=+");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(form_decode("%C3%BC"), "ü");
    }

    #[test]
    fn target_parts() {
        let server_addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let r = RecordedRequest {
            method: Method::GET,
            target: "/p?x=1&&y&x=2".into(),
            version: Version::HTTP_11,
            headers: Vec::new(),
            body: Bytes::new(),
            received_at: Instant::now(),
            connection_id: 0,
            peer: server_addr,
            tls: false,
            client_cert_presented: false,
            client_cert_cn: None,
        };
        assert_eq!(r.path(), "/p");
        assert_eq!(r.query(), Some("x=1&&y&x=2"));
        let pairs = r.query_pairs();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[1], ("y".to_owned(), String::new()));
        assert_eq!(r.query_param("x").as_deref(), Some("1"));
    }
}
