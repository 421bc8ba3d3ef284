//! A server under test on a runtime of its own, stopped the way its binary stops on SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`ServerThread::start`] waits for the server to report its address.
pub const SERVER_START_WAIT: Duration = Duration::from_secs(30);

/// Hands the bound address back to [`ServerThread::start`].
#[derive(Debug)]
pub struct Bound(std::sync::mpsc::Sender<SocketAddr>);

impl Bound {
    /// Reports the address the server listens on (call once it is bound).
    pub fn report(self, addr: SocketAddr) {
        let _ = self.0.send(addr);
    }
}

/// Resolves when the test stops the server ([`ServerThread::stop`], or dropping it).
#[derive(Debug)]
pub struct StopSignal(tokio::sync::oneshot::Receiver<()>);

impl StopSignal {
    /// Waits for the stop (the future a server's `run(stop)` takes).
    pub async fn requested(self) {
        let _ = self.0.await;
    }
}

/// A server run by `serve` on a two-worker runtime in a thread of its own: `serve` binds,
/// reports the address through [`Bound`], serves until [`StopSignal`] resolves and returns what
/// its stop reports (a dispatcher's `ShutdownReport`, say).
///
/// ```no_run
/// use hook_test_support::ServerThread;
///
/// let server = ServerThread::start(|bound, stop| async move {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
///     bound.report(listener.local_addr().unwrap());
///     stop.requested().await;
///     "stopped"
/// });
/// let port = server.port();
/// # let _ = port;
/// let (said, took) = server.stop();
/// assert_eq!(said, "stopped");
/// # let _ = took;
/// ```
#[derive(Debug)]
pub struct ServerThread<R> {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<R>>,
}

impl<R: Send + 'static> ServerThread<R> {
    /// Starts `serve` and waits (at most [`SERVER_START_WAIT`]) for its address; panics if it
    /// never reports one (a test fixture: the panic is the test's failure).
    pub fn start<F, Fut>(serve: F) -> ServerThread<R>
    where
        F: FnOnce(Bound, StopSignal) -> Fut + Send + 'static,
        Fut: Future<Output = R>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(serve(Bound(addr_tx), StopSignal(stop_rx)))
        });
        let addr = addr_rx
            .recv_timeout(SERVER_START_WAIT)
            .expect("the server reported its address");
        ServerThread {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops the server and returns what it reported and how long the stop took.
    pub fn stop(mut self) -> (R, Duration) {
        let began = Instant::now();
        let _ = self.stop.take().expect("not stopped yet").send(());
        let said = self
            .thread
            .take()
            .expect("not stopped yet")
            .join()
            .expect("the server thread did not panic");
        (said, began.elapsed())
    }
}

impl<R> Drop for ServerThread<R> {
    /// A server a test did not stop (it failed first) is told to stop, not waited for.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
