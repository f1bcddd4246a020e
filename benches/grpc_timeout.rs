//! The strict `grpc-timeout` codec: parse and format, in ns per value.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use grpc_chaos::deadline::{format_grpc_timeout, parse_grpc_timeout};

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("grpc_timeout");
    // What real clients send for about half a second (SPEC-NOTES.md).
    for raw in ["499m", "486m", "497980u", "500000000n"] {
        group.bench_function(format!("parse_{raw}"), |b| {
            b.iter(|| parse_grpc_timeout(black_box(raw)))
        });
    }
    group.bench_function("parse_rejects_+1S", |b| {
        b.iter(|| parse_grpc_timeout(black_box("+1S")))
    });
    for (name, d) in [
        ("50ms", Duration::from_millis(50)),
        ("30s", Duration::from_secs(30)),
    ] {
        group.bench_function(format!("format_{name}"), |b| {
            b.iter(|| format_grpc_timeout(black_box(d)))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
