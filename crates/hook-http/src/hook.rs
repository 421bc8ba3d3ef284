//! [`HttpHook`]: one pooled client per configuration, SFTPGo's request, retries and outcome.

use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hook_config::{
    ConfigError, HOOK_KEY, HookTarget, HookUrl, HooksSection, HttpClientsSection, HttpHeader,
    redact_url,
};
use hook_core::{Backend, Delivery, DisconnectEvent, ErrorKind, Hook, HookError, HookStatus};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use crate::conn::{MAX_RESPONSE_HEAD, MAX_RESPONSE_HEADERS, UsedConnections, discard};
use crate::direct::{
    AttemptError, Direct, Outcome, RedirectRefused, connect_or_other, retry_after,
};
use crate::gourl::GoUrl;
use crate::headers::{HeaderPlan, HeaderSource};
use crate::proxy::ProxyEnv;
use crate::retry::{Attempt, RetryPolicy, TransportFailure, is_success_status, parse_retry_after};
use crate::template::QueryTemplate;
use hook_tls::TlsSources;

/// The `User-Agent` Go's client sends; SFTPGo endpoints see it, so it is the default.
pub const GO_USER_AGENT: &str = "Go-http-client/1.1";

/// Go's redirect limit: `stopped after 10 redirects` when ten requests were already made.
pub(crate) const MAX_REQUESTS_PER_ATTEMPT: usize = 10;

/// SFTPGo's HTTP post-disconnect hook: a `GET` of the hook URL with the event in the query,
/// configured headers, retries and TLS options, over one pooled connection set shared by every
/// event.
///
/// `Clone` is cheap (an `Arc`); all clones share the connection pool. `Debug` shows the URL with
/// its password redacted and header names without values.
///
/// Build it from the configuration sections with [`from_config`](HttpHook::from_config), or in
/// code with [`builder`](HttpHook::builder). Building reads the CA and client-certificate files,
/// so errors come at load, naming the key.
#[derive(Clone)]
pub struct HttpHook {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    /// The reqwest client without a pool, for re-sending a request that failed on a reused
    /// connection before any response (see `crate::conn`).
    fresh_client: reqwest::Client,
    /// Which of reqwest's pooled connections have carried a response.
    used: UsedConnections,
    /// The plain-HTTP transport, when it applies (see `direct::applies`); reqwest otherwise.
    direct: Option<Direct>,
    redacted_url: String,
    base_url: Url,
    go_url: GoUrl,
    query: QueryTemplate,
    headers: HeaderPlan,
    policy: RetryPolicy,
    timeout: Duration,
    delivery_deadline: Duration,
    skip_tls_verify: bool,
    tls_files: (usize, usize),
}

impl HttpHook {
    /// The hook for `url` with SFTPGo's `http` section and our `hooks` section: `http.timeout`
    /// per attempt, `http.retry_*`, `http.headers`, `http.ca_certificates`,
    /// `http.certificates`, `http.skip_tls_verify`; `hooks.delivery_deadline`,
    /// `hooks.effective_retry_after_max(http)` and `hooks.max_in_flight` (idle connections kept).
    ///
    /// Certificate paths are used as given: the `hook-config` loader has already resolved
    /// relative ones against the config dir.
    pub fn from_config(
        url: &HookUrl,
        http: &HttpClientsSection,
        hooks: &HooksSection,
    ) -> Result<HttpHook, ConfigError> {
        let secs_i64 = |key: &str, v: i64| {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| ConfigError::invalid(key, format!("must not be negative: {v}")))
        };
        let positive_secs = |key: &str, v: f64, what: &str| {
            if v.is_finite() && v > 0.0 {
                Duration::try_from_secs_f64(v)
                    .map_err(|_| ConfigError::invalid(key, format!("invalid {what}: {v}")))
            } else {
                Err(ConfigError::invalid(key, format!("invalid {what}: {v}")))
            }
        };
        let timeout = positive_secs("http.timeout", http.timeout, "timeout")?;
        let retry_max = u32::try_from(http.retry_max.max(0)).unwrap_or(u32::MAX);
        if http.retry_max < 0 {
            return Err(ConfigError::invalid(
                "http.retry_max",
                format!("must not be negative: {}", http.retry_max),
            ));
        }
        let wait_min = secs_i64("http.retry_wait_min", http.retry_wait_min)?;
        let wait_max = secs_i64("http.retry_wait_max", http.retry_wait_max)?;
        let deadline = positive_secs(
            "hooks.delivery_deadline",
            hooks.delivery_deadline,
            "delivery deadline",
        )?;
        let cap = hooks.effective_retry_after_max(http);
        let retry_after_max = if cap == 0.0 {
            Duration::ZERO
        } else {
            positive_secs("hooks.retry_after_max", cap, "Retry-After cap")?
        };
        let builder = HttpHookBuilder {
            url: UrlSource::Parsed(url.clone()),
            timeout,
            retry_max,
            wait_min,
            wait_max,
            retry_after_max: Some(retry_after_max),
            delivery_deadline: deadline,
            headers: http.headers.clone(),
            ca_certificates: http.ca_certificates.iter().map(PathBuf::from).collect(),
            certificates: http
                .certificates
                .iter()
                .map(|p| (PathBuf::from(&p.cert), PathBuf::from(&p.key)))
                .collect(),
            skip_tls_verify: http.skip_tls_verify,
            user_agent: GO_USER_AGENT.to_owned(),
            max_idle_per_host: hooks.max_in_flight.max(1),
        };
        builder.build()
    }

    /// A builder for code configuration, with SFTPGo's defaults (20 s per attempt, 3 retries
    /// waiting 2 s to 30 s, `Retry-After` capped at 60 s, 120 s per event, no headers, system
    /// roots). `url` is checked by the rules of `common.post_disconnect_hook` when building.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hook_http::HttpHook;
    ///
    /// let hook = HttpHook::builder("https://u:s3cret@hooks.example.com/disconnect")
    ///     .timeout(Duration::from_secs(5))
    ///     .retry_max(2)
    ///     .header("X-Api-Key", "k3y")
    ///     .build()
    ///     .unwrap();
    /// let shown = format!("{hook:?}");
    /// assert!(shown.contains("u:xxxxx@hooks.example.com") && !shown.contains("s3cret"));
    /// assert!(!shown.contains("k3y"));
    /// ```
    pub fn builder(url: impl Into<String>) -> HttpHookBuilder {
        HttpHookBuilder {
            url: UrlSource::Text(url.into()),
            timeout: Duration::from_secs(20),
            retry_max: 3,
            wait_min: Duration::from_secs(2),
            wait_max: Duration::from_secs(30),
            retry_after_max: None,
            delivery_deadline: Duration::from_secs(120),
            headers: Vec::new(),
            ca_certificates: Vec::new(),
            certificates: Vec::new(),
            skip_tls_verify: false,
            user_agent: GO_USER_AGENT.to_owned(),
            max_idle_per_host: 150,
        }
    }

    /// The hook URL with its password replaced by `xxxxx`.
    pub fn redacted_url(&self) -> &str {
        &self.inner.redacted_url
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.policy
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The overall per-event deadline.
    pub fn delivery_deadline(&self) -> Duration {
        self.inner.delivery_deadline
    }

    /// The request target sent for `event`: Go's escaped path and the encoded query, e.g.
    /// `/hook?connection_duration=1234&ip=192.168.1.5&protocol=SFTP&username=nicola`.
    pub fn request_target(&self, event: &DisconnectEvent) -> String {
        let query = self.inner.query.render(&event.sftpgo_fields());
        format!("{}?{query}", self.inner.go_url.request_path)
    }

    /// Sends one event, with retries; see the crate docs for the outcome.
    pub async fn send(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        let inner = &*self.inner;
        let started = Instant::now();
        let result = inner.deliver(event, started).await;
        match &result {
            Ok(delivery) => debug!(
                target: "hook_http",
                url = %inner.redacted_url,
                ip = event.ip(),
                protocol = %event.protocol(),
                username = event.username(),
                attempts = delivery.attempts(),
                elapsed_ms = delivery.elapsed().as_millis() as u64,
                "post-disconnect hook delivered"
            ),
            Err(err) => warn!(
                target: "hook_http",
                url = %inner.redacted_url,
                ip = event.ip(),
                protocol = %event.protocol(),
                username = event.username(),
                attempts = err.attempts(),
                elapsed_ms = err.elapsed().unwrap_or_default().as_millis() as u64,
                kind = %err.kind(),
                "post-disconnect hook failed: {err}"
            ),
        }
        result
    }
}

#[hook_core::async_trait]
impl Hook for HttpHook {
    async fn on_disconnect(&self, event: &DisconnectEvent) -> Result<Delivery, HookError> {
        self.send(event).await
    }
}

impl fmt::Debug for HttpHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let transport = if inner.direct.is_some() {
            "hyper (plain HTTP)"
        } else {
            "reqwest"
        };
        f.debug_struct("HttpHook")
            .field("url", &inner.redacted_url)
            .field("transport", &transport)
            .field("timeout", &inner.timeout)
            .field("retry_policy", &inner.policy)
            .field("delivery_deadline", &inner.delivery_deadline)
            .field("headers", &inner.headers.names())
            .field("ca_certificates", &inner.tls_files.0)
            .field("client_certificates", &inner.tls_files.1)
            .field("skip_tls_verify", &inner.skip_tls_verify)
            .finish_non_exhaustive()
    }
}

/// What a finished attempt left us with.
enum Last {
    Status(u16),
    Failed(AttemptError),
}

impl Inner {
    async fn deliver(
        &self,
        event: &DisconnectEvent,
        started: Instant,
    ) -> Result<Delivery, HookError> {
        let fields = event.sftpgo_fields();
        let query = self.query.render(&fields);
        let event_url = || {
            let mut url = self.base_url.clone();
            url.set_query(Some(&query));
            url
        };
        // The first attempt takes this one; a retry (rare, after a wait) builds it again.
        let mut first_url = Some(event_url());
        let final_url = || {
            format!(
                "{}?{query}{}",
                self.go_url.string_base, self.go_url.fragment_suffix
            )
        };
        // `None`: a deadline so far away that no clock reaches it (e.g. `Duration::MAX`).
        let deadline = started.checked_add(self.delivery_deadline);
        let remaining_at =
            |now: Instant| deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
        let mut attempt: u32 = 0;
        loop {
            let remaining = remaining_at(Instant::now());
            let (attempt_timeout, cut_by_deadline) = if remaining < self.timeout {
                (remaining, true)
            } else {
                (self.timeout, false)
            };
            let attempt_url = first_url.take().unwrap_or_else(event_url);
            let sent = match &self.direct {
                Some(direct) => {
                    let headers = || self.headers.headers(final_url);
                    direct.attempt(attempt_url, headers, attempt_timeout).await
                }
                None => {
                    self.send_reqwest(attempt_url, final_url, attempt_timeout)
                        .await
                }
            };
            let (outcome_last, retry_after) = match sent {
                Ok((status, retry_after)) => (Last::Status(status), retry_after),
                Err(e) => (Last::Failed(e), None),
            };
            attempt += 1;
            let outcome = match &outcome_last {
                Last::Status(status) => Attempt::Response {
                    status: *status,
                    retry_after: retry_after.as_deref(),
                },
                Last::Failed(e) => Attempt::Failed(e.failure),
            };
            if let Last::Status(status) = outcome_last
                && is_success_status(status)
            {
                return Ok(Delivery::new(Backend::Http, attempt, started.elapsed())
                    .with_status(HookStatus::Http(status)));
            }
            let now = SystemTime::now();
            let wait = self.policy.decide(attempt - 1, &outcome, now);
            // The endpoint's own "not before": a spool's redelivery honours it (uncapped).
            let not_before = retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, now));
            let with_retry_after = |err: HookError| match not_before {
                Some(wait) => err.with_retry_after(wait),
                None => err,
            };
            let Some(wait) = wait else {
                let deadline_hit = cut_by_deadline
                    && matches!(&outcome_last, Last::Failed(e) if e.failure == TransportFailure::Timeout);
                return Err(with_retry_after(self.failure(
                    outcome_last,
                    attempt,
                    started,
                    deadline_hit,
                    None,
                )));
            };
            let remaining = remaining_at(Instant::now());
            if remaining.is_zero() {
                return Err(with_retry_after(self.failure(
                    outcome_last,
                    attempt,
                    started,
                    true,
                    None,
                )));
            }
            if wait >= remaining {
                return Err(with_retry_after(self.failure(
                    outcome_last,
                    attempt,
                    started,
                    true,
                    Some(wait),
                )));
            }
            debug!(
                target: "hook_http",
                url = %self.redacted_url,
                attempt,
                wait_ms = wait.as_millis() as u64,
                outcome = %describe(&outcome_last),
                "post-disconnect hook attempt failed, retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt through reqwest (`https://`, or a proxy in the way).
    async fn send_reqwest(
        &self,
        url: Url,
        final_url: impl Fn() -> String,
        timeout: Duration,
    ) -> Outcome {
        let started = Instant::now();
        let request = |url: Url, timeout: Duration| {
            let mut request = reqwest::Request::new(Method::GET, url);
            *request.headers_mut() = self.headers.headers(&final_url);
            *request.timeout_mut() = Some(timeout);
            request
        };
        let sent = match self.client.execute(request(url.clone(), timeout)).await {
            Ok(response) => {
                self.used.record(response.extensions());
                Ok(response)
            }
            // Closed by the server while pooled: at once, on a new connection, not a retry,
            // within what is left of the attempt's time.
            Err(err) if self.used.take_stale(&err).await => {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(classify(err));
                }
                self.fresh_client.execute(request(url, left)).await
            }
            other => other,
        };
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                // An empty body (the usual answer) needs no drain.
                if response.content_length() != Some(0) {
                    discard(http::Response::<reqwest::Body>::from(response).into_body()).await;
                }
                Ok((status, retry_after))
            }
            Err(err) => Err(classify(err)),
        }
    }

    fn failure(
        &self,
        last: Last,
        attempts: u32,
        started: Instant,
        deadline_hit: bool,
        next_wait: Option<Duration>,
    ) -> HookError {
        let what = describe(&last);
        let (kind, status, source) = match last {
            Last::Status(status) => (ErrorKind::HttpStatus, Some(HookStatus::Http(status)), None),
            Last::Failed(AttemptError {
                failure, source, ..
            }) => {
                let kind = match failure {
                    TransportFailure::Timeout => ErrorKind::Timeout,
                    TransportFailure::UntrustedCertificate | TransportFailure::Tls => {
                        ErrorKind::Tls
                    }
                    TransportFailure::Redirect => ErrorKind::Redirect,
                    _ => ErrorKind::Transport,
                };
                (kind, None, Some(source))
            }
        };
        let (kind, message) = if deadline_hit {
            let why = match next_wait {
                Some(wait) => format!(
                    "the next attempt (in {}) would start after the {} delivery deadline",
                    secs(wait),
                    secs(self.delivery_deadline)
                ),
                None => format!(
                    "the {} delivery deadline passed",
                    secs(self.delivery_deadline)
                ),
            };
            (
                ErrorKind::DeadlineExceeded,
                format!(
                    "GET {} gave up after {attempts} attempt(s): {why}; last: {what}",
                    self.redacted_url
                ),
            )
        } else {
            (
                kind,
                format!(
                    "GET {} failed after {attempts} attempt(s): {what}",
                    self.redacted_url
                ),
            )
        };
        let mut err = HookError::new(kind, message)
            .with_backend(Backend::Http)
            .with_attempts(attempts)
            .with_elapsed(started.elapsed());
        if let Some(status) = status {
            err = err.with_status(status);
        }
        if let Some(source) = source {
            err = err.with_source(source);
        }
        err
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64()).replace(".000s", "s")
}

fn describe(last: &Last) -> String {
    match last {
        Last::Status(status) => {
            let reason = StatusCode::from_u16(*status)
                .ok()
                .and_then(|s| s.canonical_reason());
            match reason {
                Some(reason) => format!("HTTP {status} {reason}"),
                None => format!("HTTP {status}"),
            }
        }
        Last::Failed(e) => e.reason.clone(),
    }
}

/// Sorts a reqwest error into the retry classes and describes it without any URL.
fn classify(err: reqwest::Error) -> AttemptError {
    let mut rustls_error: Option<&rustls::Error> = None;
    let mut redirect: Option<&RedirectRefused> = None;
    let mut current: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<RedirectRefused>() {
            redirect = Some(r);
        }
        if rustls_error.is_none() {
            rustls_error = find_rustls_error(e);
        }
        current = e.source();
    }
    let (failure, reason) = if let Some(r) = redirect {
        (TransportFailure::Redirect, r.0.clone())
    } else if err.is_timeout() {
        (TransportFailure::Timeout, "timed out".to_owned())
    } else if let Some(t) = rustls_error {
        let failure = if matches!(t, rustls::Error::InvalidCertificate(_)) {
            TransportFailure::UntrustedCertificate
        } else {
            TransportFailure::Tls
        };
        (failure, format!("TLS handshake failed: {t}"))
    } else {
        connect_or_other(err.is_connect(), &err)
    };
    AttemptError {
        failure,
        reason,
        source: Box::new(err.without_url()),
    }
}

/// The rustls error inside `err`, looking through `io::Error` wrappers (whose `source()` skips
/// the wrapped error itself).
fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

/// Where the URL comes from.
#[derive(Clone)]
enum UrlSource {
    Text(String),
    Parsed(HookUrl),
}

/// Builds an [`HttpHook`] in code; made by [`HttpHook::builder`].
#[derive(Clone)]
pub struct HttpHookBuilder {
    url: UrlSource,
    timeout: Duration,
    retry_max: u32,
    wait_min: Duration,
    wait_max: Duration,
    retry_after_max: Option<Duration>,
    delivery_deadline: Duration,
    headers: Vec<HttpHeader>,
    ca_certificates: Vec<PathBuf>,
    certificates: Vec<(PathBuf, PathBuf)>,
    skip_tls_verify: bool,
    user_agent: String,
    max_idle_per_host: usize,
}

impl fmt::Debug for HttpHookBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match &self.url {
            UrlSource::Text(t) => redact_url(t).into_owned(),
            UrlSource::Parsed(u) => u.redacted(),
        };
        f.debug_struct("HttpHookBuilder")
            .field("url", &url)
            .field("timeout", &self.timeout)
            .field("retry_max", &self.retry_max)
            .field("headers", &self.headers)
            .field("skip_tls_verify", &self.skip_tls_verify)
            .finish_non_exhaustive()
    }
}

impl HttpHookBuilder {
    /// Per-attempt timeout covering connect, TLS, request and response (`http.timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (`http.retry_max`).
    pub fn retry_max(mut self, retries: u32) -> Self {
        self.retry_max = retries;
        self
    }

    /// First backoff wait, doubled on each retry (`http.retry_wait_min`; finer than seconds
    /// here).
    pub fn retry_wait_min(mut self, wait: Duration) -> Self {
        self.wait_min = wait;
        self
    }

    /// Largest backoff wait (`http.retry_wait_max`).
    pub fn retry_wait_max(mut self, wait: Duration) -> Self {
        self.wait_max = wait;
        self
    }

    /// Cap on an honoured `Retry-After` (`hooks.retry_after_max`; default
    /// `max(retry_wait_max, 60 s)`).
    pub fn retry_after_max(mut self, cap: Duration) -> Self {
        self.retry_after_max = Some(cap);
        self
    }

    /// Overall time one event may take, attempts and waits included (`hooks.delivery_deadline`).
    pub fn delivery_deadline(mut self, deadline: Duration) -> Self {
        self.delivery_deadline = deadline;
        self
    }

    /// Adds a header sent with every request (`http.headers[]` with an empty `url`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HttpHeader::new(name, value));
        self
    }

    /// Adds a header sent only when the request URL starts with `url_prefix` at a boundary (D9).
    pub fn header_for_url(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        url_prefix: impl Into<String>,
    ) -> Self {
        self.headers
            .push(HttpHeader::new(name, value).for_url(url_prefix));
        self
    }

    /// Trusts the certificates of a PEM file in addition to the system roots
    /// (`http.ca_certificates[]`); a certificate listed here is also accepted as the server's
    /// own (D13).
    pub fn ca_certificate(mut self, pem_path: impl Into<PathBuf>) -> Self {
        self.ca_certificates.push(pem_path.into());
        self
    }

    /// Adds a client certificate chain and key for mutual TLS (`http.certificates[]`).
    pub fn client_certificate(
        mut self,
        cert_pem_path: impl Into<PathBuf>,
        key_pem_path: impl Into<PathBuf>,
    ) -> Self {
        self.certificates
            .push((cert_pem_path.into(), key_pem_path.into()));
        self
    }

    /// Accepts any server certificate and host name (`http.skip_tls_verify`); logged at WARN
    /// when the hook is built.
    pub fn skip_tls_verify(mut self, skip: bool) -> Self {
        self.skip_tls_verify = skip;
        self
    }

    /// The `User-Agent` header (default [`GO_USER_AGENT`], what SFTPGo sends).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Idle keep-alive connections kept (default 150, or `hooks.max_in_flight` from the
    /// configuration): as many as hooks can run at once.
    pub fn max_idle_connections(mut self, connections: usize) -> Self {
        self.max_idle_per_host = connections.max(1);
        self
    }

    /// Validates everything, reads the certificate files and builds the client.
    pub fn build(self) -> Result<HttpHook, ConfigError> {
        let hook_url = match &self.url {
            UrlSource::Parsed(u) => u.clone(),
            UrlSource::Text(text) => match HookTarget::parse(text)? {
                HookTarget::Http(u) => u,
                _ => {
                    return Err(ConfigError::invalid(
                        HOOK_KEY,
                        format!("{:?} is not an http(s) URL", redact_url(text)),
                    ));
                }
            },
        };
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid("http.timeout", "invalid timeout: 0"));
        }
        if self.delivery_deadline.is_zero() {
            return Err(ConfigError::invalid(
                "hooks.delivery_deadline",
                "invalid delivery deadline: 0",
            ));
        }
        let redacted_url = hook_url.redacted();
        let go_url = GoUrl::parse(hook_url.as_configured())
            .map_err(|why| ConfigError::invalid(HOOK_KEY, format!("{redacted_url:?}: {why}")))?;
        let parsed = hook_url.url();
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let base_text = format!("{}://{host}{port}{}", parsed.scheme(), go_url.request_path);
        let base_url = Url::parse(&base_text)
            .map_err(|e| ConfigError::invalid(HOOK_KEY, format!("{redacted_url:?}: {e}")))?;
        if base_url.path() != go_url.request_path {
            warn!(
                target: "hook_http",
                configured = %go_url.request_path,
                sent = %base_url.path(),
                "the hook URL's path has dot segments; they are resolved before sending"
            );
        }

        let sources: Vec<HeaderSource<'_>> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderSource {
                key_prefix: format!("http.headers[{i}]"),
                name: &h.key,
                value: &h.value,
                url: &h.url,
            })
            .collect();
        // Go's defaults ride in the plan: a configured header of the same name replaces them.
        let mut defaults = HeaderMap::new();
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .map_err(|_| ConfigError::invalid("user_agent", "not a valid header value"))?;
        defaults.insert(header::USER_AGENT, user_agent);
        defaults.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let headers = HeaderPlan::new(&sources, &go_url, defaults)?;

        let mut tls = hook_tls::client_config(&TlsSources::from_section(
            "http",
            &self.ca_certificates,
            self.certificates.iter().map(|(cert, key)| (cert, key)),
            self.skip_tls_verify,
        ))?;
        // As Go's client: HTTP/2 when the server offers it, else HTTP/1.1.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if self.skip_tls_verify {
            warn!(
                target: "hook_http",
                url = %redacted_url,
                "http.skip_tls_verify is set: the hook's server certificate and host name are not verified"
            );
        }

        let redirect = |origin: url::Origin| {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.url().origin() != origin {
                    let to = redact_url(attempt.url().as_str()).into_owned();
                    let status = attempt.status().as_u16();
                    return attempt.error(RedirectRefused(format!(
                        "redirect ({status}) to another origin not followed: {to}"
                    )));
                }
                if attempt.previous().len() >= MAX_REQUESTS_PER_ATTEMPT {
                    return attempt.error(RedirectRefused(format!(
                        "stopped after {MAX_REQUESTS_PER_ATTEMPT} redirects"
                    )));
                }
                attempt.follow()
            })
        };

        // Go's ProxyFromEnvironment, decided once: the client only ever talks to the hook's
        // origin (cross-origin redirects are refused).
        let proxy = ProxyEnv::from_env()
            .proxy_for(&base_url)
            .map_err(|why| ConfigError::invalid("http", why))?;
        let make_client = |max_idle: usize| {
            let mut client = reqwest::Client::builder().no_proxy();
            if let Some(proxy) = &proxy {
                client = client.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|_| {
                    ConfigError::invalid("http", "invalid proxy address in the environment")
                })?);
            }
            if base_url.scheme() == "http" {
                // reqwest's own retry layer only ever retries HTTP/2 refusals (GOAWAY,
                // REFUSED_STREAM), and a plain-http hook speaks HTTP/1.1 only, yet the layer
                // clones every request in case it must retry. Our policy is the only retry:
                // turn the layer off.
                client = client.retry(reqwest::retry::never().max_retries_per_request(0));
            }
            client
                .tls_backend_preconfigured(tls.clone())
                .redirect(redirect(base_url.origin()))
                .timeout(self.timeout)
                .pool_max_idle_per_host(max_idle)
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true)
                .http1_title_case_headers()
                // Heads bounded by size (hyper's buffer, about 400 KiB over HTTP/1.1: reqwest
                // does not expose it; ours over HTTP/2) and 1,000 headers, not hyper's 100.
                .http1_max_headers(MAX_RESPONSE_HEADERS)
                .http2_max_header_list_size(MAX_RESPONSE_HEAD as u32)
                .build()
                .map_err(|e| {
                    ConfigError::invalid("http", format!("cannot build the HTTP client: {e}"))
                })
        };
        let client = make_client(self.max_idle_per_host)?;
        let fresh_client = make_client(0)?;

        let retry_after_max = self
            .retry_after_max
            .unwrap_or_else(|| self.wait_max.max(Duration::from_secs(60)));
        let policy = RetryPolicy::new(self.retry_max, self.wait_min, self.wait_max)
            .with_retry_after_max(retry_after_max);
        let direct = (base_url.scheme() == "http" && proxy.is_none())
            .then(|| Direct::new(self.max_idle_per_host));
        Ok(HttpHook {
            inner: Arc::new(Inner {
                client,
                fresh_client,
                used: UsedConnections::new(self.max_idle_per_host.saturating_mul(2)),
                direct,
                redacted_url,
                base_url,
                query: QueryTemplate::new(&go_url.raw_query),
                go_url,
                headers,
                policy,
                timeout: self.timeout,
                delivery_deadline: self.delivery_deadline,
                skip_tls_verify: self.skip_tls_verify,
                tls_files: (self.ca_certificates.len(), self.certificates.len()),
            }),
        })
    }
}
