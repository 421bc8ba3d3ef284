//! [`install_metrics_exporter`]: `/metrics` for Prometheus (the binary's `--metrics-address`).

use std::net::SocketAddr;

use hooks::metrics::HISTOGRAM_BUCKETS;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::Error;

/// Installs `metrics-exporter-prometheus` as the process' global `metrics` recorder and serves
/// its text format at `http://LISTEN/metrics` (any path answers; only its HTTP listener is
/// compiled in: no push gateway, no TLS).
///
/// Call it inside the tokio runtime the server runs on, **before**
/// [`SftpServer::bind`](crate::SftpServer::bind) creates the hooks' dispatcher (the dispatcher
/// describes its metrics and sets its capacity gauges when it starts). The hooks' histograms
/// get Prometheus buckets ([`HISTOGRAM_BUCKETS`](hooks::metrics::HISTOGRAM_BUCKETS)), so `_bucket`, `_sum` and
/// `_count` series can be aggregated across servers.
///
/// # Errors
///
/// [`Error::Metrics`] when the address cannot be bound (the message names it) or a recorder is
/// installed already.
pub fn install_metrics_exporter(listen: SocketAddr) -> Result<(), Error> {
    let error =
        |e: &dyn std::fmt::Display| Error::Metrics(format!("--metrics-address {listen}: {e}"));
    let mut builder = PrometheusBuilder::new().with_http_listener(listen);
    for (name, buckets) in HISTOGRAM_BUCKETS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            .map_err(|e| error(&e))?;
    }
    builder.install().map_err(|e| error(&e))
}
