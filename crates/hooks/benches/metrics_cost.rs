//! What the metrics cost: `Dispatcher::fire` and a 10,000-event HTTP storm (the real HTTP backend
//! against a loopback endpoint, the dispatcher's defaults, as `hookctl fire` runs it), each
//! without a recorder and with metrics-exporter-prometheus' recorder, interleaved round by round
//! in one process (the order flips every round), medians printed.
//!
//! The recorder is installed for the benchmark's thread (`metrics::with_local_recorder`) around a
//! current-thread runtime, so both variants run in the same process on the same code; the
//! recorder is the exporter's real one (registry look-ups, atomic counters, histogram buckets).
//!
//! `cargo bench -p hooks --bench metrics_cost [-- ROUNDS [EVENTS]]` (defaults 7 and 10,000; also
//! `METRICS_COST_ROUNDS`, for a run that passes other arguments to criterion benches)

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hook_test_support::{Response, TestServer};
use hooks::metrics::{DURATION_BUCKETS, names};
use hooks::{
    Backend, Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, Hook, HookConfig, HookError,
    Protocol, async_trait, build_hook,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

#[derive(Debug)]
struct Noop;

#[async_trait]
impl Hook for Noop {
    async fn on_disconnect(&self, _event: &DisconnectEvent) -> Result<Delivery, HookError> {
        Ok(Delivery::new(Backend::Custom("noop"), 1, Duration::ZERO))
    }
}

fn event(i: u64) -> DisconnectEvent {
    DisconnectEvent::new(
        "203.0.113.7",
        Protocol::Sftp,
        if i.is_multiple_of(2) { "alice" } else { "bob" },
        Duration::from_millis(1234),
    )
}

/// Nanoseconds per `fire` call, over `chunks` chunks of 10,000 (only the calls are timed; the
/// queued events run between chunks).
async fn fire_ns(chunks: u32) -> f64 {
    let dispatcher = Dispatcher::new(
        Arc::new(Noop),
        DispatcherOptions::default().with_queue_capacity(1 << 20),
    );
    let mut timed = Duration::ZERO;
    let mut n = 0u64;
    for _ in 0..chunks {
        let events: Vec<DisconnectEvent> = (0..10_000).map(event).collect();
        let start = Instant::now();
        for e in events {
            black_box(dispatcher.fire(e).unwrap());
        }
        timed += start.elapsed();
        n += 10_000;
        while dispatcher.stats().delivered < n {
            tokio::task::yield_now().await;
        }
    }
    dispatcher.shutdown(Duration::from_secs(60)).await;
    timed.as_nanos() as f64 / n as f64
}

/// Events per second of an HTTP storm of `events`, first fire to last outcome.
async fn storm(hook: &Arc<dyn Hook>, events: u64) -> f64 {
    let start = Instant::now();
    let dispatcher = Dispatcher::new(Arc::clone(hook), DispatcherOptions::default());
    for i in 0..events {
        dispatcher.fire(event(i)).unwrap();
        if i % 1_000 == 999 {
            tokio::task::yield_now().await;
        }
    }
    let report = dispatcher.shutdown(Duration::from_secs(300)).await;
    let elapsed = start.elapsed();
    assert_eq!((report.delivered, report.failed), (events, 0), "{report:?}");
    events as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let rounds: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .or_else(|| std::env::var("METRICS_COST_ROUNDS").ok()?.parse().ok())
        .unwrap_or(7);
    let events: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);

    let sink = TestServer::builder()
        .default_response(Response::ok())
        .start_blocking();
    let mut config = HookConfig::default();
    config.common.post_disconnect_hook = sink.url("/hook");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hook = build_hook(&config).unwrap().expect("an HTTP hook");
    let recorder: PrometheusRecorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::DELIVERY_DURATION.into()),
            &DURATION_BUCKETS,
        )
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();

    // One warm-up of each, not recorded.
    rt.block_on(storm(&hook, events));
    metrics::with_local_recorder(&recorder, || rt.block_on(storm(&hook, events)));

    let (mut storm_off, mut storm_on, mut fire_off, mut fire_on) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        for recorded in [round % 2 == 1, round % 2 == 0] {
            let run = || {
                let rate = rt.block_on(storm(&hook, events));
                let ns = rt.block_on(fire_ns(10));
                (rate, ns)
            };
            let (rate, ns) = if recorded {
                metrics::with_local_recorder(&recorder, run)
            } else {
                run()
            };
            eprintln!(
                "round {round} {}: storm {rate:.0} events/s, fire {ns:.1} ns",
                if recorded { "recorder" } else { "none" }
            );
            if recorded {
                storm_on.push(rate);
                fire_on.push(ns);
            } else {
                storm_off.push(rate);
                fire_off.push(ns);
            }
        }
    }
    // The recorder really counted: warm-up plus every recorded storm, all delivered over HTTP.
    let scrape = handle.render();
    let delivered = scrape
        .lines()
        .find(|l| l.starts_with("hooks_events_delivered_total{backend=\"http\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(delivered, Some(events * (rounds as u64 + 1)), "{scrape}");

    // Each round's two runs are next to each other in time: their ratio is the least noisy
    // figure on a shared machine.
    let ratios =
        |on: &[f64], off: &[f64]| -> Vec<f64> { on.iter().zip(off).map(|(a, b)| a / b).collect() };
    let storm_ratios = ratios(&storm_on, &storm_off);
    let fire_ratios = ratios(&fire_on, &fire_off);
    let show = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "per-round ratios, recorder/none: storm {}; fire {}",
        show(&storm_ratios),
        show(&fire_ratios)
    );
    let (sr, fr) = (median(storm_ratios), median(fire_ratios));
    let (s0, s1, f0, f1) = (
        median(storm_off),
        median(storm_on),
        median(fire_off),
        median(fire_on),
    );
    println!(
        "| bench ({rounds} rounds, medians) | no recorder | Prometheus recorder | ratio of medians | median of per-round ratios |"
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| HTTP storm, {events} events (events/s) | {s0:.0} | {s1:.0} | {:.2} | {sr:.2} |",
        s1 / s0
    );
    println!(
        "| `Dispatcher::fire` (ns per call) | {f0:.1} | {f1:.1} | {:.2} | {fr:.2} |",
        f1 / f0
    );
}
