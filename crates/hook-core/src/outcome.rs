//! What happened when a hook ran: [`Delivery`] on success, and the pieces it shares with errors.

use std::fmt;
use std::time::Duration;

/// Which backend handled an event.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A program run as SFTPGo runs it (`hook-exec`).
    Exec,
    /// An HTTP GET as SFTPGo sends it (`hook-http`).
    Http,
    /// A message published to NATS JetStream and acknowledged by the stream (`hook-nats`).
    Nats,
    /// A backend outside this workspace, named by its author.
    Custom(&'static str),
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Exec => f.write_str("exec"),
            Backend::Http => f.write_str("http"),
            Backend::Nats => f.write_str("nats"),
            Backend::Custom(name) => f.write_str(name),
        }
    }
}

/// The final status a hook reported.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookStatus {
    /// The program exited with this code.
    Exit(i32),
    /// The program was ended by this signal number.
    Signal(i32),
    /// The endpoint answered with this HTTP status code.
    Http(u16),
}

impl fmt::Display for HookStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookStatus::Exit(code) => write!(f, "exit status {code}"),
            HookStatus::Signal(sig) => write!(f, "killed by signal {sig}"),
            HookStatus::Http(code) => write!(f, "HTTP {code}"),
        }
    }
}

/// The captured tail of a program's output: at most the configured cap of each stream, the rest
/// read and discarded.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_dropped: u64,
    stderr_dropped: u64,
}

impl CapturedOutput {
    /// Output kept from each stream, and how many bytes of each were discarded.
    pub fn new(stdout: Vec<u8>, stdout_dropped: u64, stderr: Vec<u8>, stderr_dropped: u64) -> Self {
        CapturedOutput {
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
        }
    }

    /// The kept bytes of standard output.
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// The kept bytes of standard error.
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }

    /// How many bytes of standard output were read and discarded beyond the cap.
    pub fn stdout_dropped(&self) -> u64 {
        self.stdout_dropped
    }

    /// How many bytes of standard error were read and discarded beyond the cap.
    pub fn stderr_dropped(&self) -> u64 {
        self.stderr_dropped
    }

    /// Standard output as text, invalid UTF-8 replaced.
    pub fn stdout_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text, invalid UTF-8 replaced.
    pub fn stderr_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

impl fmt::Debug for CapturedOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturedOutput")
            .field("stdout", &self.stdout_lossy())
            .field("stdout_dropped", &self.stdout_dropped)
            .field("stderr", &self.stderr_lossy())
            .field("stderr_dropped", &self.stderr_dropped)
            .finish()
    }
}

/// A successful delivery: the program exited 0, or the endpoint answered 2xx.
///
/// ```
/// use std::time::Duration;
/// use hook_core::{Backend, Delivery, HookStatus};
///
/// let d = Delivery::new(Backend::Http, 3, Duration::from_millis(40)).with_status(HookStatus::Http(200));
/// assert_eq!(d.attempts(), 3);
/// assert_eq!(d.status(), Some(HookStatus::Http(200)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    backend: Backend,
    attempts: u32,
    elapsed: Duration,
    status: Option<HookStatus>,
    output: Option<CapturedOutput>,
}

impl Delivery {
    /// A delivery by `backend` after `attempts` attempts taking `elapsed` in all.
    pub fn new(backend: Backend, attempts: u32, elapsed: Duration) -> Self {
        Delivery {
            backend,
            attempts,
            elapsed,
            status: None,
            output: None,
        }
    }

    /// Records the final status.
    pub fn with_status(mut self, status: HookStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Records the captured output.
    pub fn with_output(mut self, output: CapturedOutput) -> Self {
        self.output = Some(output);
        self
    }

    /// The backend that delivered the event.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many attempts were made (1 for programs).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time from the start of the first attempt to the final outcome.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The final exit or HTTP status, when the backend has one.
    pub fn status(&self) -> Option<HookStatus> {
        self.status
    }

    /// The captured output tail, when the backend captures output.
    pub fn output(&self) -> Option<&CapturedOutput> {
        self.output.as_ref()
    }
}
