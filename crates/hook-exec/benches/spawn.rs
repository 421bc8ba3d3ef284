//! The program path: the per-event environment, and one whole run of `/bin/true` (posix_spawn in
//! a new process group, pipes, pidfd wait, outcome), alone and eight at a time.
//!
//! `cargo bench -p hook-exec --bench spawn`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hook_core::{DisconnectEvent, Hook, Protocol};
use hook_exec::ExecHook;

fn spawn(c: &mut Criterion) {
    let event = DisconnectEvent::new(
        "203.0.113.7",
        Protocol::Sftp,
        "alice",
        Duration::from_millis(1234),
    );
    let hook = ExecHook::builder("/bin/true")
        .env("LANG", "C.UTF-8")
        .env("PATH", "/usr/bin:/bin")
        .build()
        .unwrap();

    c.bench_function("ExecHook::event_env (four NAME=value)", |b| {
        b.iter(|| black_box(&hook).event_env(black_box(&event)).unwrap());
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("run /bin/true");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("one at a time (per run)", |b| {
        b.iter(|| rt.block_on(hook.on_disconnect(&event)).unwrap());
    });
    group.bench_function("eight at a time (per 8 runs)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..8 {
                        let (hook, event) = (hook.clone(), event.clone());
                        set.spawn(async move { hook.on_disconnect(&event).await.unwrap() });
                    }
                    while set.join_next().await.is_some() {}
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
