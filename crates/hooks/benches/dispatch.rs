//! The Dispatcher's own cost per event, with a hook that does nothing: `fire` (what a
//! connection's task pays at disconnect), and fire-to-outcome of a batch (queue, slot, hook task,
//! outcome callback, counters).
//!
//! `Dispatcher::fire` is measured twice: without a recorder and with
//! metrics-exporter-prometheus' recorder installed. Also `fire` with the durable spool on (`hooks.spool`): what it adds is the hand-off to the
//! spool's writer thread (encoding the record, one channel send); the commits happen on that
//! thread, outside the timed part.
//!
//! `cargo bench -p hooks --bench dispatch`

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hooks::{
    Backend, Delivery, DisconnectEvent, Dispatcher, DispatcherOptions, Hook, HookError, Protocol,
    async_trait,
};
use tokio::sync::Notify;

#[derive(Debug)]
struct Noop;

#[async_trait]
impl Hook for Noop {
    async fn on_disconnect(&self, _event: &DisconnectEvent) -> Result<Delivery, HookError> {
        Ok(Delivery::new(Backend::Http, 1, Duration::ZERO))
    }
}

fn event() -> DisconnectEvent {
    DisconnectEvent::new(
        "203.0.113.7",
        Protocol::Sftp,
        "alice",
        Duration::from_millis(1234),
    )
}

/// A dispatcher whose outcome callback counts and wakes the waiter at `target`.
fn counting(max_in_flight: usize) -> (Dispatcher, Arc<AtomicU64>, Arc<Notify>) {
    counting_with(max_in_flight, None)
}

/// [`counting`], with a spool in `spool_dir` when given.
fn counting_with(
    max_in_flight: usize,
    spool_dir: Option<&std::path::Path>,
) -> (Dispatcher, Arc<AtomicU64>, Arc<Notify>) {
    let done = Arc::new(AtomicU64::new(0));
    let notify = Arc::new(Notify::new());
    let (d, n) = (Arc::clone(&done), Arc::clone(&notify));
    let options = DispatcherOptions::default()
        .with_queue_capacity(1 << 20)
        .with_max_in_flight(max_in_flight)
        .with_on_outcome(move |_, _| {
            d.fetch_add(1, Ordering::AcqRel);
            n.notify_one();
        });
    let options = match spool_dir {
        Some(dir) => {
            let mut spool = hooks::SpoolSection::default();
            spool.dir = dir.display().to_string();
            spool.min_free_bytes = 0;
            options.with_spool(spool)
        }
        None => options,
    };
    let dispatcher = Dispatcher::try_new(Arc::new(Noop), options).expect("open the spool");
    (dispatcher, done, notify)
}

/// `fire` alone: only the calls are timed, in chunks the queue holds; the runtime runs the
/// queued events between chunks, outside the timed part.
fn bench_fire(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str) {
    let (dispatcher, done, notify) = rt.block_on(async { counting(150) });
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(10_000);
                left -= chunk;
                let events: Vec<DisconnectEvent> = (0..chunk).map(|_| event()).collect();
                let target = done.load(Ordering::Acquire) + chunk;
                let start = Instant::now();
                for e in events {
                    black_box(dispatcher.fire(e).unwrap());
                }
                timed += start.elapsed();
                rt.block_on(async {
                    while done.load(Ordering::Acquire) < target {
                        notify.notified().await;
                    }
                });
            }
            timed
        });
    });
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    bench_fire(c, &rt, "Dispatcher::fire (returns at once)");
    // The same with metrics-exporter-prometheus' recorder installed (for this thread, around the
    // current-thread runtime every task runs on): what the `metrics` feature costs when used.
    #[cfg(feature = "metrics")]
    {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            bench_fire(c, &rt, "Dispatcher::fire, Prometheus recorder installed");
        });
        assert!(
            recorder
                .handle()
                .render()
                .contains("hooks_events_fired_total"),
            "the recorder saw the fires"
        );
    }

    // `fire` with the spool on: the same chunks; between chunks the runtime delivers and the
    // writer commits (appends, then the batched acks), outside the timed part.
    let spool_dir = tempfile::tempdir().unwrap();
    let (dispatcher, done, notify) =
        rt.block_on(async { counting_with(150, Some(spool_dir.path())) });
    c.bench_function(
        "Dispatcher::fire with the spool on (returns at once)",
        |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(10_000);
                    left -= chunk;
                    let events: Vec<DisconnectEvent> = (0..chunk).map(|_| event()).collect();
                    let target = done.load(Ordering::Acquire) + chunk;
                    let start = Instant::now();
                    for e in events {
                        black_box(dispatcher.fire(e).unwrap());
                    }
                    timed += start.elapsed();
                    rt.block_on(async {
                        while done.load(Ordering::Acquire) < target {
                            notify.notified().await;
                        }
                        // Let the writer catch up so that no chunk is refused by a full writer queue.
                        let _ = dispatcher.spool().unwrap().flush().await;
                    });
                }
                timed
            });
        },
    );
    assert_eq!(dispatcher.stats().bypassed, 0, "the spool refused events");
    rt.block_on(dispatcher.shutdown(Duration::from_secs(10)));

    // Fire a batch and wait for every outcome: the whole per-event path minus the hook's work.
    for (batch, in_flight) in [(1u64, 150usize), (1000, 150)] {
        let (dispatcher, done, notify) = rt.block_on(async { counting(in_flight) });
        let name = format!("fire to outcome, batches of {batch} (per batch)");
        c.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let target = done.load(Ordering::Acquire) + batch;
                        for _ in 0..batch {
                            dispatcher.fire(event()).unwrap();
                        }
                        while done.load(Ordering::Acquire) < target {
                            notify.notified().await;
                        }
                    }
                    start.elapsed()
                })
            });
        });
    }
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
