//! Prometheus-style metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`, on by default): what the dispatcher counts, under which names and labels.
//!
//! **Nothing is recorded until the application installs a recorder** (for example
//! `metrics-exporter-prometheus`, which serves `/metrics`): without one every call below is a
//! no-op of a few nanoseconds. The library never picks an exporter. Install the recorder before
//! creating the [`Dispatcher`](crate::Dispatcher): [`Dispatcher::new`](crate::Dispatcher::new)
//! calls [`describe`] (the `# HELP` lines) and sets the capacity gauges then; the queue and
//! in-flight gauges are moved up and down by the events, so a recorder installed later would
//! show them off by the events already queued.
//!
//! Names follow Prometheus' conventions (base units, `_total` for counters, `_seconds` for
//! durations); the table with every metric, its type, labels and meaning is
//! `docs/metrics.md` in the repository and [`names`].
//!
//! **Labels never hold a username, a client IP or a URL** (cardinality and privacy): only
//! values from small closed sets: the protocol, the backend (`exec`, `http`, or a custom
//! backend's `&'static` name), the error kind ([`ErrorKind::as_str`](hook_core::ErrorKind::as_str)), the outcome
//! (`delivered`, `failed`), the refusal reason and the abandoned stage.
//!
//! The two histograms have no natural buckets in the facade: an exporter that renders them as
//! Prometheus histograms needs buckets; [`DURATION_BUCKETS`] and [`ATTEMPTS_BUCKETS`] suit them.
//!
//! ```
//! use hooks::metrics::{names, DURATION_BUCKETS};
//! assert_eq!(names::EVENTS_DELIVERED, "hooks_events_delivered_total");
//! assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
//! ```

#[cfg(feature = "metrics")]
use std::time::Instant;

#[cfg(feature = "metrics")]
use hook_core::{Backend, HookError, Protocol};

#[cfg(feature = "metrics")]
use crate::FireErrorKind;

/// Every metric name, as a constant (for an exporter's bucket configuration, alert rules,
/// dashboards and tests).
pub mod names {
    /// Counter `{protocol}`: every [`Dispatcher::fire`](crate::Dispatcher::fire) call
    /// (accepted, filtered and refused).
    pub const EVENTS_FIRED: &str = "hooks_events_fired_total";
    /// Counter `{protocol}`: events skipped by the protocol filter.
    pub const EVENTS_FILTERED: &str = "hooks_events_filtered_total";
    /// Counter `{reason}` (`queue_full`, `shutting_down`): events `fire` refused.
    pub const EVENTS_REFUSED: &str = "hooks_events_refused_total";
    /// Counter `{backend}`: events whose hook succeeded.
    pub const EVENTS_DELIVERED: &str = "hooks_events_delivered_total";
    /// Counter `{backend, error_kind}`: events whose hook failed (retries exhausted).
    pub const EVENTS_FAILED: &str = "hooks_events_failed_total";
    /// Counter `{stage}` (`queued`, `running`): accepted events dropped at the shutdown deadline
    /// (or when the dispatcher was dropped).
    pub const EVENTS_ABANDONED: &str = "hooks_events_abandoned_total";
    /// Histogram `{backend, outcome}`: seconds from the hook's start to its outcome, retries
    /// and backoff waits included.
    pub const DELIVERY_DURATION: &str = "hooks_delivery_duration_seconds";
    /// Histogram `{backend, outcome}`: attempts one event took (HTTP retries; 1 for programs).
    pub const DELIVERY_ATTEMPTS: &str = "hooks_delivery_attempts";
    /// Gauge: events waiting in the dispatchers' queues.
    pub const QUEUE_DEPTH: &str = "hooks_queue_depth";
    /// Gauge: the dispatchers' queue capacity.
    pub const QUEUE_CAPACITY: &str = "hooks_queue_capacity";
    /// Gauge: hooks running now.
    pub const IN_FLIGHT: &str = "hooks_in_flight";
    /// Gauge: the dispatchers' in-flight limit.
    pub const IN_FLIGHT_LIMIT: &str = "hooks_in_flight_limit";

    /// Gauge: spooled events waiting for their first delivery or a replay (`hook-spool`).
    pub const SPOOL_PENDING: &str = "hooks_spool_pending";
    /// Gauge: spooled events waiting for a later redelivery after a transient failure.
    pub const SPOOL_DEFERRED: &str = "hooks_spool_deferred";
    /// Gauge: dead letters (given up: permanent failure or older than `max_age`).
    pub const SPOOL_DEAD: &str = "hooks_spool_dead";
    /// Gauge: the spool file's size in bytes.
    pub const SPOOL_BYTES: &str = "hooks_spool_bytes";
    /// Counter: write transactions committed by the spool writer.
    pub const SPOOL_COMMITS: &str = "hooks_spool_commits_total";
    /// Histogram: seconds one spool commit took (fsync included).
    pub const SPOOL_COMMIT_DURATION: &str = "hooks_spool_commit_duration_seconds";
    /// Counter: events delivered from memory only because the spool refused them (full, broken).
    pub const SPOOL_BYPASSED: &str = "hooks_spool_bypassed_total";
    /// Counter: events kept only in the spool because the in-memory queue was full.
    pub const SPOOL_SPILLED: &str = "hooks_spool_spilled_total";
    /// Counter: pending events replayed from the spool at start-up.
    pub const SPOOL_REPLAYED: &str = "hooks_spool_replayed_total";
    /// Counter: damaged spool files renamed aside at start-up.
    pub const SPOOL_CORRUPT_FILES: &str = "hooks_spool_corrupt_files_total";

    /// Counter `{outcome}`: messages `hookctl relay` took from the stream and ran the hook for.
    pub const RELAY_HANDLED: &str = "hooks_relay_messages_handled_total";
    /// Counter: messages acknowledged (delivered, or a failure that is never retried).
    pub const RELAY_ACKED: &str = "hooks_relay_messages_acked_total";
    /// Counter: messages negatively acknowledged for a later redelivery.
    pub const RELAY_NAKED: &str = "hooks_relay_messages_naked_total";
    /// Counter: messages terminated (never redelivered: permanent failure or too many deliveries).
    pub const RELAY_TERMINATED: &str = "hooks_relay_messages_terminated_total";
    /// Counter: messages received that the stream had delivered before.
    pub const RELAY_REDELIVERED: &str = "hooks_relay_messages_redelivered_total";

    /// The dispatcher's metrics (recorded by this crate).
    pub const DISPATCHER: [&str; 12] = [
        EVENTS_FIRED,
        EVENTS_FILTERED,
        EVENTS_REFUSED,
        EVENTS_DELIVERED,
        EVENTS_FAILED,
        EVENTS_ABANDONED,
        DELIVERY_DURATION,
        DELIVERY_ATTEMPTS,
        QUEUE_DEPTH,
        QUEUE_CAPACITY,
        IN_FLIGHT,
        IN_FLIGHT_LIMIT,
    ];
}

/// Buckets (seconds) for [`names::DELIVERY_DURATION`]: 1 ms to SFTPGo's default retry budget and
/// beyond (an HTTP hook that exhausts its retries takes about 94 s).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Buckets for [`names::DELIVERY_ATTEMPTS`]: 1 to 10 attempts.
pub const ATTEMPTS_BUCKETS: [f64; 7] = [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0];

/// Registers the `# HELP` text and units of the dispatcher's metrics with the installed
/// recorder. [`Dispatcher::new`](crate::Dispatcher::new) calls it; call it yourself only if you
/// install a recorder after creating the dispatcher. A no-op without the `metrics` feature.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_counter!(
            names::EVENTS_FIRED,
            Unit::Count,
            "Post-disconnect events handed to the dispatcher (accepted, filtered or refused)."
        );
        describe_counter!(
            names::EVENTS_FILTERED,
            Unit::Count,
            "Post-disconnect events skipped because their protocol does not fire a hook."
        );
        describe_counter!(
            names::EVENTS_REFUSED,
            Unit::Count,
            "Post-disconnect events refused (not delivered): queue full or shutting down."
        );
        describe_counter!(
            names::EVENTS_DELIVERED,
            Unit::Count,
            "Post-disconnect events whose hook succeeded."
        );
        describe_counter!(
            names::EVENTS_FAILED,
            Unit::Count,
            "Post-disconnect events whose hook failed, by error kind."
        );
        describe_counter!(
            names::EVENTS_ABANDONED,
            Unit::Count,
            "Accepted post-disconnect events abandoned at the shutdown deadline."
        );
        describe_histogram!(
            names::DELIVERY_DURATION,
            Unit::Seconds,
            "Time from a hook's start to its outcome, retries and waits included."
        );
        describe_histogram!(
            names::DELIVERY_ATTEMPTS,
            Unit::Count,
            "Attempts one post-disconnect event took."
        );
        describe_gauge!(
            names::QUEUE_DEPTH,
            Unit::Count,
            "Post-disconnect events waiting in the queue."
        );
        describe_gauge!(
            names::QUEUE_CAPACITY,
            Unit::Count,
            "Capacity of the post-disconnect event queue."
        );
        describe_gauge!(
            names::IN_FLIGHT,
            Unit::Count,
            "Post-disconnect hooks running now."
        );
        describe_gauge!(
            names::IN_FLIGHT_LIMIT,
            Unit::Count,
            "Most post-disconnect hooks allowed to run at once."
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The recording calls the dispatcher makes (one line each there).
// ---------------------------------------------------------------------------------------------

/// A dispatcher was created: describe the metrics, add its capacity and limit to the gauges and
/// make the refusal and abandonment series exist (at 0) so alert rules see them from the start.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn opened(queue_capacity: usize, max_in_flight: usize) {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{counter, gauge};
        describe();
        gauge!("hooks_queue_capacity").increment(queue_capacity as f64);
        gauge!("hooks_in_flight_limit").increment(max_in_flight as f64);
        gauge!("hooks_queue_depth").increment(0.0);
        gauge!("hooks_in_flight").increment(0.0);
        counter!("hooks_events_refused_total", "reason" => "queue_full").increment(0);
        counter!("hooks_events_refused_total", "reason" => "shutting_down").increment(0);
        counter!("hooks_events_abandoned_total", "stage" => "queued").increment(0);
        counter!("hooks_events_abandoned_total", "stage" => "running").increment(0);
    }
}

/// The last handle of a dispatcher was dropped: take its capacity and limit off the gauges.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn closed(queue_capacity: usize, max_in_flight: usize) {
    #[cfg(feature = "metrics")]
    {
        ::metrics::gauge!("hooks_queue_capacity").decrement(queue_capacity as f64);
        ::metrics::gauge!("hooks_in_flight_limit").decrement(max_in_flight as f64);
    }
}

/// `fire` was called with an event of this protocol.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn fired(protocol: hook_core::Protocol) {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::counter;
        // Literal labels: static keys, no allocation on the hot path.
        match protocol {
            Protocol::Sftp => counter!("hooks_events_fired_total", "protocol" => "SFTP"),
            Protocol::Scp => counter!("hooks_events_fired_total", "protocol" => "SCP"),
            Protocol::Ssh => counter!("hooks_events_fired_total", "protocol" => "SSH"),
            Protocol::Ftp => counter!("hooks_events_fired_total", "protocol" => "FTP"),
            Protocol::Dav => counter!("hooks_events_fired_total", "protocol" => "DAV"),
            Protocol::Http => counter!("hooks_events_fired_total", "protocol" => "HTTP"),
            Protocol::Oidc => counter!("hooks_events_fired_total", "protocol" => "OIDC"),
            _ => counter!("hooks_events_fired_total", "protocol" => "other"),
        }
        .increment(1);
    }
}

/// The protocol filter skipped an event.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn filtered(protocol: hook_core::Protocol) {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::counter;
        match protocol {
            Protocol::Sftp => counter!("hooks_events_filtered_total", "protocol" => "SFTP"),
            Protocol::Scp => counter!("hooks_events_filtered_total", "protocol" => "SCP"),
            Protocol::Ssh => counter!("hooks_events_filtered_total", "protocol" => "SSH"),
            Protocol::Ftp => counter!("hooks_events_filtered_total", "protocol" => "FTP"),
            Protocol::Dav => counter!("hooks_events_filtered_total", "protocol" => "DAV"),
            Protocol::Http => counter!("hooks_events_filtered_total", "protocol" => "HTTP"),
            Protocol::Oidc => counter!("hooks_events_filtered_total", "protocol" => "OIDC"),
            _ => counter!("hooks_events_filtered_total", "protocol" => "other"),
        }
        .increment(1);
    }
}

/// `fire` refused an event.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn refused(kind: crate::FireErrorKind) {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::counter;
        match kind {
            FireErrorKind::QueueFull => {
                counter!("hooks_events_refused_total", "reason" => "queue_full")
            }
            FireErrorKind::ShuttingDown => {
                counter!("hooks_events_refused_total", "reason" => "shutting_down")
            }
        }
        .increment(1);
    }
}

/// Events entered (`n` > 0) or left (`n` < 0) the queue.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn queue_depth(n: i32) {
    #[cfg(feature = "metrics")]
    ::metrics::gauge!("hooks_queue_depth").increment(f64::from(n));
}

/// Hooks started (`n` > 0) or ended (`n` < 0).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
#[inline]
pub(crate) fn in_flight(n: i32) {
    #[cfg(feature = "metrics")]
    ::metrics::gauge!("hooks_in_flight").increment(f64::from(n));
}

/// An accepted event was abandoned: never started (`running == false`) or cancelled while its
/// hook ran.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn abandoned(running: bool) {
    #[cfg(feature = "metrics")]
    if running {
        ::metrics::counter!("hooks_events_abandoned_total", "stage" => "running").increment(1);
    } else {
        ::metrics::counter!("hooks_events_abandoned_total", "stage" => "queued").increment(1);
    }
}

/// When a hook call started (a zero-sized nothing without the `metrics` feature).
#[derive(Debug)]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    started: Instant,
}

impl Timer {
    /// Now.
    #[inline]
    pub(crate) fn start() -> Timer {
        Timer {
            #[cfg(feature = "metrics")]
            started: Instant::now(),
        }
    }
}

/// A hook call ended with `outcome`: the delivered or failed counter, the duration and the
/// attempts.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn finished(timer: Timer, outcome: &Result<hook_core::Delivery, hook_core::HookError>) {
    #[cfg(feature = "metrics")]
    {
        use ::metrics::{counter, histogram};
        let seconds = timer.started.elapsed().as_secs_f64();
        let (backend, outcome_label, attempts) = match outcome {
            Ok(delivery) => {
                let backend = backend_label(Some(delivery.backend()));
                counter!("hooks_events_delivered_total", "backend" => backend).increment(1);
                (backend, "delivered", delivery.attempts())
            }
            Err(err) => failed_counter(err),
        };
        histogram!(
            "hooks_delivery_duration_seconds",
            "backend" => backend,
            "outcome" => outcome_label
        )
        .record(seconds);
        histogram!(
            "hooks_delivery_attempts",
            "backend" => backend,
            "outcome" => outcome_label
        )
        .record(f64::from(attempts));
    }
}

#[cfg(feature = "metrics")]
fn failed_counter(err: &HookError) -> (&'static str, &'static str, u32) {
    let backend = backend_label(err.backend());
    ::metrics::counter!(
        "hooks_events_failed_total",
        "backend" => backend,
        "error_kind" => err.kind().as_str()
    )
    .increment(1);
    (backend, "failed", err.attempts())
}

/// The `backend` label: a closed set (`exec`, `http`, a custom backend's static name, or
/// `unknown` when an error does not say).
#[cfg(feature = "metrics")]
fn backend_label(backend: Option<Backend>) -> &'static str {
    match backend {
        Some(Backend::Exec) => "exec",
        Some(Backend::Http) => "http",
        Some(Backend::Custom(name)) => name,
        Some(_) | None => "unknown",
    }
}
