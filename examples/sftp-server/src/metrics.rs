//! [`install_metrics_exporter`]: `/metrics` for Prometheus (the binary's `--metrics-address`).

use std::net::SocketAddr;

use hooks::metrics::{ATTEMPTS_BUCKETS, DURATION_BUCKETS, names};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::Error;

/// Installs `metrics-exporter-prometheus` as the process' global `metrics` recorder and serves
/// its text format at `http://LISTEN/metrics` (any path answers; only its HTTP listener is
/// compiled in: no push gateway, no TLS).
///
/// Call it inside the tokio runtime the server runs on, **before**
/// [`SftpServer::bind`](crate::SftpServer::bind) creates the hooks' dispatcher (the dispatcher
/// describes its metrics and sets its capacity gauges when it starts). The hooks' two histograms
/// get Prometheus buckets ([`DURATION_BUCKETS`], [`ATTEMPTS_BUCKETS`]), so `_bucket`, `_sum` and
/// `_count` series can be aggregated across servers.
///
/// # Errors
///
/// [`Error::Metrics`] when the address cannot be bound (the message names it) or a recorder is
/// installed already.
pub fn install_metrics_exporter(listen: SocketAddr) -> Result<(), Error> {
    let error =
        |e: &dyn std::fmt::Display| Error::Metrics(format!("--metrics-address {listen}: {e}"));
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(
            Matcher::Full(names::DELIVERY_DURATION.into()),
            &DURATION_BUCKETS,
        )
        .map_err(|e| error(&e))?
        .set_buckets_for_metric(
            Matcher::Full(names::DELIVERY_ATTEMPTS.into()),
            &ATTEMPTS_BUCKETS,
        )
        .map_err(|e| error(&e))?
        .install()
        .map_err(|e| error(&e))
}
