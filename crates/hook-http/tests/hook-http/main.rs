//! Integration tests of `hook-http`: the wire format, connection reuse, retries, header scoping,
//! TLS and secrets, against real loopback servers from `hook-test-support`.

mod config;
mod deps;
mod hardening;
mod headers;
mod pool;
mod proxy;
mod query;
mod retries;
mod retry_policy;
mod secrets;
mod tls;
mod wire;

use std::time::Duration;

use hook_http::{HttpHook, HttpHookBuilder};

/// Generous bound for waiting on a loopback server.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A builder with scaled-down timings: 5 s per attempt, waits 10 ms doubling to 40 ms.
pub(crate) fn quick(url: &str) -> HttpHookBuilder {
    HttpHook::builder(url)
        .timeout(Duration::from_secs(5))
        .retry_wait_min(Duration::from_millis(10))
        .retry_wait_max(Duration::from_millis(40))
}
