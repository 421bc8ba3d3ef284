//! The Dispatcher with a spool, against real loopback HTTP endpoints: an outage (503, then
//! connection refused) loses nothing and is probed once per redelivery step; expired events are
//! dead with their reason; a full spool bypasses without blocking or evicting; a damaged file at
//! start-up is set aside; 100,000 pending events replay while new events get through; shutdown
//! keeps what it could not deliver.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hook_test_support::{RefusedPort, Response, TestServer};
use hooks::spool::{Spool, SpoolOptions, State};
use hooks::{
    DisconnectEvent, Dispatcher, DispatcherOptions, EventId, FireErrorKind, Fired, HookConfig,
    Protocol,
};

/// Outcomes the callback saw: username -> delivered?
type Outcomes = Arc<Mutex<Vec<(String, bool)>>>;

/// A configuration for `url` with a spool in `dir`: no in-memory retries, a compressed
/// redelivery schedule.
fn config(url: &str, dir: &Path) -> HookConfig {
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook = url.to_owned();
    c.http.retry_max = 0;
    c.http.timeout = 2.0;
    c.hooks.max_in_flight = 8;
    c.hooks.spool.dir = dir.display().to_string();
    c.hooks.spool.redeliver_min = 0.2;
    c.hooks.spool.redeliver_max = 0.4;
    c.hooks.spool.max_age = 20.0;
    c
}

fn start(config: &HookConfig, outcomes: &Outcomes) -> Dispatcher {
    config.validate().unwrap();
    let hook = hooks::build_hook(config).unwrap().unwrap();
    let outcomes = Arc::clone(outcomes);
    let options = DispatcherOptions::from_config(&config.hooks)
        .unwrap()
        .with_on_outcome(move |event, outcome| {
            outcomes
                .lock()
                .unwrap()
                .push((event.username().to_owned(), outcome.is_ok()));
        });
    Dispatcher::try_new(hook, options).unwrap()
}

fn event(name: &str) -> DisconnectEvent {
    DisconnectEvent::new("192.0.2.1", Protocol::Sftp, name, Duration::from_millis(5))
}

/// Polls `cond` every 10 ms for up to `secs` seconds.
async fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn usernames(server: &TestServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|r| r.query_param("username").unwrap_or_default())
        .collect()
}

fn status(d: &Dispatcher) -> hooks::spool::SpoolStatus {
    d.spool().unwrap().status().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_probes_once_per_step_and_expired_events_are_dead() {
    let spool_dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::builder()
        .default_response(Response::status(503))
        .start()
        .await;
    let port = server.port();
    let config = config(&server.url("/hook"), spool_dir.path());
    let outcomes = Outcomes::default();
    let d = start(&config, &outcomes);

    // 30 fresh events, and 3 first fired 100 s ago (past max_age = 20 s).
    let mut names = Vec::new();
    for i in 0..30 {
        let name = format!("fresh-{i}");
        assert!(matches!(
            d.fire_durable(event(&name)).await.unwrap(),
            Fired::Spooled(_)
        ));
        names.push(name);
    }
    let old = SystemTime::now() - Duration::from_secs(100);
    let old_since_epoch = old.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    for i in 0..3 {
        let e = event(&format!("old-{i}")).with_id(EventId::at(old_since_epoch));
        d.fire_durable(e).await.unwrap();
    }
    // Each got its first attempt (503); the old ones are dead at once, the others deferred.
    server.wait_for_requests(33, Duration::from_secs(10)).await;
    eventually(10, "deferral", || {
        let s = status(&d);
        s.deferred == 30 && s.dead == 3
    })
    .await;
    let dead = d.spool().unwrap().list(State::Dead, None, 10).unwrap();
    assert_eq!(dead.len(), 3);
    for r in &dead {
        assert!(r.event().username().starts_with("old-"));
        let why = r.last_error().unwrap();
        assert!(why.contains("expired") && why.contains("503"), "{why}");
    }
    // The first 33 requests are the first attempts; what follows are redeliveries.
    let first_burst = 33;

    // Several redelivery steps answered 503: one probe per step.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = server.requests();
    let probes: Vec<_> = requests[first_burst..]
        .iter()
        .map(|r| r.received_at)
        .collect();
    assert!(
        probes.len() >= 2,
        "no probes during the outage: {}",
        probes.len()
    );
    for pair in probes.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        // The shortest step is redeliver_min (0.2 s) less 10 % jitter.
        assert!(
            gap >= Duration::from_millis(170),
            "two calls within one step ({gap:?}): {probes:?}"
        );
    }

    // Then connection refused for several steps.
    server.shutdown();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status(&d).deferred + status(&d).pending, 30);

    // The endpoint comes back on the same port: every event arrives.
    let server = TestServer::builder().port(port).start().await;
    eventually(20, "every event delivered", || {
        let got: BTreeSet<String> = usernames(&server).into_iter().collect();
        names.iter().all(|n| got.contains(n))
    })
    .await;
    eventually(10, "an empty spool", || {
        let s = status(&d);
        s.pending + s.deferred == 0
    })
    .await;
    let report = d.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.kept, 0);
    let outcomes = outcomes.lock().unwrap();
    let delivered: BTreeSet<&str> = outcomes
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(delivered.len(), 30);
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, ok)| !*ok)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    let stats = d.stats();
    assert_eq!((stats.dead, stats.delivered), (3, 30));
    assert!(stats.deferred >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_bypasses_without_blocking_or_evicting_and_drains_after_recovery() {
    let spool_dir = tempfile::tempdir().unwrap();
    let refused = RefusedPort::new();
    let port = refused.port();
    let url = refused.url("/hook");
    drop(refused);
    let mut config = config(&url, spool_dir.path());
    config.hooks.spool.max_bytes = 64 * 1024;
    config.hooks.spool.min_free_bytes = 0;
    let outcomes = Outcomes::default();
    let d = start(&config, &outcomes);

    // Far more than 64 KiB of events: fire never fails or blocks; the spool takes what fits.
    let mut spooled = Vec::new();
    let mut bypassed = 0;
    let capture = ErrorCapture::default();
    for i in 0..2_000 {
        let name = format!("user-{i:04}-{}", "x".repeat(40));
        let fired =
            tracing::subscriber::with_default(capture.clone(), || d.fire(event(&name)).unwrap());
        match fired {
            Fired::Spooled(_) => spooled.push(name),
            Fired::Queued => bypassed += 1,
            other => panic!("{other:?}"),
        }
        if i % 100 == 99 {
            // Let the writer commit, as time passes in a real server.
            d.spool().unwrap().flush().await.unwrap();
        }
    }
    // Bypasses are logged at WARN, summarised: far fewer lines than bypassed events.
    let warns: Vec<String> = capture
        .1
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains("not spooled"))
        .cloned()
        .collect();
    assert!(
        !warns.is_empty() && warns.len() < 10,
        "{} WARN lines",
        warns.len()
    );
    assert!(warns[0].contains("max_bytes"), "{}", warns[0]);
    assert!(
        !spooled.is_empty() && bypassed > 0,
        "{} {bypassed}",
        spooled.len()
    );
    let stats = d.stats();
    assert_eq!(stats.bypassed, bypassed);
    assert_eq!(stats.spooled as usize, spooled.len());
    // A durable fire is refused with a typed error, and hands the event back.
    let err = d.fire_durable(event("durable")).await.unwrap_err();
    assert_eq!(err.kind(), FireErrorKind::SpoolFull);
    assert!(err.to_string().contains("max_bytes"), "{err}");
    assert_eq!(err.event().username(), "durable");

    // Nothing spooled was evicted: every spooled event is pending or deferred.
    eventually(10, "every spooled event settled in the spool", || {
        let s = status(&d);
        s.pending + s.deferred == spooled.len() as u64
    })
    .await;
    // The bypassed ones were delivered from memory only: they failed (endpoint down).
    eventually(10, "bypassed outcomes", || {
        outcomes.lock().unwrap().len() == bypassed as usize
    })
    .await;

    // Recovery: everything spooled drains, and appends are taken again.
    let server = TestServer::builder().port(port).start().await;
    eventually(30, "the spool drained", || {
        let s = status(&d);
        s.pending + s.deferred == 0
    })
    .await;
    let got: BTreeSet<String> = usernames(&server).into_iter().collect();
    assert!(spooled.iter().all(|n| got.contains(n)));
    assert_eq!(d.stats().delivered as usize, spooled.len());
    // With the spool drained (and its file compacted), durable appends are taken again.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        match d.fire_durable(event("after")).await {
            Ok(fired) => {
                assert!(matches!(fired, Fired::Spooled(_)));
                break;
            }
            Err(e) if e.kind() == FireErrorKind::SpoolFull && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("appends do not resume after the drain: {e}"),
        }
    }
    server
        .wait_for_requests(spooled.len() + 1, Duration::from_secs(10))
        .await;
    d.shutdown(Duration::from_secs(5)).await;
}

/// Writes a spool holding `n` pending events named `old-000000`... (committed, closed).
fn prefill(dir: &Path, n: usize) {
    let (spool, _) = Spool::open(SpoolOptions::new(dir)).unwrap();
    for i in 0..n {
        spool.append(&event(&format!("old-{i:06}"))).unwrap();
        if i % 4096 == 4095 {
            spool.flush().wait().unwrap();
        }
    }
    spool.close().unwrap();
}

/// The spool file `pristine` with garbage on the first page from its middle on whose damage a
/// check notices (a page there may be free, and damage to a free page is harmless; which pages
/// are free depends on the random ids). Probes with inspection-mode opens, which leave a
/// damaged file untouched.
fn damage_a_used_page_from_the_middle(dir: &Path, pristine: Vec<u8>) -> Vec<u8> {
    let file = dir.join("spool.redb");
    let pages = pristine.len() / 4096;
    for page in pages / 2..pages {
        let mut bytes = pristine.clone();
        bytes[page * 4096..(page + 1) * 4096].fill(0x5A);
        std::fs::write(&file, &bytes).unwrap();
        let mut inspect = SpoolOptions::new(dir);
        inspect.set_aside_damaged = false;
        if Spool::open(inspect).is_err() {
            return bytes;
        }
    }
    panic!("no page from the middle of the spool file on is noticed when damaged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_at_start_up_is_set_aside_and_new_events_are_spooled() {
    for (what, damage) in [
        ("garbage at the start", 0usize),
        ("garbage in the middle", 1),
        ("an empty file", 2),
    ] {
        let spool_dir = tempfile::tempdir().unwrap();
        prefill(spool_dir.path(), 2_000);
        let file = spool_dir.path().join("spool.redb");
        let mut bytes = std::fs::read(&file).unwrap();
        match damage {
            0 => bytes[..4096].fill(0xA5),
            1 => bytes = damage_a_used_page_from_the_middle(spool_dir.path(), bytes),
            _ => bytes.clear(),
        }
        std::fs::write(&file, &bytes).unwrap();

        let server = TestServer::start().await;
        let config = config(&server.url("/hook"), spool_dir.path());
        let capture = ErrorCapture::default();
        let outcomes = Outcomes::default();
        let d = tracing::subscriber::with_default(capture.clone(), || start(&config, &outcomes));
        assert_eq!(d.stats().spool_corrupt, 1, "{what}");
        let errors = capture.0.lock().unwrap().clone();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("damaged") && e.contains("corrupt-")),
            "{what}: {errors:?}"
        );
        let aside: Vec<_> = std::fs::read_dir(spool_dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("spool.redb.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}: {aside:?}");
        // A new, working spool.
        assert!(matches!(
            d.fire_durable(event("new")).await.unwrap(),
            Fired::Spooled(_)
        ));
        let reqs = server.wait_for_requests(1, Duration::from_secs(10)).await;
        assert_eq!(reqs[0].query_param("username").as_deref(), Some("new"));
        d.shutdown(Duration::from_secs(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_100000_pending_events_lets_new_events_through() {
    let spool_dir = tempfile::tempdir().unwrap();
    prefill(spool_dir.path(), 100_000);
    let server = TestServer::start().await;
    let mut config = config(&server.url("/hook"), spool_dir.path());
    config.hooks.max_in_flight = 16;
    let outcomes = Outcomes::default();
    let started = std::time::Instant::now();
    let d = start(&config, &outcomes);
    assert_eq!(status(&d).pending, 100_000);
    // The time to the first delivery is measured, not asserted (the machine is shared): printed
    // for docs/benchmarks.md ("Replay"), which has the figures.
    server.wait_for_requests(1, Duration::from_secs(30)).await;
    eprintln!(
        "replay of 100000: first delivery {} ms after the dispatcher was created",
        started.elapsed().as_millis()
    );

    // New events while the replay runs.
    server.wait_for_requests(200, Duration::from_secs(30)).await;
    for i in 0..20 {
        d.fire(event(&format!("new-{i}"))).unwrap();
    }
    eventually(120, "the replay and the new events", || {
        outcomes.lock().unwrap().len() == 100_020
    })
    .await;
    let names = usernames(&server);
    let position: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    // Every replayed event arrived; the new ones long before the replay ended.
    assert_eq!(position.len(), 100_020);
    let last_new = (0..20)
        .map(|i| position[format!("new-{i}").as_str()])
        .max()
        .unwrap();
    assert!(
        last_new < 50_000,
        "new events waited for the replay: the last arrived {last_new}th"
    );
    // Oldest first: the first replayed requests are among the oldest records, the last among
    // the newest. (Ids order events to the millisecond; within one millisecond their 12-bit
    // counter may wrap, so the bound allows for a few milliseconds' worth of events.)
    let old: Vec<usize> = names
        .iter()
        .filter_map(|n| n.strip_prefix("old-"))
        .map(|n| n.parse().unwrap())
        .collect();
    for index in &old[..100] {
        assert!(*index < 10_000, "old-{index} delivered among the first 100");
    }
    for index in &old[old.len() - 100..] {
        assert!(*index > 90_000, "old-{index} delivered among the last 100");
    }
    eventually(10, "an empty spool", || status(&d).pending == 0).await;
    assert_eq!(d.stats().replayed, 100_000);
    d.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_what_it_could_not_deliver_and_the_next_start_delivers_it() {
    let spool_dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder()
        .default_response(Response::ok().delay(Duration::from_secs(5)))
        .start()
        .await;
    let first = config(&server.url("/hook"), spool_dir.path());
    let outcomes = Outcomes::default();
    let d = start(&first, &outcomes);
    for i in 0..50 {
        d.fire_durable(event(&format!("e{i}"))).await.unwrap();
    }
    let report = d.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.kept, 50);
    assert_eq!(report.delivered, 0);
    drop(d);

    // A second dispatcher on the same directory while the first holds it: a clear error.
    let server2 = TestServer::start().await;
    let config2 = config(&server2.url("/hook"), spool_dir.path());
    let d2 = start(&config2, &outcomes);
    let hook = hooks::build_hook(&config2).unwrap().unwrap();
    let options = DispatcherOptions::from_config(&config2.hooks).unwrap();
    let err = Dispatcher::try_new(hook, options).unwrap_err();
    assert!(err.is_locked());
    assert!(
        err.to_string()
            .contains(&spool_dir.path().display().to_string()),
        "{err}"
    );
    // The restart replays the 50 kept events.
    eventually(20, "the kept events delivered", || {
        usernames(&server2).len() >= 50
    })
    .await;
    let got: BTreeSet<String> = usernames(&server2).into_iter().collect();
    assert!((0..50).all(|i| got.contains(&format!("e{i}"))));
    assert_eq!(d2.stats().replayed, 50);
    let report = d2.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.kept, 0);
}

#[tokio::test]
async fn fire_durable_without_a_spool_is_a_typed_error() {
    let server = TestServer::start().await;
    let mut c = HookConfig::default();
    c.common.post_disconnect_hook = server.url("/hook");
    let hook = hooks::build_hook(&c).unwrap().unwrap();
    let d = Dispatcher::try_new(hook, DispatcherOptions::from_config(&c.hooks).unwrap()).unwrap();
    assert!(d.spool().is_none());
    let err = d.fire_durable(event("x")).await.unwrap_err();
    assert_eq!(err.kind(), FireErrorKind::NoSpool);
    assert_eq!(d.fire(event("y")).unwrap(), Fired::Queued);
    d.shutdown(Duration::from_secs(5)).await;
}

/// Keeps ERROR events as text (and WARN ones in `.1`).
#[derive(Clone, Default)]
struct ErrorCapture(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>);

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl tracing::Subscriber for ErrorCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let level = *event.metadata().level();
        if level == tracing::Level::ERROR || level == tracing::Level::WARN {
            let mut text = Text(String::new());
            event.record(&mut text);
            let to = if level == tracing::Level::ERROR {
                &self.0
            } else {
                &self.1
            };
            to.lock().unwrap().push(text.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
