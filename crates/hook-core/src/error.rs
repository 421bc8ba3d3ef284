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

/// What a durable dispatcher (a spool) does with an event whose delivery failed, once the
/// backend's own retries are over: [`HookError::redelivery`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Redelivery {
    /// Could succeed later (the endpoint is down or overloaded, the program could not be started
    /// for lack of resources): keep the event and redeliver it on a longer schedule.
    Transient,
    /// Could never succeed as configured (a 4xx answer, an untrusted certificate, a refused
    /// redirect, a program that does not exist): a dead letter at once.
    Permanent,
    /// The program ran and failed (non-zero exit, signal, timeout): reported failed and never run
    /// again, as SFTPGo never re-runs a command.
    Ran,
    /// The delivery was cancelled (shutdown): not an outcome; the event stays pending.
    Cancelled,
}

impl Redelivery {
    /// A short lower-case name (`transient`, `permanent`, `ran`, `cancelled`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Redelivery::Transient => "transient",
            Redelivery::Permanent => "permanent",
            Redelivery::Ran => "ran",
            Redelivery::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Redelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an HTTP status is worth redelivering later: 408, 429 and 5xx except 501.
///
/// ```
/// use hook_core::is_transient_http_status;
///
/// assert!(is_transient_http_status(503) && is_transient_http_status(429) && is_transient_http_status(408));
/// assert!(!is_transient_http_status(501) && !is_transient_http_status(404));
/// ```
pub const fn is_transient_http_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (status >= 500 && status <= 599 && status != 501)
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
    retry_after: Option<Duration>,
    redelivery: Option<Redelivery>,
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
                retry_after: None,
                redelivery: None,
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

    /// Records the endpoint's `Retry-After` of the last answer (as a wait from the time of the
    /// error): a redelivery never starts earlier.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.inner.retry_after = Some(wait);
        self
    }

    /// Overrides the classification of [`redelivery`](HookError::redelivery) (for backends whose
    /// errors the default rules do not fit).
    pub fn with_redelivery(mut self, redelivery: Redelivery) -> Self {
        self.inner.redelivery = Some(redelivery);
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

    /// The endpoint's `Retry-After` on its last answer, as a wait from the time of the error.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// What a spool does with the event after this failure. Unless a backend set it with
    /// [`with_redelivery`](HookError::with_redelivery):
    ///
    /// * [`Transient`](Redelivery::Transient): a transport error, an HTTP 408, 429 or 5xx other
    ///   than 501, an HTTP timeout, the delivery deadline, a program that could not be started
    ///   for lack of resources (`EAGAIN`, `ENOMEM`), and [`ErrorKind::Other`];
    /// * [`Permanent`](Redelivery::Permanent): any other HTTP status, TLS, a refused redirect, an
    ///   invalid event, any other start failure (not found, permission denied, ...);
    /// * [`Ran`](Redelivery::Ran): a program that exited non-zero, was killed by a signal, or
    ///   timed out;
    /// * [`Cancelled`](Redelivery::Cancelled): cancelled at shutdown.
    ///
    /// ```
    /// use hook_core::{Backend, ErrorKind, HookError, HookStatus, Redelivery};
    ///
    /// let busy = HookError::new(ErrorKind::HttpStatus, "HTTP 503").with_status(HookStatus::Http(503));
    /// assert_eq!(busy.redelivery(), Redelivery::Transient);
    /// let gone = HookError::new(ErrorKind::HttpStatus, "HTTP 404").with_status(HookStatus::Http(404));
    /// assert_eq!(gone.redelivery(), Redelivery::Permanent);
    /// let exit = HookError::new(ErrorKind::ExitStatus, "exit 1").with_backend(Backend::Exec);
    /// assert_eq!(exit.redelivery(), Redelivery::Ran);
    /// let eagain = std::io::Error::from(std::io::ErrorKind::WouldBlock);
    /// let spawn = HookError::new(ErrorKind::Spawn, "cannot start").with_source(eagain);
    /// assert_eq!(spawn.redelivery(), Redelivery::Transient);
    /// ```
    pub fn redelivery(&self) -> Redelivery {
        if let Some(r) = self.inner.redelivery {
            return r;
        }
        match self.inner.kind {
            ErrorKind::Transport | ErrorKind::DeadlineExceeded | ErrorKind::Other => {
                Redelivery::Transient
            }
            ErrorKind::Timeout => match self.inner.backend {
                Some(Backend::Exec) => Redelivery::Ran,
                _ if matches!(
                    self.inner.status,
                    Some(HookStatus::Exit(_) | HookStatus::Signal(_))
                ) =>
                {
                    Redelivery::Ran
                }
                _ => Redelivery::Transient,
            },
            ErrorKind::ExitStatus | ErrorKind::Signal => Redelivery::Ran,
            ErrorKind::HttpStatus => match self.inner.status {
                Some(HookStatus::Http(code)) if is_transient_http_status(code) => {
                    Redelivery::Transient
                }
                _ => Redelivery::Permanent,
            },
            ErrorKind::Spawn => {
                if self.spawn_lacked_resources() {
                    Redelivery::Transient
                } else {
                    Redelivery::Permanent
                }
            }
            ErrorKind::Tls | ErrorKind::Redirect | ErrorKind::InvalidEvent => Redelivery::Permanent,
            ErrorKind::Cancelled => Redelivery::Cancelled,
        }
    }

    /// Whether the source chain holds an I/O error meaning "not now": `EAGAIN` (`WouldBlock`) or
    /// `ENOMEM` (`OutOfMemory`).
    fn spawn_lacked_resources(&self) -> bool {
        let mut next: Option<&(dyn StdError + 'static)> = self
            .inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static));
        while let Some(err) = next {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::OutOfMemory
                );
            }
            next = err.source();
        }
        false
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
        if let Some(wait) = &self.inner.retry_after {
            d.field("retry_after", wait);
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
    fn redelivery_classes() {
        let http = |code| {
            HookError::new(ErrorKind::HttpStatus, "h")
                .with_backend(Backend::Http)
                .with_status(HookStatus::Http(code))
                .redelivery()
        };
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(http(code), Redelivery::Transient, "{code}");
        }
        for code in [400, 401, 403, 404, 410, 501, 302] {
            assert_eq!(http(code), Redelivery::Permanent, "{code}");
        }
        let of = |kind, backend| HookError::new(kind, "x").with_backend(backend).redelivery();
        assert_eq!(
            of(ErrorKind::Transport, Backend::Http),
            Redelivery::Transient
        );
        assert_eq!(of(ErrorKind::Timeout, Backend::Http), Redelivery::Transient);
        assert_eq!(
            of(ErrorKind::DeadlineExceeded, Backend::Http),
            Redelivery::Transient
        );
        assert_eq!(of(ErrorKind::Tls, Backend::Http), Redelivery::Permanent);
        assert_eq!(
            of(ErrorKind::Redirect, Backend::Http),
            Redelivery::Permanent
        );
        assert_eq!(of(ErrorKind::Timeout, Backend::Exec), Redelivery::Ran);
        assert_eq!(of(ErrorKind::ExitStatus, Backend::Exec), Redelivery::Ran);
        assert_eq!(of(ErrorKind::Signal, Backend::Exec), Redelivery::Ran);
        assert_eq!(
            of(ErrorKind::InvalidEvent, Backend::Exec),
            Redelivery::Permanent
        );
        assert_eq!(
            of(ErrorKind::Cancelled, Backend::Exec),
            Redelivery::Cancelled
        );
        let spawn = |io: std::io::Error| {
            HookError::new(ErrorKind::Spawn, "s")
                .with_backend(Backend::Exec)
                .with_source(io)
                .redelivery()
        };
        assert_eq!(
            spawn(std::io::Error::from_raw_os_error(11)),
            Redelivery::Transient
        );
        assert_eq!(
            spawn(std::io::Error::from_raw_os_error(12)),
            Redelivery::Transient
        );
        assert_eq!(
            spawn(std::io::Error::from_raw_os_error(2)),
            Redelivery::Permanent
        );
        assert_eq!(
            spawn(std::io::Error::from_raw_os_error(13)),
            Redelivery::Permanent
        );
        let forced = HookError::new(ErrorKind::Other, "o").with_redelivery(Redelivery::Permanent);
        assert_eq!(forced.redelivery(), Redelivery::Permanent);
        let wait =
            HookError::new(ErrorKind::HttpStatus, "h").with_retry_after(Duration::from_secs(7));
        assert_eq!(wait.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + StdError>() {}
        assert_bounds::<HookError>();
    }
}
