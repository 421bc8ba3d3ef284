//! Connection hygiene shared by both transports (issue 11):
//!
//! * A request that failed on a pooled connection which had already carried a response, before
//!   any response arrived (the server
//!   closed it while it sat idle, or right after its previous response without saying
//!   `Connection: close`), is re-sent at once on a new connection and not counted as a retry, as
//!   Go's transport does (`shouldRetryRequest`: a reused connection, an idempotent request,
//!   nothing read). A fresh connection that fails is a failure like any other.
//! * [`discard`]: a response body is drained only as far as it is already there; the rest is
//!   drained in the background, bounded by [`DRAIN_LIMIT`] bytes and [`DRAIN_TIME`], then the
//!   connection returns to the pool; a longer or slower body is dropped with its connection.
//!   The status has decided the attempt before any of this (spec 4.4, 4.5): a slow 2xx body
//!   is a delivery, never a timeout or a retry.
//! * The response head is bounded by its size ([`MAX_RESPONSE_HEAD`], Go's
//!   `MaxResponseHeaderBytes` idea) and by a generous number of headers
//!   ([`MAX_RESPONSE_HEADERS`]) instead of hyper's 100.

use std::collections::HashSet;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use bytes::Buf;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper_util::client::legacy::connect::HttpInfo;

/// How many response-body bytes are read (and discarded) so the connection can be reused; a
/// longer body closes the connection instead.
pub(crate) const DRAIN_LIMIT: usize = 64 * 1024;

/// How long a body may take to arrive, after its head, for its connection to be reused; a
/// slower one is dropped with its connection. The attempt's outcome never waits for it.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(1);

/// The largest response head accepted on the plain-HTTP transport and over HTTP/2 (1 MiB).
pub(crate) const MAX_RESPONSE_HEAD: usize = 1 << 20;

/// hyper also limits a head's number of headers (100 by default, which refused what Go
/// accepts). It allocates two arrays of this many 32-byte slots for every head it parses, so the
/// count is kept where that stays cheap: 1,000 slots are 32,000 bytes per array. A count of a
/// third of [`MAX_RESPONSE_HEAD`] (so that only the size could bind) cost 11 µs of CPU per event
/// in glibc's `brk` and page faults, doubling a plain-HTTP storm's CPU, and 2,000 slots still
/// showed `brk` in the profile (docs/benchmarks.md); the remaining difference from Go is in
/// docs/compatibility.md.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 1_000;

/// The local addresses of pooled connections that have carried a complete response head: a
/// connection found here was reused. Two generations, so the set stays bounded without
/// forgetting a connection still in use (each response records its connection again).
#[derive(Debug)]
pub(crate) struct UsedConnections {
    generations: Mutex<[HashSet<SocketAddr>; 2]>,
    cap: usize,
}

impl UsedConnections {
    /// A set remembering about `2 * cap` connections.
    pub(crate) fn new(cap: usize) -> UsedConnections {
        UsedConnections {
            generations: Mutex::new([HashSet::new(), HashSet::new()]),
            cap: cap.clamp(64, 1 << 16),
        }
    }

    fn lock(&self) -> MutexGuard<'_, [HashSet<SocketAddr>; 2]> {
        self.generations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the connection of a response (its `HttpInfo`, set by the connector) carried
    /// a response.
    pub(crate) fn record(&self, extensions: &http::Extensions) {
        let Some(info) = extensions.get::<HttpInfo>() else {
            return;
        };
        let local = info.local_addr();
        let mut g = self.lock();
        if g[0].contains(&local) {
            return;
        }
        if g[0].len() >= self.cap {
            let current = std::mem::take(&mut g[0]);
            g[1] = current;
        }
        g[0].insert(local);
    }

    /// Whether `err` (a failed request on reqwest's pooled client) is a reused connection's
    /// failure before any response: then it is forgotten (it is dead) and the request may be
    /// re-sent on a new connection.
    ///
    /// The previous response on that connection is recorded by its own task just after hyper
    /// has returned the connection to the pool, so another task can take the connection and fail
    /// on it first: a miss is looked up again after giving the other tasks a few turns and up to
    /// 5 ms (a fresh connection's failure is reported that much later).
    pub(crate) async fn take_stale(&self, err: &(dyn StdError + Send + Sync + 'static)) -> bool {
        let Some(local) = failed_connection(err) else {
            return false;
        };
        if !failed_before_response(err) {
            return false;
        }
        // Three turns, then up to 5 ms: only a failure pays this, never a delivery.
        for turn in 0..9 {
            {
                let mut g = self.lock();
                let removed0 = g[0].remove(&local);
                let removed1 = g[1].remove(&local);
                if removed0 || removed1 {
                    return true;
                }
            }
            match turn {
                0..3 => tokio::task::yield_now().await,
                3..8 => tokio::time::sleep(Duration::from_millis(1)).await,
                _ => {}
            }
        }
        false
    }
}

/// The local address of the pooled connection a hyper client error happened on (hyper-util
/// attaches the connection's `Connected` to errors of a sent request; connect errors have none).
fn failed_connection(err: &(dyn StdError + 'static)) -> Option<SocketAddr> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            if client.is_connect() {
                return None;
            }
            let connected = client.connect_info()?;
            let mut extensions = http::Extensions::new();
            connected.get_extras(&mut extensions);
            return extensions.get::<HttpInfo>().map(HttpInfo::local_addr);
        }
        current = e.source();
    }
    None
}

/// Whether the error says the connection ended (closed, reset, broken) before a response head
/// was complete, rather than a malformed response or a timeout.
pub(crate) fn failed_before_response(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
            );
        }
        current = e.source();
    }
    false
}

/// Discards a response body without waiting for it (see the module docs).
pub(crate) async fn discard<B>(mut body: B)
where
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
{
    if body.is_end_stream() {
        return;
    }
    let mut read = 0usize;
    // hyper's connection task hands the body over through a channel: give it two turns to
    // deliver a short body before handing the rest to a task of its own.
    for turn in 0..3 {
        if drain_ready(&mut body, &mut read).await {
            return;
        }
        if turn < 2 {
            tokio::task::yield_now().await;
        }
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return; // dropped: the connection closes
    };
    runtime.spawn(async move {
        let rest = async {
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    read += data.remaining();
                    if read > DRAIN_LIMIT {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, rest).await;
    });
}

/// Reads the frames that are already there; `true` when the body is finished (or over
/// [`DRAIN_LIMIT`], or failed: then dropping it closes the connection), `false` when the rest is
/// still to come.
async fn drain_ready<B>(body: &mut B, read: &mut usize) -> bool
where
    B: Body + Unpin,
{
    std::future::poll_fn(|cx| {
        loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        *read += data.remaining();
                        if *read > DRAIN_LIMIT {
                            return Poll::Ready(true);
                        }
                    }
                }
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(true),
                Poll::Pending => return Poll::Ready(false),
            }
        }
    })
    .await
}
