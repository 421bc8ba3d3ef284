//! [`HookError`]: why an event was not delivered.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Backend, CapturedOutput, HookStatus};

/// What kind of failure a [`HookError`] is.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The program ran past its timeout, or an HTTP attempt timed out (and no attempts remained).
    Timeout,
    /// The event's overall delivery deadline passed (retries and waits included).
    DeadlineExceeded,
    /// The program could not be started: not found, permission denied, not executable, exec
    /// format error (a script without `#!`), a directory.
    Spawn,
    /// The program exited with a non-zero code ([`HookError::status`] is [`HookStatus::Exit`]).
    ExitStatus,
    /// The program was ended by a signal it did not expect ([`HookStatus::Signal`]).
    Signal,
    /// The endpoint's final answer was not 2xx ([`HookStatus::Http`]), retries exhausted or not
    /// retryable.
    HttpStatus,
    /// The request could not be sent or its answer not read: connection refused, reset, DNS.
    Transport,
    /// The TLS handshake failed: untrusted, expired or mismatched certificate, or a client
    /// certificate the server refused.
    Tls,
    /// A redirect that is not followed: to another origin (configured headers never leave the
    /// hook's origin), or more than ten.
    Redirect,
    /// The event holds a value the backend cannot pass (a NUL byte in a username for a program).
    InvalidEvent,
    /// The hook was cancelled before it finished (shutdown deadline, dropped future).
    Cancelled,
    /// Anything else, described by the message.
    Other,
}

impl ErrorKind {
    /// A short lower-case name (`timeout`, `spawn`, ...), stable for logs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Spawn => "spawn",
            ErrorKind::ExitStatus => "exit_status",
            ErrorKind::Signal => "signal",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Transport => "transport",
            ErrorKind::Tls => "tls",
            ErrorKind::Redirect => "redirect",
            ErrorKind::InvalidEvent => "invalid_event",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event was not delivered.
///
/// Opaque: inspect it through [`kind`](HookError::kind) and the accessors. Its `Display` and
/// `Debug` never contain a URL password or a configured header value: backends redact before they
/// build the message. It is `Clone` (the source is shared), so an outcome can be both logged and
/// forwarded.
///
/// ```
/// use hook_core::{Backend, ErrorKind, HookError, HookStatus};
///
/// let err = HookError::new(ErrorKind::ExitStatus, "/usr/local/bin/hook.sh: exit status 3")
///     .with_backend(Backend::Exec)
///     .with_status(HookStatus::Exit(3));
/// assert_eq!(err.kind(), ErrorKind::ExitStatus);
/// assert_eq!(err.status(), Some(HookStatus::Exit(3)));
/// assert_eq!(err.to_string(), "/usr/local/bin/hook.sh: exit status 3");
/// ```
#[derive(Clone)]
pub struct HookError {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    backend: Option<Backend>,
    attempts: u32,
    elapsed: Option<Duration>,
    status: Option<HookStatus>,
    output: Option<CapturedOutput>,
    /// Shared so that the error is cheap to clone (outcomes are often forwarded to channels).
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl HookError {
    /// An error of `kind` with a message that must not contain secrets.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HookError {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                backend: None,
                attempts: 0,
                elapsed: None,
                status: None,
                output: None,
                source: None,
            }),
        }
    }

    /// Records the backend.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.inner.backend = Some(backend);
        self
    }

    /// Records how many attempts were made.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    /// Records the time from the first attempt to the failure.
    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.inner.elapsed = Some(elapsed);
        self
    }

    /// Records the exit, signal or HTTP status.
    pub fn with_status(mut self, status: HookStatus) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Records the captured output tail.
    pub fn with_output(mut self, output: CapturedOutput) -> Self {
        self.inner.output = Some(output);
        self
    }

    /// Records the underlying error. Its `Display` must not contain secrets either.
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.inner.source = Some(Arc::from(source.into()));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The backend that failed, when known.
    pub fn backend(&self) -> Option<Backend> {
        self.inner.backend
    }

    /// How many attempts were made: 0 when the event was rejected before any attempt (an invalid
    /// event), 1 for a program that could not be started.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Time from the first attempt to the failure, when known.
    pub fn elapsed(&self) -> Option<Duration> {
        self.inner.elapsed
    }

    /// The final exit, signal or HTTP status, when there was one.
    pub fn status(&self) -> Option<HookStatus> {
        self.inner.status
    }

    /// The program's captured output tail, when there was one (stderr tells why it failed).
    pub fn output(&self) -> Option<&CapturedOutput> {
        self.inner.output.as_ref()
    }

    /// Whether the program or an HTTP attempt timed out, or the overall deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Timeout | ErrorKind::DeadlineExceeded
        )
    }

    /// Whether the hook was cancelled (shutdown, dropped future).
    pub fn is_cancelled(&self) -> bool {
        self.inner.kind == ErrorKind::Cancelled
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HookError");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(backend) = &self.inner.backend {
            d.field("backend", backend);
        }
        d.field("attempts", &self.inner.attempts);
        if let Some(elapsed) = &self.inner.elapsed {
            d.field("elapsed", elapsed);
        }
        if let Some(status) = &self.inner.status {
            d.field("status", status);
        }
        if let Some(output) = &self.inner.output {
            d.field("output", output);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl StdError for HookError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = HookError::new(ErrorKind::Spawn, "/x: not found")
            .with_backend(Backend::Exec)
            .with_attempts(1)
            .with_elapsed(Duration::from_millis(3))
            .with_source(io);
        assert_eq!(err.kind(), ErrorKind::Spawn);
        assert_eq!(err.backend(), Some(Backend::Exec));
        assert_eq!(err.attempts(), 1);
        assert_eq!(err.elapsed(), Some(Duration::from_millis(3)));
        assert_eq!(err.source().unwrap().to_string(), "no such file");
        assert!(!err.is_timeout());
        let dbg = format!("{err:?}");
        assert!(
            dbg.contains("Spawn") && dbg.contains("no such file"),
            "{dbg}"
        );
    }

    #[test]
    fn clones_share_the_source() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let err = HookError::new(ErrorKind::Spawn, "/x: denied")
            .with_status(HookStatus::Exit(126))
            .with_source(io);
        let copy = err.clone();
        assert_eq!(copy.kind(), ErrorKind::Spawn);
        assert_eq!(copy.status(), Some(HookStatus::Exit(126)));
        assert_eq!(copy.source().unwrap().to_string(), "denied");
        assert_eq!(format!("{copy:?}"), format!("{err:?}"));
    }

    #[test]
    fn timeout_helpers() {
        assert!(HookError::new(ErrorKind::Timeout, "t").is_timeout());
        assert!(HookError::new(ErrorKind::DeadlineExceeded, "t").is_timeout());
        assert!(HookError::new(ErrorKind::Cancelled, "c").is_cancelled());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + StdError>() {}
        assert_bounds::<HookError>();
    }
}
