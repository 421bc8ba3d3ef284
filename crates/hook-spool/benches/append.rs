//! The spool's cost: what a caller pays per `append` (no I/O: encode + channel send), and the
//! writer's durable throughput with group commit (`append_durable` of a burst, all waited for).
//!
//! `cargo bench -p hook-spool --bench append`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hook_core::{DisconnectEvent, Protocol};
use hook_spool::{Spool, SpoolOptions};

fn event() -> DisconnectEvent {
    DisconnectEvent::new(
        "203.0.113.7",
        Protocol::Sftp,
        "alice",
        Duration::from_millis(1234),
    )
}

fn open(dir: &std::path::Path) -> Spool {
    let mut options = SpoolOptions::new(dir);
    options.ballast_bytes = 0;
    options.min_free_bytes = 0;
    options.max_queued = 1 << 22;
    Spool::open(options).expect("open the spool").0
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    // Each event is acked right after its append, as a fast delivery would: the writer cancels
    // the pairs it drains together, so the spool does not grow while criterion iterates.
    c.bench_function("append + ack (caller cost, no I/O)", |b| {
        b.iter_custom(|iters| {
            let events: Vec<DisconnectEvent> = (0..iters).map(|_| event()).collect();
            let started = Instant::now();
            for e in &events {
                spool.append(black_box(e)).unwrap();
                spool.ack(e.id()).unwrap();
            }
            let took = started.elapsed();
            spool.flush().wait().unwrap();
            took
        });
    });

    let mut group = c.benchmark_group("durable burst");
    group.sample_size(20);
    for burst in [64u64, 1024] {
        group.throughput(Throughput::Elements(burst));
        group.bench_function(format!("append_durable x{burst}, all committed"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let events: Vec<DisconnectEvent> = (0..burst).map(|_| event()).collect();
                    let started = Instant::now();
                    let waits: Vec<_> = events
                        .iter()
                        .map(|e| spool.append_durable(e).unwrap())
                        .collect();
                    for w in waits {
                        w.wait().unwrap();
                    }
                    total += started.elapsed();
                    spool
                        .ack_many(events.iter().map(DisconnectEvent::id))
                        .unwrap();
                }
                total
            });
        });
    }
    group.finish();
    spool.close().unwrap();
}

criterion_group!(benches, append);
criterion_main!(benches);
