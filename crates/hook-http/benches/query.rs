//! Query encoding: the request target of one event (SFTPGo's four keys merged into the hook URL's
//! own query in Go's sorted order), and Go's `QueryEscape` of a value that needs escaping.
//!
//! `cargo bench -p hook-http --bench query`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use hook_core::{DisconnectEvent, Protocol};
use hook_http::HttpHook;
use hook_http::query::query_escape;

fn query(c: &mut Criterion) {
    let plain = DisconnectEvent::new(
        "203.0.113.7",
        Protocol::Sftp,
        "alice",
        Duration::from_millis(1234),
    );
    let awkward = DisconnectEvent::new(
        "fe80::1%eth0",
        Protocol::Ftp,
        "ali ce&co/é",
        Duration::from_millis(1_234_567),
    );
    let hook = HttpHook::builder("http://127.0.0.1:8080/hooks/disconnect")
        .build()
        .unwrap();
    let with_query = HttpHook::builder("http://127.0.0.1:8080/hook?token=abc&z=1&a=2")
        .build()
        .unwrap();

    c.bench_function("request_target: plain event", |b| {
        b.iter(|| black_box(&hook).request_target(black_box(&plain)));
    });
    c.bench_function("request_target: values to escape", |b| {
        b.iter(|| black_box(&hook).request_target(black_box(&awkward)));
    });
    c.bench_function("request_target: URL with its own query", |b| {
        b.iter(|| black_box(&with_query).request_target(black_box(&plain)));
    });
    c.bench_function("query_escape: username with spaces and UTF-8", |b| {
        b.iter(|| query_escape(black_box("ali ce&co/é")));
    });
}

criterion_group!(benches, query);
criterion_main!(benches);
