//! Prometheus-style metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`, on by default): what the dispatcher counts, under which names and labels.
//!
//! **Nothing is recorded until the application installs a recorder** (for example
//! `metrics-exporter-prometheus`, which serves `/metrics`): without one every call below is a
//! no-op of a few nanoseconds. The library never picks an exporter. **Install the recorder
//! before creating the [`Dispatcher`](crate::Dispatcher)**: [`Dispatcher::new`](crate::Dispatcher::new)
//! calls [`describe`] (the `# HELP` lines) and registers the dispatcher's handles with the
//! recorder installed then, so that `fire` only adds to an atomic counter (no key is built or
//! looked up per event); a dispatcher created before the recorder records nothing.
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
use std::sync::OnceLock;
#[cfg(feature = "metrics")]
use std::time::Instant;

#[cfg(feature = "metrics")]
use ::metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
#[cfg(feature = "metrics")]
use hook_core::{Backend, ErrorKind, HookError, Protocol};

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
    /// Counter: messages of an event the relay held or had just settled (a redelivery that
    /// crossed the relay's ack): settled with it, the hook not run again.
    pub const RELAY_DUPLICATES: &str = "hooks_relay_messages_duplicate_total";

    /// The dispatcher's metrics (recorded by this crate), the spool's counters included.
    pub const DISPATCHER: [&str; 22] = [
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
        SPOOL_BYPASSED,
        SPOOL_SPILLED,
        SPOOL_REPLAYED,
        SPOOL_CORRUPT_FILES,
        SPOOL_PENDING,
        SPOOL_DEFERRED,
        SPOOL_DEAD,
        SPOOL_BYTES,
        SPOOL_COMMITS,
        SPOOL_COMMIT_DURATION,
    ];
}

/// Buckets (seconds) for [`names::DELIVERY_DURATION`]: 1 ms to SFTPGo's default retry budget and
/// beyond (an HTTP hook that exhausts its retries takes about 94 s).
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Buckets for [`names::DELIVERY_ATTEMPTS`]: 1 to 10 attempts.
pub const ATTEMPTS_BUCKETS: [f64; 7] = [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0];

/// Buckets (seconds) for [`names::SPOOL_COMMIT_DURATION`]: 100 µs (a commit of acks alone, no
/// fsync) to 5 s (a disk that stalls).
pub const COMMIT_DURATION_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 5.0,
];

/// Every histogram of this crate with its buckets: what an exporter is given
/// (`PrometheusBuilder::set_buckets_for_metric` for each pair).
pub const HISTOGRAM_BUCKETS: [(&str, &[f64]); 3] = [
    (names::DELIVERY_DURATION, &DURATION_BUCKETS),
    (names::DELIVERY_ATTEMPTS, &ATTEMPTS_BUCKETS),
    (names::SPOOL_COMMIT_DURATION, &COMMIT_DURATION_BUCKETS),
];

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
        describe_gauge!(
            names::SPOOL_PENDING,
            Unit::Count,
            "Spooled events waiting for their first delivery or a replay (sampled every second)."
        );
        describe_gauge!(
            names::SPOOL_DEFERRED,
            Unit::Count,
            "Spooled events waiting for a later redelivery after a transient failure."
        );
        describe_gauge!(
            names::SPOOL_DEAD,
            Unit::Count,
            "Dead letters kept in the spool (permanent failure, or older than hooks.spool.max_age)."
        );
        describe_gauge!(names::SPOOL_BYTES, Unit::Bytes, "The spool file's size.");
        describe_counter!(
            names::SPOOL_COMMITS,
            Unit::Count,
            "Write transactions committed by the spool's writer (group commits)."
        );
        describe_histogram!(
            names::SPOOL_COMMIT_DURATION,
            Unit::Seconds,
            "Time one write transaction of the spool took, fsync included."
        );
        describe_counter!(
            names::SPOOL_BYPASSED,
            Unit::Count,
            "Events delivered from memory only because the spool refused them (full, broken)."
        );
        describe_counter!(
            names::SPOOL_SPILLED,
            Unit::Count,
            "Events kept only in the spool because the in-memory queue was full (delayed, not refused)."
        );
        describe_counter!(
            names::SPOOL_REPLAYED,
            Unit::Count,
            "Pending events replayed from the spool at start-up."
        );
        describe_counter!(
            names::SPOOL_CORRUPT_FILES,
            Unit::Count,
            "Damaged spool files renamed aside at start-up."
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
// The recording the dispatcher does (one line each there), through handles registered once per
// dispatcher: the hot path (`fire`) is an atomic add on the recorder's counter, with no key to
// build, hash or look up per event. Without a recorder the handles are no-ops.
// ---------------------------------------------------------------------------------------------

/// One dispatcher's metric handles (a zero-sized nothing without the `metrics` feature).
#[derive(Debug)]
pub(crate) struct Metrics {
    #[cfg(feature = "metrics")]
    handles: Box<Handles>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Handles {
    queue_capacity: usize,
    max_in_flight: usize,
    /// By [`protocol_index`], registered on first use (a series per protocol seen).
    fired: [OnceLock<Counter>; PROTOCOLS],
    filtered: [OnceLock<Counter>; PROTOCOLS],
    /// `queue_full`, `shutting_down`, `spool_full`, `spool_unavailable`, `no_spool`.
    refused: [Counter; 5],
    /// The spool's counters: bypassed, spilled, replayed, corrupt files.
    spool: [Counter; 4],
    /// The spool's gauges, sampled: pending, deferred, dead, file bytes; and its commits.
    spool_gauges: [Gauge; 4],
    spool_commits: Counter,
    /// `queued`, `running`.
    abandoned: [Counter; 2],
    queue_depth: Gauge,
    in_flight: Gauge,
    /// The handles of the first backend that reports an outcome (a dispatcher runs one hook).
    outcomes: OnceLock<OutcomeHandles>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct OutcomeHandles {
    backend: &'static str,
    delivered: Counter,
    /// By outcome: delivered, failed.
    duration: [Histogram; 2],
    attempts: [Histogram; 2],
    /// By [`kind_index`], registered on first use.
    failed: [OnceLock<Counter>; KINDS],
}

#[cfg(feature = "metrics")]
const PROTOCOLS: usize = 8;
#[cfg(feature = "metrics")]
const KINDS: usize = 12;

#[cfg(feature = "metrics")]
fn protocol_index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Sftp => 0,
        Protocol::Scp => 1,
        Protocol::Ssh => 2,
        Protocol::Ftp => 3,
        Protocol::Dav => 4,
        Protocol::Http => 5,
        Protocol::Oidc => 6,
        _ => 7,
    }
}

/// The counter `name{protocol}` of `handles`, registered on first use.
#[cfg(feature = "metrics")]
#[inline]
fn by_protocol<'a>(
    handles: &'a [OnceLock<Counter>; PROTOCOLS],
    name: &'static str,
    protocol: Protocol,
) -> &'a Counter {
    let i = protocol_index(protocol);
    handles[i].get_or_init(|| counter!(name, "protocol" => PROTOCOL_LABELS[i]))
}

/// The `protocol` label of each [`protocol_index`].
#[cfg(feature = "metrics")]
const PROTOCOL_LABELS: [&str; PROTOCOLS] =
    ["SFTP", "SCP", "SSH", "FTP", "DAV", "HTTP", "OIDC", "other"];

#[cfg(feature = "metrics")]
fn kind_index(kind: ErrorKind) -> Option<usize> {
    Some(match kind {
        ErrorKind::Timeout => 0,
        ErrorKind::DeadlineExceeded => 1,
        ErrorKind::Spawn => 2,
        ErrorKind::ExitStatus => 3,
        ErrorKind::Signal => 4,
        ErrorKind::HttpStatus => 5,
        ErrorKind::Transport => 6,
        ErrorKind::Tls => 7,
        ErrorKind::Redirect => 8,
        ErrorKind::InvalidEvent => 9,
        ErrorKind::Cancelled => 10,
        ErrorKind::Other => 11,
        _ => return None,
    })
}

/// What the spool did, for [`Metrics::spool`] (the index of its counter).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "spool"), allow(dead_code))]
pub(crate) enum SpoolEvent {
    /// Delivered from memory only: the spool refused the event.
    Bypassed = 0,
    /// Kept in the spool only: the queue was full.
    Spilled = 1,
    /// Replayed from the spool at start-up.
    Replayed = 2,
    /// A damaged spool file set aside at start-up.
    CorruptFile = 3,
}

impl Metrics {
    /// A dispatcher starts: describe the metrics, register its handles with the installed
    /// recorder, add its capacity and limit to the gauges, and make the refusal and abandonment
    /// series exist (at 0) so that alert rules see them from the start.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(queue_capacity: usize, max_in_flight: usize) -> Metrics {
        #[cfg(feature = "metrics")]
        {
            describe();
            let handles = Handles {
                queue_capacity,
                max_in_flight,
                fired: std::array::from_fn(|_| OnceLock::new()),
                filtered: std::array::from_fn(|_| OnceLock::new()),
                refused: [
                    "queue_full",
                    "shutting_down",
                    "spool_full",
                    "spool_unavailable",
                    "no_spool",
                ]
                .map(|reason| counter!(names::EVENTS_REFUSED, "reason" => reason)),
                spool: [
                    names::SPOOL_BYPASSED,
                    names::SPOOL_SPILLED,
                    names::SPOOL_REPLAYED,
                    names::SPOOL_CORRUPT_FILES,
                ]
                .map(|name| counter!(name)),
                spool_gauges: [
                    names::SPOOL_PENDING,
                    names::SPOOL_DEFERRED,
                    names::SPOOL_DEAD,
                    names::SPOOL_BYTES,
                ]
                .map(|name| gauge!(name)),
                spool_commits: counter!(names::SPOOL_COMMITS),
                abandoned: ["queued", "running"]
                    .map(|stage| counter!(names::EVENTS_ABANDONED, "stage" => stage)),
                queue_depth: gauge!(names::QUEUE_DEPTH),
                in_flight: gauge!(names::IN_FLIGHT),
                outcomes: OnceLock::new(),
            };
            gauge!(names::QUEUE_CAPACITY).increment(queue_capacity as f64);
            gauge!(names::IN_FLIGHT_LIMIT).increment(max_in_flight as f64);
            handles.queue_depth.increment(0.0);
            handles.in_flight.increment(0.0);
            for c in handles
                .refused
                .iter()
                .chain(&handles.abandoned)
                .chain(&handles.spool)
            {
                c.increment(0);
            }
            Metrics {
                handles: Box::new(handles),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Metrics {}
    }

    /// `fire` was called with an event of this protocol.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn fired(&self, protocol: hook_core::Protocol) {
        #[cfg(feature = "metrics")]
        by_protocol(&self.handles.fired, names::EVENTS_FIRED, protocol).increment(1);
    }

    /// The protocol filter skipped an event.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn filtered(&self, protocol: hook_core::Protocol) {
        #[cfg(feature = "metrics")]
        by_protocol(&self.handles.filtered, names::EVENTS_FILTERED, protocol).increment(1);
    }

    /// `fire` refused an event.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn refused(&self, kind: crate::FireErrorKind) {
        #[cfg(feature = "metrics")]
        self.handles.refused[match kind {
            FireErrorKind::QueueFull => 0,
            FireErrorKind::ShuttingDown => 1,
            FireErrorKind::SpoolFull => 2,
            FireErrorKind::SpoolUnavailable => 3,
            FireErrorKind::NoSpool => 4,
        }]
        .increment(1);
    }

    /// Events entered (`n` > 0) or left (`n` < 0) the queue.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn queue_depth(&self, n: i32) {
        #[cfg(feature = "metrics")]
        self.handles.queue_depth.increment(f64::from(n));
    }

    /// Hooks started (`n` > 0) or ended (`n` < 0).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn in_flight(&self, n: i32) {
        #[cfg(feature = "metrics")]
        self.handles.in_flight.increment(f64::from(n));
    }

    /// A spool event: `Bypassed`, `Spilled`, `Replayed` or `CorruptFile`, `n` times.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[inline]
    pub(crate) fn spool(&self, what: SpoolEvent, n: u64) {
        #[cfg(feature = "metrics")]
        self.handles.spool[what as usize].increment(n);
    }

    /// A sample of the spool: its pending, deferred and dead records, its file's size, and the
    /// commits its writer made so far (set, not added: one spool per directory and process).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub(crate) fn spool_sample(&self, gauges: [u64; 4], commits: u64) {
        #[cfg(feature = "metrics")]
        {
            for (gauge, value) in self.handles.spool_gauges.iter().zip(gauges) {
                gauge.set(value as f64);
            }
            self.handles.spool_commits.absolute(commits);
        }
    }

    /// Has `spool` record the duration of each of its commits in
    /// [`names::SPOOL_COMMIT_DURATION`] (a handle registered now, with the recorder installed
    /// now, like every other handle of the dispatcher).
    #[cfg(feature = "spool")]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn observe_commits(&self, spool: &hook_spool::Spool) {
        #[cfg(feature = "metrics")]
        {
            let took = histogram!(names::SPOOL_COMMIT_DURATION);
            spool.set_commit_observer(Box::new(move |d| took.record(d.as_secs_f64())));
        }
    }

    /// An accepted event was abandoned: never started (`running == false`) or cancelled while
    /// its hook ran.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn abandoned(&self, running: bool) {
        #[cfg(feature = "metrics")]
        self.handles.abandoned[usize::from(running)].increment(1);
    }

    /// A hook call ended with `outcome`: the delivered or failed counter, the duration and the
    /// attempts.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn finished(
        &self,
        timer: Timer,
        outcome: &Result<hook_core::Delivery, hook_core::HookError>,
    ) {
        #[cfg(feature = "metrics")]
        {
            let seconds = timer.started.elapsed().as_secs_f64();
            let (backend, attempts) = match outcome {
                Ok(delivery) => (backend_label(Some(delivery.backend())), delivery.attempts()),
                Err(err) => (backend_label(err.backend()), err.attempts()),
            };
            let handles = self
                .handles
                .outcomes
                .get_or_init(|| OutcomeHandles::new(backend));
            if handles.backend == backend {
                handles.record(seconds, attempts, outcome);
            } else {
                // Another backend than the first one seen (a hook that delegates): uncached.
                OutcomeHandles::new(backend).record(seconds, attempts, outcome);
            }
        }
    }
}

#[cfg(feature = "metrics")]
impl OutcomeHandles {
    fn new(backend: &'static str) -> OutcomeHandles {
        let by_outcome = |name: &'static str| {
            ["delivered", "failed"]
                .map(|outcome| histogram!(name, "backend" => backend, "outcome" => outcome))
        };
        OutcomeHandles {
            backend,
            delivered: counter!(names::EVENTS_DELIVERED, "backend" => backend),
            duration: by_outcome(names::DELIVERY_DURATION),
            attempts: by_outcome(names::DELIVERY_ATTEMPTS),
            failed: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn record(
        &self,
        seconds: f64,
        attempts: u32,
        outcome: &Result<hook_core::Delivery, HookError>,
    ) {
        let index = match outcome {
            Ok(_) => {
                self.delivered.increment(1);
                0
            }
            Err(err) => {
                let failed = |kind: ErrorKind| {
                    counter!(
                        names::EVENTS_FAILED,
                        "backend" => self.backend,
                        "error_kind" => kind.as_str()
                    )
                };
                match kind_index(err.kind()) {
                    Some(i) => self.failed[i]
                        .get_or_init(|| failed(err.kind()))
                        .increment(1),
                    None => failed(err.kind()).increment(1),
                }
                1
            }
        };
        self.duration[index].record(seconds);
        self.attempts[index].record(f64::from(attempts));
    }
}

#[cfg(feature = "metrics")]
impl Drop for Metrics {
    /// The dispatcher is gone: take its capacity and limit off the gauges.
    fn drop(&mut self) {
        gauge!(names::QUEUE_CAPACITY).decrement(self.handles.queue_capacity as f64);
        gauge!(names::IN_FLIGHT_LIMIT).decrement(self.handles.max_in_flight as f64);
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
