//! Event creation and the projection both backends use (the four SFTPGo fields as text).
//!
//! `cargo bench -p hooks --bench projection` (kept here so that hook-core has no dependency but async-trait, dev-dependencies included)

#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hooks::{DisconnectEvent, Field, Protocol, ip_from_remote_addr};

fn projection(c: &mut Criterion) {
    let event = DisconnectEvent::new(
        "203.0.113.7",
        Protocol::Sftp,
        "alice",
        Duration::from_millis(1_234_567),
    );
    c.bench_function("sftpgo_fields: four values as text", |b| {
        b.iter(|| {
            let fields = black_box(&event).sftpgo_fields();
            let mut len = 0;
            for (_, value) in fields.iter() {
                len += value.len();
            }
            black_box(len)
        });
    });
    c.bench_function("sftpgo_fields: duration text", |b| {
        b.iter(|| black_box(black_box(&event).sftpgo_fields().get(Field::Duration).len()));
    });

    let peer: SocketAddr = "[::ffff:192.0.2.7]:50022".parse().unwrap();
    let started = Instant::now();
    c.bench_function("DisconnectEvent::from_socket_addr (IPv4-mapped)", |b| {
        b.iter(|| {
            DisconnectEvent::from_socket_addr(black_box(peer), Protocol::Ssh, "alice", started)
        });
    });
    c.bench_function("ip_from_remote_addr (IPv6 with zone)", |b| {
        b.iter(|| ip_from_remote_addr(black_box("[fe80::1%eth0]:22")));
    });
    c.bench_function("DisconnectEvent clone (queued copy)", |b| {
        b.iter(|| black_box(&event).clone());
    });
}

criterion_group!(benches, projection);
criterion_main!(benches);
