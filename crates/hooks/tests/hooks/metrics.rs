//! The metrics the dispatcher records through the `metrics` facade, seen by a recorder of our own
//! installed for the test's thread only (`metrics::with_local_recorder` around a current-thread
//! runtime, so tests running in parallel do not mix their numbers): names, labels, values, and
//! that no label ever holds a username, an IP or a URL.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hook_test_support::{Response, TestServer};
use hooks::metrics::names;
use hooks::{
    DisconnectEvent, Dispatcher, DispatcherOptions, FireErrorKind, HookConfig, Protocol, build_hook,
};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

use crate::support::{FAIL, TestHook};

/// One series: its counter or gauge value, or its histogram samples.
#[derive(Debug, Default)]
struct Series {
    value: Mutex<f64>,
    samples: Mutex<Vec<f64>>,
}

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        *self.value.lock().unwrap() += value as f64;
    }
    fn absolute(&self, value: u64) {
        *self.value.lock().unwrap() = value as f64;
    }
}

impl GaugeFn for Series {
    fn increment(&self, value: f64) {
        *self.value.lock().unwrap() += value;
    }
    fn decrement(&self, value: f64) {
        *self.value.lock().unwrap() -= value;
    }
    fn set(&self, value: f64) {
        *self.value.lock().unwrap() = value;
    }
}

impl HistogramFn for Series {
    fn record(&self, value: f64) {
        self.samples.lock().unwrap().push(value);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A series' name and labels.
type SeriesKey = (String, Vec<(String, String)>);
/// A description: type, unit and help text.
type Description = (Kind, Option<Unit>, String);

/// A recorder that keeps every series by name and labels, and every description.
#[derive(Debug, Default)]
struct TestRecorder {
    series: Mutex<BTreeMap<SeriesKey, (Kind, Arc<Series>)>>,
    described: Mutex<BTreeMap<String, Description>>,
    registrations: AtomicU64,
}

impl TestRecorder {
    fn get(&self, kind: Kind, key: &Key) -> Arc<Series> {
        self.registrations.fetch_add(1, SeqCst);
        let labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let mut series = self.series.lock().unwrap();
        let (seen, series) = series
            .entry((key.name().to_owned(), labels))
            .or_insert_with(|| (kind, Arc::default()));
        assert_eq!(*seen, kind, "{} registered as two types", key.name());
        Arc::clone(series)
    }

    fn describe(&self, kind: Kind, name: KeyName, unit: Option<Unit>, help: SharedString) {
        self.described
            .lock()
            .unwrap()
            .insert(name.as_str().to_owned(), (kind, unit, help.into_owned()));
    }

    /// The value of the series `name` with exactly these labels (0 when it was never touched).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels)
            .map_or(0.0, |s| *s.value.lock().unwrap())
    }

    /// The samples of the histogram `name` with exactly these labels.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.find(name, labels)
            .map_or_else(Vec::new, |s| s.samples.lock().unwrap().clone())
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<Arc<Series>> {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.series
            .lock()
            .unwrap()
            .iter()
            .find(|((n, l), _)| {
                let mut l = l.clone();
                l.sort();
                n == name && l == labels
            })
            .map(|(_, (_, s))| Arc::clone(s))
    }

    /// Every (name, label key, label value) seen.
    fn labels(&self) -> Vec<(String, String, String)> {
        self.series
            .lock()
            .unwrap()
            .keys()
            .flat_map(|(name, labels)| {
                labels
                    .iter()
                    .map(move |(k, v)| (name.clone(), k.clone(), v.clone()))
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .series
            .lock()
            .unwrap()
            .keys()
            .map(|(n, _)| n.clone())
            .collect();
        names.dedup();
        names
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(Kind::Counter, key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(Kind::Gauge, key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(Kind::Histogram, key, unit, description);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.get(Kind::Counter, key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.get(Kind::Gauge, key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.get(Kind::Histogram, key))
    }
}

/// Runs `test` on a current-thread runtime with `recorder` installed for this thread only: the
/// dispatcher task and every hook task run on it, so everything they record lands there.
fn with_recorder<T>(recorder: &TestRecorder, test: impl AsyncFnOnce() -> T) -> T {
    metrics::with_local_recorder(recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test())
    })
}

fn event_from(ip: &str, protocol: Protocol, username: &str) -> DisconnectEvent {
    DisconnectEvent::builder(protocol)
        .ip(ip)
        .username(username)
        .duration(Duration::from_millis(1500))
        .build()
}

/// Every label value is one of a small closed set: never a username, IP, URL, or any part of one.
fn assert_no_private_label(recorder: &TestRecorder, secrets: &[String]) {
    let allowed: &[(&str, &[&str])] = &[
        (
            "protocol",
            &["SFTP", "SCP", "SSH", "FTP", "DAV", "HTTP", "OIDC", "other"],
        ),
        (
            "reason",
            &[
                "queue_full",
                "shutting_down",
                "spool_full",
                "spool_unavailable",
                "no_spool",
            ],
        ),
        ("stage", &["queued", "running"]),
        ("outcome", &["delivered", "failed"]),
        ("backend", &["exec", "http", "test", "unknown"]),
        (
            "error_kind",
            &[
                "timeout",
                "deadline_exceeded",
                "spawn",
                "exit_status",
                "signal",
                "http_status",
                "transport",
                "tls",
                "redirect",
                "invalid_event",
                "cancelled",
                "other",
            ],
        ),
    ];
    let labels = recorder.labels();
    assert!(!labels.is_empty(), "no labelled series recorded at all");
    for (name, key, value) in &labels {
        for secret in secrets {
            assert!(
                !value.contains(secret.as_str()) && !key.contains(secret.as_str()),
                "{name}{{{key}={value:?}}} holds {secret:?}"
            );
        }
        let (_, values) = allowed
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{name} has an unexpected label {key}={value:?}"));
        assert!(
            values.contains(&value.as_str()),
            "{name}{{{key}={value:?}}}: not in the closed set {values:?}"
        );
    }
}

#[test]
fn no_label_holds_a_username_an_ip_or_a_url() {
    let recorder = TestRecorder::default();
    let endpoint = TestServer::builder()
        .default_response(Response::ok())
        .start_blocking();
    let failing = TestServer::builder()
        .default_response(Response::status(503))
        .start_blocking();
    let mut secrets: Vec<String> = Vec::new();
    with_recorder(&recorder, async || {
        // Program-like custom hook: delivered and failed (usernames starting with "fail").
        let hook = TestHook::new(Duration::from_millis(1));
        let dispatcher = Dispatcher::new(
            hook,
            DispatcherOptions::default()
                .with_queue_capacity(8)
                .with_protocols([Protocol::Sftp, Protocol::Ftp]),
        );
        for i in 0..20u32 {
            let username = if i % 3 == 0 {
                format!("{FAIL}-zebra{i}")
            } else {
                format!("quokka{i}")
            };
            let ip = format!("198.51.100.{}", 100 + i);
            let protocol = [Protocol::Sftp, Protocol::Ftp, Protocol::Dav][i as usize % 3];
            secrets.extend([username.clone(), ip.clone()]);
            // Fired without yielding: the 8-slot queue refuses some (queue_full).
            let _ = dispatcher.fire(event_from(&ip, protocol, &username));
        }
        dispatcher.shutdown(Duration::from_secs(30)).await;
        let refused = dispatcher.fire(event_from("203.0.113.250", Protocol::Sftp, "narwhal"));
        assert_eq!(refused.unwrap_err().kind(), FireErrorKind::ShuttingDown);
        secrets.extend(["203.0.113.250".into(), "narwhal".into()]);

        // The real HTTP backend, with a user, a password and a query in the URL.
        for (server, path) in [
            (&endpoint, "/ok-path-xyzzy"),
            (&failing, "/down-path-plugh"),
        ] {
            let url = server.url(&format!("{path}?token=s3cr3t")).replacen(
                "http://",
                "http://hookuser:hookpass@",
                1,
            );
            secrets.extend([
                url.clone(),
                path.trim_start_matches('/').to_owned(),
                "s3cr3t".into(),
                "hookuser".into(),
                "hookpass".into(),
                server.addr().port().to_string(),
                "127.0.0.1".into(),
            ]);
            let mut config = HookConfig::default();
            config.common.post_disconnect_hook = url;
            config.http.retry_max = 0;
            let dispatcher = Dispatcher::new(
                build_hook(&config).unwrap().expect("an HTTP hook"),
                DispatcherOptions::default(),
            );
            for i in 0..3u32 {
                let (ip, username) = (format!("2001:db8::{i}:7"), format!("wombat{i}"));
                secrets.extend([ip.clone(), username.clone()]);
                dispatcher
                    .fire(event_from(&ip, Protocol::Sftp, &username))
                    .unwrap();
            }
            dispatcher.shutdown(Duration::from_secs(30)).await;
        }
    });
    assert_eq!(endpoint.request_count(), 3);
    assert_eq!(failing.request_count(), 3);
    // The test can fail: the failing endpoint's failures and the refusals were recorded.
    assert_eq!(
        recorder.value(
            names::EVENTS_FAILED,
            &[("backend", "http"), ("error_kind", "http_status")]
        ),
        3.0
    );
    assert!(recorder.value(names::EVENTS_REFUSED, &[("reason", "queue_full")]) > 0.0);
    assert_no_private_label(&recorder, &secrets);
}

#[test]
fn counters_histograms_and_gauges_match_the_dispatchers_stats() {
    let recorder = TestRecorder::default();
    let stats = with_recorder(&recorder, async || {
        let hook = TestHook::with_attempts(Duration::from_millis(2), 2);
        let dispatcher = Dispatcher::new(
            hook,
            DispatcherOptions::default()
                .with_queue_capacity(5)
                .with_max_in_flight(3),
        );
        assert_eq!(recorder.value(names::QUEUE_CAPACITY, &[]), 5.0);
        assert_eq!(recorder.value(names::IN_FLIGHT_LIMIT, &[]), 3.0);
        for name in ["a", "b", "fail-c", "d", "fail-e", "f", "g"] {
            let _ = dispatcher.fire(event_from("192.0.2.1", Protocol::Sftp, name));
        }
        // Queue of 5: "f" and "g" were refused; nothing has started yet (no yield).
        assert_eq!(recorder.value(names::QUEUE_DEPTH, &[]), 5.0);
        let _ = dispatcher.fire(event_from("192.0.2.1", Protocol::Http, "h"));
        // While hooks run, the in-flight gauge follows the stats.
        while dispatcher.stats().in_flight < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(recorder.value(names::IN_FLIGHT, &[]), 3.0);
        assert_eq!(recorder.value(names::QUEUE_DEPTH, &[]), 2.0);
        dispatcher.shutdown(Duration::from_secs(30)).await;
        let stats = dispatcher.stats();
        drop(dispatcher);
        stats
    });
    assert_eq!(
        (
            stats.delivered,
            stats.failed,
            stats.refused_queue_full,
            stats.filtered
        ),
        (3, 2, 2, 1)
    );
    let sftp = [("protocol", "SFTP")];
    assert_eq!(recorder.value(names::EVENTS_FIRED, &sftp), 7.0);
    assert_eq!(
        recorder.value(names::EVENTS_FIRED, &[("protocol", "HTTP")]),
        1.0
    );
    assert_eq!(
        recorder.value(names::EVENTS_FILTERED, &[("protocol", "HTTP")]),
        1.0
    );
    assert_eq!(
        recorder.value(names::EVENTS_REFUSED, &[("reason", "queue_full")]),
        2.0
    );
    assert_eq!(
        recorder.value(names::EVENTS_REFUSED, &[("reason", "shutting_down")]),
        0.0
    );
    let test = ("backend", "test");
    assert_eq!(recorder.value(names::EVENTS_DELIVERED, &[test]), 3.0);
    assert_eq!(
        recorder.value(names::EVENTS_FAILED, &[test, ("error_kind", "exit_status")]),
        2.0
    );
    let delivered = [test, ("outcome", "delivered")];
    let failed = [test, ("outcome", "failed")];
    let durations = recorder.samples(names::DELIVERY_DURATION, &delivered);
    assert_eq!(durations.len(), 3);
    // Two attempts of 2 ms each (real time: at least 4 ms, in seconds).
    assert!(
        durations.iter().all(|s| (0.004..30.0).contains(s)),
        "{durations:?}"
    );
    assert_eq!(recorder.samples(names::DELIVERY_DURATION, &failed).len(), 2);
    assert_eq!(
        recorder.samples(names::DELIVERY_ATTEMPTS, &delivered),
        [2.0; 3]
    );
    assert_eq!(
        recorder.samples(names::DELIVERY_ATTEMPTS, &failed),
        [2.0; 2]
    );
    // At rest the gauges are back to zero, and the dropped dispatcher's capacity is gone.
    for gauge in [
        names::QUEUE_DEPTH,
        names::IN_FLIGHT,
        names::QUEUE_CAPACITY,
        names::IN_FLIGHT_LIMIT,
    ] {
        assert_eq!(recorder.value(gauge, &[]), 0.0, "{gauge}");
    }
    // Every name recorded is a documented dispatcher metric, and every one is described with
    // the type it is recorded as.
    let described = recorder.described.lock().unwrap();
    for name in recorder.names() {
        assert!(names::DISPATCHER.contains(&name.as_str()), "{name}");
    }
    for name in names::DISPATCHER {
        let (kind, unit, help) = described.get(name).unwrap_or_else(|| panic!("{name}"));
        assert!(!help.is_empty(), "{name}");
        let expected = if name.ends_with("_total") {
            Kind::Counter
        } else if hooks::metrics::HISTOGRAM_BUCKETS
            .iter()
            .any(|(histogram, _)| *histogram == name)
        {
            Kind::Histogram
        } else {
            Kind::Gauge
        };
        assert_eq!(*kind, expected, "{name}");
        if name.ends_with("_seconds") {
            assert_eq!(*unit, Some(Unit::Seconds), "{name}");
        }
    }
}

#[test]
fn abandoned_events_are_counted_by_stage() {
    let recorder = TestRecorder::default();
    with_recorder(&recorder, async || {
        let hook = TestHook::new(Duration::from_secs(3600));
        let dispatcher = Dispatcher::new(hook, DispatcherOptions::default().with_max_in_flight(1));
        for name in ["a", "b", "c"] {
            dispatcher
                .fire(event_from("192.0.2.1", Protocol::Ssh, name))
                .unwrap();
        }
        while dispatcher.stats().in_flight < 1 {
            tokio::task::yield_now().await;
        }
        let report = dispatcher.shutdown(Duration::from_millis(20)).await;
        assert_eq!((report.abandoned_running, report.abandoned_queued), (1, 2));
    });
    let stage = |s| recorder.value(names::EVENTS_ABANDONED, &[("stage", s)]);
    assert_eq!((stage("running"), stage("queued")), (1.0, 2.0));
    assert_eq!(recorder.value(names::IN_FLIGHT, &[]), 0.0);
    assert_eq!(recorder.value(names::QUEUE_DEPTH, &[]), 0.0);
    // A cancelled hook has no outcome of its own: no delivered/failed series.
    assert_eq!(
        recorder.value(
            names::EVENTS_FAILED,
            &[("backend", "unknown"), ("error_kind", "cancelled")]
        ),
        0.0
    );
    assert!(recorder.registrations.load(SeqCst) > 0);
}

/// The spool's counters: events replayed at start-up, and a damaged file set aside.
#[test]
fn spool_replays_and_damaged_files_are_counted() {
    let replay_dir = tempfile::tempdir().unwrap();
    {
        let (spool, _) =
            hooks::spool::Spool::open(hooks::spool::SpoolOptions::new(replay_dir.path())).unwrap();
        for i in 0..5 {
            spool
                .append(&event_from(
                    "192.0.2.9",
                    Protocol::Sftp,
                    &format!("left-{i}"),
                ))
                .unwrap();
        }
        spool.flush().wait().unwrap();
        spool.close().unwrap();
    }
    let damaged_dir = tempfile::tempdir().unwrap();
    std::fs::write(damaged_dir.path().join("spool.redb"), [0xA5u8; 8192]).unwrap();

    let start = |dir: &std::path::Path, delay: Duration| {
        let mut hooks_section = hooks::HooksSection::default();
        hooks_section.spool.dir = dir.display().to_string();
        let options = DispatcherOptions::from_config(&hooks_section).unwrap();
        Dispatcher::try_new(TestHook::new(delay), options).unwrap()
    };
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A hook that never ends: the five records of the last run stay pending, as sampled.
    let held = TestRecorder::default();
    with_recorder(&held, async || {
        let d = start(replay_dir.path(), Duration::from_secs(3600));
        until("pending 5", || held.value(names::SPOOL_PENDING, &[]) == 5.0).await;
        assert!(held.value(names::SPOOL_BYTES, &[]) > 0.0);
        assert_eq!(held.value(names::SPOOL_DEAD, &[]), 0.0);
        let report = d.shutdown(Duration::from_millis(20)).await;
        assert_eq!(report.kept, 5, "{report:?}");
    });
    // The next start delivers them; once the acks are committed none is pending.
    let replayed = TestRecorder::default();
    with_recorder(&replayed, async || {
        let d = start(replay_dir.path(), Duration::ZERO);
        until("delivered", || d.stats().delivered == 5).await;
        until("pending 0", || {
            replayed.value(names::SPOOL_PENDING, &[]) == 0.0
                && replayed.value(names::SPOOL_COMMITS, &[]) >= 1.0
        })
        .await;
        d.shutdown(Duration::from_secs(5)).await;
    });
    assert_eq!(replayed.value(names::SPOOL_REPLAYED, &[]), 5.0);
    assert_eq!(replayed.value(names::SPOOL_CORRUPT_FILES, &[]), 0.0);
    // Every commit the writer made (the acks at least) was timed: one sample each, in seconds.
    let took = replayed.samples(names::SPOOL_COMMIT_DURATION, &[]);
    assert!(!took.is_empty(), "no commit timed");
    assert!(
        took.len() as f64 >= replayed.value(names::SPOOL_COMMITS, &[]),
        "{} samples for {} commits",
        took.len(),
        replayed.value(names::SPOOL_COMMITS, &[])
    );
    assert!(
        took.iter().all(|&s| s > 0.0 && s < 10.0),
        "commit durations {took:?}"
    );
    assert_eq!(
        replayed.value(names::EVENTS_DELIVERED, &[("backend", "test")]),
        5.0
    );

    let damaged = TestRecorder::default();
    with_recorder(&damaged, async || {
        let d = start(damaged_dir.path(), Duration::ZERO);
        assert_eq!(d.stats().spool_corrupt, 1);
        d.shutdown(Duration::from_secs(5)).await;
    });
    assert_eq!(damaged.value(names::SPOOL_CORRUPT_FILES, &[]), 1.0);
    assert_eq!(damaged.value(names::SPOOL_REPLAYED, &[]), 0.0);
}

/// `fire_durable` is counted like `fire`: fired, and refused with its reason.
#[test]
fn fire_durable_refusals_are_counted_with_their_reason() {
    let recorder = TestRecorder::default();
    with_recorder(&recorder, async || {
        let d = Dispatcher::new(TestHook::new(Duration::ZERO), DispatcherOptions::default());
        let err = d
            .fire_durable(event_from("192.0.2.1", Protocol::Ftp, "bob"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), hooks::FireErrorKind::NoSpool);
        d.shutdown(Duration::from_secs(1)).await;
    });
    assert_eq!(
        recorder.value(names::EVENTS_REFUSED, &[("reason", "no_spool")]),
        1.0
    );
    assert_eq!(
        recorder.value(names::EVENTS_FIRED, &[("protocol", "FTP")]),
        1.0
    );
}
