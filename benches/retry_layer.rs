//! What `RetryLayer` costs on a call that succeeds the first time: a unary call with a
//! 2 s timeout, with and without the layer (retry and hedging policies), measured with
//! the bench kit (`grpc_chaos::bench`) against its bare baseline in the same run.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::bench::Bench;
use grpc_chaos::retry::RetryLayer;

use common::policies;

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let unary = || Bench::unary().timeout(Duration::from_secs(2));
    let cases = [
        (
            "retry_layer",
            unary().client_layer(RetryLayer::new(policies::retry())),
        ),
        (
            "hedging_layer",
            unary().client_layer(RetryLayer::hedging(policies::hedge())),
        ),
    ];
    let mut paired = Vec::new();
    for (name, bench) in cases {
        let running = bench.start();
        let mut group = c.benchmark_group(name);
        group.bench_function("bare", |b| b.iter(|| running.baseline()));
        group.bench_function("layered", |b| b.iter(|| running.candidate()));
        group.finish();
        paired.push((name, running.paired()));
    }
    c.final_summary();
    for (name, paired) in paired {
        println!("paired {name}: {paired}");
    }
}
