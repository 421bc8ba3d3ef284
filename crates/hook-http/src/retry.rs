//! The retry policy: SFTPGo's (go-retryablehttp v0.7.8's `DefaultRetryPolicy` and
//! `DefaultBackoff`, spec 4.5) with this workspace's `Retry-After` cap (spec Part A, D8).
//!
//! It is pure: no clock, no I/O. [`RetryPolicy::decide`] takes what an attempt produced and says
//! whether to stop or to wait and try again.
//!
//! * **Attempts:** `retry_max + 1`.
//! * **Retried:** a transport failure unless it is [permanent](TransportFailure::is_retryable)
//!   (untrusted certificate, refused redirect); status 429; every status `>= 500` except 501.
//!   Everything else (1xx-4xx except 429, 501, and of course 2xx) is final.
//! * **Wait before retry `i`** (0-based, the wait after attempt `i`): `retry_wait_min * 2^i`,
//!   capped at `retry_wait_max` (also when the product overflows), no jitter. `retry_wait_min`
//!   0 gives 0; `retry_wait_min > retry_wait_max` always gives `retry_wait_max`.
//! * **`Retry-After`** on a 429 or 503 response only: a non-negative integer of seconds or a date
//!   in Go's `time.RFC1123` layout (`Mon, 02 Jan 2006 15:04:05 GMT`), a past date meaning 0.
//!   It replaces the backoff, is **not** capped by `retry_wait_max`, but is capped by
//!   `retry_after_max` (D8). Anything else in the header is ignored.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use hook_http::retry::{Attempt, RetryPolicy};
//!
//! let policy = RetryPolicy::new(3, Duration::from_secs(2), Duration::from_secs(30));
//! let now = SystemTime::now();
//! // 500 after the first attempt: wait 2 s.
//! let fail = Attempt::Response { status: 500, retry_after: None };
//! assert_eq!(policy.decide(0, &fail, now), Some(Duration::from_secs(2)));
//! assert_eq!(policy.decide(2, &fail, now), Some(Duration::from_secs(8)));
//! // The fourth attempt was the last one.
//! assert_eq!(policy.decide(3, &fail, now), None);
//! // 404 is final.
//! assert_eq!(policy.decide(0, &Attempt::Response { status: 404, retry_after: None }, now), None);
//! // 429 with Retry-After: 1 waits one second.
//! let slow_down = Attempt::Response { status: 429, retry_after: Some("1") };
//! assert_eq!(policy.decide(2, &slow_down, now), Some(Duration::from_secs(1)));
//! ```

use std::time::{Duration, SystemTime};

/// Why an attempt produced no response.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportFailure {
    /// The connection could not be made: refused, unreachable, DNS failure.
    Connect,
    /// The attempt hit its per-attempt timeout.
    Timeout,
    /// The server's certificate was not accepted (untrusted, expired, wrong host name).
    UntrustedCertificate,
    /// The TLS handshake failed otherwise (protocol error, alert from the server).
    Tls,
    /// A redirect that is not followed: to another origin, or after ten requests.
    Redirect,
    /// Anything else: reset, closed connection, malformed response.
    Other,
}

impl TransportFailure {
    /// Whether go-retryablehttp retries this failure. Permanent: an untrusted certificate
    /// (`tls.CertificateVerificationError`) and a stopped redirect (`stopped after 10
    /// redirects`, and our cross-origin refusal). Its other permanent cases (`unsupported
    /// protocol scheme`, `invalid header`) cannot happen here: the URL and headers are validated
    /// when the hook is built.
    pub const fn is_retryable(self) -> bool {
        !matches!(
            self,
            TransportFailure::UntrustedCertificate | TransportFailure::Redirect
        )
    }
}

/// What one attempt produced.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// A final response (after same-origin redirects), with its first `Retry-After` value.
    Response {
        /// The status code.
        status: u16,
        /// The first `Retry-After` header value, if any.
        retry_after: Option<&'a str>,
    },
    /// No response.
    Failed(TransportFailure),
}

/// Whether go-retryablehttp retries a response with this status: 429, 0, and every status
/// `>= 500` except 501.
pub const fn is_retryable_status(status: u16) -> bool {
    status == 429 || status == 0 || (status >= 500 && status != 501)
}

/// Whether a status means the event was delivered (2xx).
pub const fn is_success_status(status: u16) -> bool {
    status >= 200 && status < 300
}

/// Parses a `Retry-After` value as go-retryablehttp v0.7.8 does: an integer of seconds (Go's
/// `strconv.ParseInt`: optional sign, ASCII digits, fits in `i64`; negative means "ignore"), or
/// a date in Go's `time.RFC1123` layout, interpreted as UTC (a date in the past means zero).
/// `None` when the value is neither.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hook_http::retry::parse_retry_after;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("-5", now), None);
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Some(secs) = parse_go_int(value) {
        return u64::try_from(secs).ok().map(Duration::from_secs);
    }
    let at = parse_rfc1123(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Go's `time.Parse(time.RFC1123, s)`: `Mon, 02 Jan 2006 15:04:05 MST`. Day and month names
/// are matched case-insensitively and the weekday is not checked against the date (as Go); the
/// day, minutes and seconds take two digits, the hour one or two, the year four; the zone is an
/// abbreviation of three to five upper-case letters, taken as UTC (Go gives an abbreviation it
/// does not know offset 0; `GMT` and `UTC` are the ones servers send).
fn parse_rfc1123(s: &str) -> Option<SystemTime> {
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    fn num(s: &str, min_len: usize, max_len: usize) -> Option<u64> {
        let ok = (min_len..=max_len).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        if ok { s.parse().ok() } else { None }
    }
    let (weekday, rest) = s.split_once(", ")?;
    if !DAYS.iter().any(|d| d.eq_ignore_ascii_case(weekday)) {
        return None;
    }
    let mut parts = rest.split(' ');
    let day = num(parts.next()?, 2, 2)?;
    let month_name = parts.next()?;
    let month = 1 + MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as u64;
    let year = num(parts.next()?, 4, 4)?;
    let mut clock = parts.next()?.split(':');
    let hour = num(clock.next()?, 1, 2)?;
    let minute = num(clock.next()?, 2, 2)?;
    let second = num(clock.next()?, 2, 2)?;
    let zone = parts.next()?;
    if clock.next().is_some() || parts.next().is_some() {
        return None;
    }
    if !(3..=5).contains(&zone.len()) || !zone.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day == 0 || day > month_days[(month - 1) as usize] || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    let secs = hook_core::civil::unix_seconds(
        year as i64,
        month as u32,
        day as u32,
        hour as u32,
        minute as u32,
        second as u32,
    );
    if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// SFTPGo's retry schedule, with the `Retry-After` cap of D8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    retry_max: u32,
    wait_min: Duration,
    wait_max: Duration,
    retry_after_max: Duration,
}

impl RetryPolicy {
    /// `retry_max` retries after the first attempt, backoff from `wait_min` doubling up to
    /// `wait_max`; the `Retry-After` cap defaults to `max(wait_max, 60 s)` as in `hook-config`.
    pub fn new(retry_max: u32, wait_min: Duration, wait_max: Duration) -> Self {
        RetryPolicy {
            retry_max,
            wait_min,
            wait_max,
            retry_after_max: wait_max.max(Duration::from_secs(60)),
        }
    }

    /// Sets the cap on an honoured `Retry-After`.
    pub fn with_retry_after_max(mut self, cap: Duration) -> Self {
        self.retry_after_max = cap;
        self
    }

    /// Retries after the first attempt.
    pub fn retry_max(&self) -> u32 {
        self.retry_max
    }

    /// Attempts in all: `retry_max + 1`.
    pub fn max_attempts(&self) -> u32 {
        self.retry_max.saturating_add(1)
    }

    /// The smallest backoff wait.
    pub fn wait_min(&self) -> Duration {
        self.wait_min
    }

    /// The largest backoff wait.
    pub fn wait_max(&self) -> Duration {
        self.wait_max
    }

    /// The cap on an honoured `Retry-After`.
    pub fn retry_after_max(&self) -> Duration {
        self.retry_after_max
    }

    /// The backoff after attempt `attempt` (0-based): `wait_min * 2^attempt`, capped at
    /// `wait_max`, `wait_max` when the product overflows.
    pub fn backoff(&self, attempt: u32) -> Duration {
        if self.wait_min.is_zero() {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(attempt).filter(|_| attempt < 32);
        factor
            .and_then(|f| self.wait_min.checked_mul(f))
            .map_or(self.wait_max, |wait| wait.min(self.wait_max))
    }

    /// After attempt `attempt` (0-based) produced `outcome`, at wall-clock time `now` (only used
    /// for a `Retry-After` date): `Some(wait)` to retry after `wait`, `None` to stop with this
    /// outcome as the final one (success, permanent failure, or no attempts left).
    pub fn decide(&self, attempt: u32, outcome: &Attempt<'_>, now: SystemTime) -> Option<Duration> {
        if attempt.saturating_add(1) >= self.max_attempts() {
            return None;
        }
        match *outcome {
            Attempt::Failed(failure) => failure.is_retryable().then(|| self.backoff(attempt)),
            Attempt::Response {
                status,
                retry_after,
            } => {
                if !is_retryable_status(status) {
                    return None;
                }
                let honoured = match (status, retry_after) {
                    (429 | 503, Some(value)) => parse_retry_after(value, now),
                    _ => None,
                };
                Some(match honoured {
                    Some(wait) => wait.min(self.retry_after_max),
                    None => self.backoff(attempt),
                })
            }
        }
    }
}

impl Default for RetryPolicy {
    /// SFTPGo's defaults: 3 retries, waits from 2 s to 30 s, `Retry-After` capped at 60 s.
    fn default() -> Self {
        RetryPolicy::new(3, Duration::from_secs(2), Duration::from_secs(30))
    }
}
