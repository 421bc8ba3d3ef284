//! The plain-HTTP transport: hyper's pooled HTTP/1.1 client, used for `http://` hooks that no
//! proxy applies to (see `crate::proxy`); `https://` hooks and proxied ones go through reqwest.
//!
//! Why a second transport: reqwest's redirect layer parses the request URL into a `Url` twice per
//! request (once before sending, once for the response), whether or not a redirect happens. On a
//! loopback endpoint that was about a fifth of the client's instructions per event (callgrind,
//! docs/benchmarks.md). Here the event's `Url` is built once (by the caller) and turned into the
//! request's `Uri` once; the rest is what reqwest does on top of the same hyper client: Go's
//! header case, same-origin redirects with Go's limit and `Referer`, a per-attempt timeout
//! covering the redirects (the status decides; the body is drained afterwards, bounded, see
//! `crate::conn`), and a request that failed on a reused connection before any response re-sent
//! at once on a new connection (not a retry), as is a request hyper's pool lost as its
//! connection ended (see `send`). The
//! headers (Go's defaults included) come from the hook's `HeaderPlan`, as for reqwest. One difference on the wire, towards Go: no `Accept: */*` (reqwest adds it).

use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hook_config::redact_url;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{
    CaptureConnection, Connected, Connection, HttpConnector, capture_connection,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::runtime::RuntimeFlavor;
use tokio::time::{Instant, Sleep};
use url::Url;

use crate::conn::{MAX_RESPONSE_HEAD, MAX_RESPONSE_HEADERS, discard, failed_before_response};
use crate::hook::MAX_REQUESTS_PER_ATTEMPT;
use crate::retry::TransportFailure;

/// The pooled client.
pub(crate) struct Direct {
    client: Client<Tracking, Empty<Bytes>>,
    /// The same client without a pool: the re-send of a request that failed on a reused
    /// connection goes on a new one.
    fresh: Client<Tracking, Empty<Bytes>>,
}

/// One attempt's result, on either transport: the final status and its `Retry-After`, or why
/// there is none.
pub(crate) type Outcome = Result<(u16, Option<String>), AttemptError>;

/// A failed attempt (either transport): its retry class, a description without any URL, and the
/// error behind it.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) failure: TransportFailure,
    pub(crate) reason: String,
    pub(crate) source: Box<dyn StdError + Send + Sync>,
}

/// Why a redirect was not followed (the source of a `Redirect` failure, on both transports).
#[derive(Debug)]
pub(crate) struct RedirectRefused(pub(crate) String);

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for RedirectRefused {}

/// The attempt timed out (the source of a `Timeout` failure).
#[derive(Debug)]
struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation timed out")
    }
}

impl StdError for TimedOut {}

impl Direct {
    /// The client, configured as the reqwest one: `max_idle_per_host` idle connections kept for
    /// 90 s, `TCP_NODELAY`, Go's header case, HTTP/1.1 only, heads up to [`MAX_RESPONSE_HEAD`].
    pub(crate) fn new(max_idle_per_host: usize) -> Direct {
        let build = |idle: usize| {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.enforce_http(true);
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(idle)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .http1_title_case_headers(true)
                .http1_max_buf_size(MAX_RESPONSE_HEAD)
                .http1_max_headers(MAX_RESPONSE_HEADERS)
                .build(Tracking(connector))
        };
        Direct {
            client: build(max_idle_per_host),
            fresh: build(0),
        }
    }

    /// One attempt: `GET url` with the headers `headers` gives (asked again for each followed
    /// redirect), following same-origin redirects (at most [`MAX_REQUESTS_PER_ATTEMPT`]
    /// requests), all within `timeout`; the final status decides, whatever its body does
    /// afterwards (drained in the background, bounded).
    pub(crate) async fn attempt(
        &self,
        url: Url,
        headers: impl Fn() -> HeaderMap,
        timeout: Duration,
    ) -> Outcome {
        // One timer per attempt: it ends the attempt at its deadline and, before that, wakes a
        // request still waiting every `LOST_CHECK` to see whether hyper lost it (see `send`).
        let now = Instant::now();
        // As `tokio::time::timeout`: a timeout too large for the clock is no deadline.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
        let timer = pin!(tokio::time::sleep_until(deadline.min(now + LOST_CHECK)));
        let mut clock = Clock {
            deadline,
            timer,
            watch: runs_in_parallel(),
        };
        self.follow(url, headers, &mut clock).await
    }

    async fn follow(
        &self,
        url: Url,
        headers: impl Fn() -> HeaderMap,
        clock: &mut Clock<'_>,
    ) -> Outcome {
        let mut current = url;
        let mut referer: Option<HeaderValue> = None;
        let mut made = 0usize;
        loop {
            let uri: Uri = current
                .as_str()
                .parse()
                .map_err(|e| other("invalid URL", e))?;
            let request = |uri: Uri, referer: Option<HeaderValue>| {
                let mut request = Request::new(Empty::new());
                *request.uri_mut() = uri;
                *request.headers_mut() = headers();
                if let Some(r) = referer {
                    request.headers_mut().insert(header::REFERER, r);
                }
                request
            };
            let response =
                match send(&self.client, request(uri.clone(), referer.clone()), clock).await? {
                    Sent::Answered(Ok(response)) => response,
                    // Closed by the server while pooled (or lost by the pool as that connection
                    // ended, never written): at once, on a new connection, not a retry.
                    Sent::Answered(Err(e)) if is_stale_reuse(&e) => {
                        fresh(&self.fresh, request(uri, referer.take()), clock).await?
                    }
                    Sent::Lost => fresh(&self.fresh, request(uri, referer.take()), clock).await?,
                    Sent::Answered(Err(e)) => return Err(classify(e)),
                };
            made += 1;
            let status = response.status();
            let location = if is_followed(status.as_u16()) {
                response.headers().get(header::LOCATION).cloned()
            } else {
                None
            };
            let retry_after = retry_after(response.headers());
            discard(response.into_body()).await;
            let Some(location) = location else {
                return Ok((status.as_u16(), retry_after));
            };
            let next = location
                .to_str()
                .ok()
                .and_then(|l| current.join(l).ok())
                .ok_or_else(|| {
                    redirect(format!(
                        "redirect ({}) with an invalid Location header",
                        status.as_u16()
                    ))
                })?;
            if next.origin() != current.origin() {
                return Err(redirect(format!(
                    "redirect ({}) to another origin not followed: {}",
                    status.as_u16(),
                    redact_url(next.as_str())
                )));
            }
            if made >= MAX_REQUESTS_PER_ATTEMPT {
                return Err(redirect(format!(
                    "stopped after {MAX_REQUESTS_PER_ATTEMPT} redirects"
                )));
            }
            // As Go and reqwest: the previous URL, without user-info or fragment.
            let mut previous = current;
            let _ = previous.set_username("");
            let _ = previous.set_password(None);
            previous.set_fragment(None);
            referer = HeaderValue::from_str(previous.as_str()).ok();
            current = next;
        }
    }
}

/// What became of a request handed to the pooled client.
enum Sent {
    /// hyper answered: the response head, or why there is none.
    Answered(Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>),
    /// The connection it was handed to ended without it being written, and hyper will never
    /// answer (see [`send`]).
    Lost,
}

/// How often a request still waiting for its answer checks whether hyper lost it; it is taken
/// as lost at the second check that finds its connection gone, so between one and two of these
/// after the connection ended.
///
/// When a connection's task ends, hyper answers the request it was carrying (an error) in the
/// same moment, just after the connection itself is dropped; or, for a request still queued, its
/// pool moves the request to another connection (which shows in the capture). Only a request
/// that was lost gets neither. A whole period between the two checks covers the connection task
/// being descheduled between the two drops on a loaded machine: a request carried and answered is
/// never taken for lost.
const LOST_CHECK: Duration = Duration::from_millis(250);

/// An attempt's deadline and its one timer (see [`Direct::attempt`]).
struct Clock<'a> {
    deadline: Instant,
    timer: Pin<&'a mut Sleep>,
    /// Whether requests are watched for loss: only on a runtime that runs tasks in parallel
    /// (see [`send`]).
    watch: bool,
}

/// The attempt's timeout failure.
fn timed_out() -> AttemptError {
    AttemptError {
        failure: TransportFailure::Timeout,
        reason: "timed out".to_owned(),
        source: Box::new(TimedOut),
    }
}

/// Sends `request` on `client` within the attempt's deadline, and notices when hyper has lost
/// it.
///
/// hyper's pooled client can lose a request: a request handed to a pooled connection at the very
/// moment that connection's task ends (the server closed it while it sat idle) can be left in
/// the connection's queue after the task drained it, and the sender kept alive by the waiting
/// request itself keeps the queue from being dropped: the request waits, unwritten, until the
/// attempt times out (seen about once in 10,000 events against an endpoint that closes idle
/// connections within a millisecond, under load). Every connection here is a [`Counted`] that
/// records when it is gone, and hyper says which connection a request went to: when a request
/// still waits at two checks ([`LOST_CHECK`]) that both find that same connection gone, hyper
/// neither answered it nor moved it, so it was never written, and this returns [`Sent::Lost`]
/// (dropping hyper's future, so it is not sent later either). A request answered in time costs
/// the capture (on a runtime with several threads only) and nothing else: the checks ride on the
/// attempt's timer.
async fn send(
    client: &Client<Tracking, Empty<Bytes>>,
    mut request: Request<Empty<Bytes>>,
    clock: &mut Clock<'_>,
) -> Result<Sent, AttemptError> {
    // The loss needs the connection's task and the request on two threads at once: on a
    // current-thread runtime (hookctl's storms, the relay's shards) it cannot happen, and the
    // capture (a channel per request) is not paid.
    let capture = clock.watch.then(|| capture_connection(&mut request));
    let mut pending = pin!(client.request(request));
    let mut suspect: Option<Arc<ConnState>> = None;
    loop {
        let timer = &mut clock.timer;
        let answer = poll_fn(|cx| {
            if let Poll::Ready(answer) = pending.as_mut().poll(cx) {
                return Poll::Ready(Some(answer));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Some(answer) = answer {
            return Ok(Sent::Answered(answer));
        }
        let now = Instant::now();
        if now >= clock.deadline {
            return Err(timed_out());
        }
        match capture.as_ref().and_then(connection_state) {
            Some(state) if state.closed.load(Ordering::Acquire) => {
                if suspect.as_ref().is_some_and(|s| Arc::ptr_eq(s, &state)) {
                    return Ok(Sent::Lost);
                }
                suspect = Some(state);
            }
            _ => suspect = None,
        }
        clock
            .timer
            .as_mut()
            .reset(clock.deadline.min(now + LOST_CHECK));
    }
}

/// Whether the current runtime may run two tasks at the same moment (not a current-thread one).
fn runs_in_parallel() -> bool {
    tokio::runtime::Handle::try_current()
        .map_or(true, |h| h.runtime_flavor() != RuntimeFlavor::CurrentThread)
}

/// The re-send on a new connection: hyper's answer, or a failure when even that request was
/// lost.
async fn fresh(
    client: &Client<Tracking, Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
    clock: &mut Clock<'_>,
) -> Result<http::Response<hyper::body::Incoming>, AttemptError> {
    match send(client, request, clock).await? {
        Sent::Answered(answer) => answer.map_err(classify),
        Sent::Lost => Err(AttemptError {
            failure: TransportFailure::Other,
            reason: "request failed: the connection closed before the request was sent".to_owned(),
            source: Box::new(io::Error::from(io::ErrorKind::ConnectionAborted)),
        }),
    }
}

/// The [`ConnState`] of the connection hyper handed a request to, once it did.
fn connection_state(capture: &CaptureConnection) -> Option<Arc<ConnState>> {
    capture.connection_metadata().as_ref().and_then(conn_state)
}

/// The `Retry-After` value of a response, as text (both transports).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A connection failure or another request failure (both transports), described by the deepest
/// error of `err`'s source chain: never `err`'s own text, which may hold the URL.
pub(crate) fn connect_or_other(connect: bool, err: &dyn StdError) -> (TransportFailure, String) {
    let mut detail = None;
    let mut current = err.source();
    while let Some(e) = current {
        detail = Some(e.to_string());
        current = e.source();
    }
    let (failure, head) = if connect {
        (TransportFailure::Connect, "connection failed")
    } else {
        (TransportFailure::Other, "request failed")
    };
    match detail {
        Some(detail) if !detail.is_empty() => (failure, format!("{head}: {detail}")),
        _ => (failure, head.to_owned()),
    }
}

/// The redirect statuses Go and reqwest follow.
fn is_followed(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

fn redirect(why: String) -> AttemptError {
    AttemptError {
        failure: TransportFailure::Redirect,
        reason: why.clone(),
        source: Box::new(RedirectRefused(why)),
    }
}

fn other(what: &str, e: impl StdError + Send + Sync + 'static) -> AttemptError {
    AttemptError {
        failure: TransportFailure::Other,
        reason: format!("request failed: {what}: {e}"),
        source: Box::new(e),
    }
}

/// Sorts a hyper client error into the retry classes, described as the reqwest path does.
fn classify(err: hyper_util::client::legacy::Error) -> AttemptError {
    let (failure, reason) = connect_or_other(err.is_connect(), &err);
    AttemptError {
        failure,
        reason,
        source: Box::new(err),
    }
}

/// What a connection has carried, counted as its bytes pass (so it is up to date before hyper
/// hands a response over or returns the connection to the pool).
#[derive(Debug, Default)]
struct ConnState {
    /// Bytes read from the server, in total.
    read: AtomicU64,
    /// Requests started on the connection (a write after a read, or the first write).
    requests: AtomicU64,
    /// `read` when the current request started.
    read_at_request: AtomicU64,
    /// Whether the last transfer was a read (so the next write starts a request).
    last_was_read: AtomicBool,
    /// Set when the connection is gone (dropped with hyper's connection task).
    closed: AtomicBool,
}

impl ConnState {
    fn on_read(&self, n: usize) {
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            self.last_was_read.store(true, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        if self.last_was_read.swap(false, Ordering::Relaxed)
            || self.requests.load(Ordering::Relaxed) == 0
        {
            self.requests.fetch_add(1, Ordering::Relaxed);
            self.read_at_request
                .store(self.read.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Go's condition: a reused connection (this is not its first request) and not one byte of
    /// this request's response read.
    fn reused_and_nothing_read(&self) -> bool {
        self.requests.load(Ordering::Relaxed) >= 2
            && self.read.load(Ordering::Relaxed) == self.read_at_request.load(Ordering::Relaxed)
    }
}

/// The connection's [`ConnState`], attached to its `Connected` (hyper-util hands that to the
/// errors of requests sent on it).
#[derive(Clone, Debug)]
struct ConnTag(Arc<ConnState>);

/// Whether a failed request was sent on a reused connection and failed before any byte of its
/// response (the server had closed the connection while it sat in the pool).
fn is_stale_reuse(err: &hyper_util::client::legacy::Error) -> bool {
    if err.is_connect() || !failed_before_response(err) {
        return false;
    }
    err.connect_info()
        .and_then(conn_state)
        .is_some_and(|state| state.reused_and_nothing_read())
}

/// The [`ConnState`] a connection's `Connected` carries (every connection of [`Tracking`]).
fn conn_state(connected: &Connected) -> Option<Arc<ConnState>> {
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    extensions.get::<ConnTag>().map(|tag| tag.0.clone())
}

/// `HttpConnector` with every connection wrapped in a [`Tracked`].
#[derive(Clone, Debug)]
pub(crate) struct Tracking(HttpConnector);

type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Tracked, Box<dyn StdError + Send + Sync>>> + Send>>;

impl tower_service::Service<Uri> for Tracking {
    type Response = Tracked;
    type Error = Box<dyn StdError + Send + Sync>;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.0, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = tower_service::Service::<Uri>::call(&mut self.0, uri);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(Tracked(TokioIo::new(Counted {
                tcp: io.into_inner(),
                state: Arc::new(ConnState::default()),
            })))
        })
    }
}

/// A TCP connection whose transfers are counted in its [`ConnState`].
#[derive(Debug)]
pub(crate) struct Counted {
    tcp: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.state.on_read(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.on_write();
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.state.on_write();
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::Release);
    }
}

/// A [`Counted`] connection as hyper sees it; its `Connected` carries the [`ConnTag`].
#[derive(Debug)]
pub(crate) struct Tracked(TokioIo<Counted>);

impl Connection for Tracked {
    fn connected(&self) -> Connected {
        let counted = self.0.inner();
        counted
            .tcp
            .connected()
            .extra(ConnTag(counted.state.clone()))
    }
}

impl hyper::rt::Read for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
