//! Loopback HTTP(S) endpoints that misbehave the way real ones do, on real sockets and with a
//! hand-written HTTP/1.1 server (hyper's server would not misbehave on request).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::server::WaitTimedOut;
use crate::tls::ServerTls;

/// How a [`MisbehavingServer`] misbehaves. Every answer is a `200 OK` to a `GET`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Answers with `Content-Length: 0` and no `Connection: close`, then closes the connection
    /// at once (over TLS after a `close_notify`), as many proxies, serverless front ends and
    /// small servers do: the client believes the connection is reusable.
    CloseAfterResponse,
    /// Keeps connections alive, but closes one (over TLS after a `close_notify`) once it has
    /// been idle for 0 ms or 1 ms (alternating per response), before the next request arrives.
    CloseWhenIdle,
    /// Answers with `Content-Length: len` and sends the body one byte every `interval`, then
    /// keeps the connection alive.
    TrickleBody {
        /// The body's length.
        len: usize,
        /// The pause before each byte.
        interval: Duration,
    },
    /// Answers with a chunked body that never ends (a 64-byte chunk every 10 ms).
    EndlessBody,
}

struct Shared {
    targets: Mutex<Vec<String>>,
    accepted: AtomicU64,
    open: AtomicU64,
    changed: watch::Sender<()>,
}

impl Shared {
    fn targets(&self) -> MutexGuard<'_, Vec<String>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A loopback endpoint that [misbehaves](Misbehaviour); records each request's target.
///
/// ```no_run
/// use hook_test_support::{MisbehavingServer, Misbehaviour};
///
/// # async fn demo() {
/// let server = MisbehavingServer::start(Misbehaviour::CloseAfterResponse, None).await;
/// let url = server.url("/hook"); // http://127.0.0.1:<port>/hook
/// # let _ = url;
/// assert_eq!(server.request_count(), 0);
/// # }
/// ```
pub struct MisbehavingServer {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for MisbehavingServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MisbehavingServer")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Drop for MisbehavingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MisbehavingServer {
    /// Starts the endpoint on `127.0.0.1:0` in the current tokio runtime; HTTPS with `tls`.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if binding fails.
    pub async fn start(behaviour: Misbehaviour, tls: Option<ServerTls>) -> MisbehavingServer {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            targets: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            changed: watch::Sender::new(()),
        });
        let is_tls = tls.is_some();
        let task = tokio::spawn(accept_loop(listener, behaviour, tls, shared.clone()));
        MisbehavingServer {
            addr,
            tls: is_tls,
            shared,
            task,
        }
    }

    /// `http(s)://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// The request targets received so far (path and query), in arrival order.
    pub fn targets(&self) -> Vec<String> {
        self.shared.targets().clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.shared.targets().len()
    }

    /// How many connections were accepted.
    pub fn accepted_connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> u64 {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived.
    ///
    /// # Errors
    /// [`WaitTimedOut`] after `timeout`.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<String>, WaitTimedOut> {
        self.wait_until(timeout, "requests", n as u64, || {
            self.request_count() as u64
        })
        .await?;
        Ok(self.targets())
    }

    /// Waits until at most `n` connections are open.
    ///
    /// # Errors
    /// [`WaitTimedOut`] after `timeout`.
    pub async fn wait_for_open_at_most(
        &self,
        n: u64,
        timeout: Duration,
    ) -> Result<(), WaitTimedOut> {
        let mut changed = self.shared.changed.subscribe();
        let wait = async {
            while self.open_connections() > n {
                if changed.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            WaitTimedOut::new(
                "open connections at most",
                n,
                self.open_connections(),
                timeout,
            )
        })
    }

    async fn wait_until(
        &self,
        timeout: Duration,
        what: &'static str,
        wanted: u64,
        seen: impl Fn() -> u64,
    ) -> Result<(), WaitTimedOut> {
        let mut changed = self.shared.changed.subscribe();
        let wait = async {
            while seen() < wanted {
                if changed.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitTimedOut::new(what, wanted, seen(), timeout))
    }
}

async fn accept_loop(
    listener: TcpListener,
    behaviour: Misbehaviour,
    tls: Option<ServerTls>,
    shared: Arc<Shared>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.open.fetch_add(1, Ordering::SeqCst);
        shared.changed.send_replace(());
        let shared = shared.clone();
        let behaviour = behaviour.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => serve(stream, &behaviour, &shared).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config().clone());
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve(stream, &behaviour, &shared).await;
                    }
                }
            }
            shared.open.fetch_sub(1, Ordering::SeqCst);
            shared.changed.send_replace(());
        });
    }
}

/// Serves one connection; returning drops (closes) it.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    behaviour: &Misbehaviour,
    shared: &Shared,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut served = 0u64;
    loop {
        // Read one request head (GET: no body).
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            let idle = buf.is_empty() && served > 0;
            let read = if idle && *behaviour == Misbehaviour::CloseWhenIdle {
                let wait = Duration::from_millis(served % 2);
                match tokio::time::timeout(wait, read_some(&mut io, &mut buf)).await {
                    Ok(n) => n,
                    Err(_) => {
                        // Idle too long: close, politely (FIN; close_notify over TLS).
                        let _ = io.shutdown().await;
                        return;
                    }
                }
            } else {
                read_some(&mut io, &mut buf).await
            };
            if read == 0 {
                return;
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned();
        shared.targets().push(target);
        shared.changed.send_replace(());
        served += 1;
        match behaviour {
            Misbehaviour::CloseAfterResponse => {
                let _ = io
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await;
                let _ = io.flush().await;
                // Close a moment later, as a server does after its cleanup: the client has
                // usually read the response (and pooled the connection) by then.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                let _ = io.shutdown().await;
                return;
            }
            Misbehaviour::CloseWhenIdle => {
                if io
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = io.flush().await;
            }
            Misbehaviour::TrickleBody { len, interval } => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                if io.write_all(head.as_bytes()).await.is_err() || io.flush().await.is_err() {
                    return;
                }
                for _ in 0..*len {
                    tokio::time::sleep(*interval).await;
                    if io.write_all(b"x").await.is_err() || io.flush().await.is_err() {
                        return;
                    }
                }
            }
            Misbehaviour::EndlessBody => {
                let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                if io.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut chunk = b"40\r\n".to_vec();
                chunk.extend_from_slice(&[b'x'; 64]);
                chunk.extend_from_slice(b"\r\n");
                loop {
                    if io.write_all(&chunk).await.is_err() || io.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

async fn read_some<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 4096];
    match io.read(&mut chunk).await {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            n
        }
        Err(_) => 0,
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}
