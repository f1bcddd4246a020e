//! Makes N calls of one side of a comparison, for counting instructions per call with
//! callgrind (`benches/tools/count_calls.py` runs it): a steadier measure beside the paired
//! wall-clock figures, which move by several percent between runs on a shared machine.
//!
//! ```text
//! cargo build --release --example count_calls
//! target/release/examples/count_calls CASE SIDE N
//! ```
//! `CASE` is one of the names [`case`] lists, `SIDE` is `baseline` or `candidate`. Start-up
//! (serving, connecting, warming) is the same for every N, so the difference between
//! two runs with different N, divided by the difference in N, is one call's cost.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use grpc_chaos::bench::Bench;
use grpc_chaos::fake::FakeServer;
use grpc_chaos::intercept::{LoggingLayer, SetTraceIdLayer};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use grpc_chaos::retry::RetryLayer;

use common::greeter::greeter_fake;
use common::policies;
use common::subscribers::{level_off, Sink};

/// The kit's rig for each case the README counts.
fn case(name: &str) -> Option<Bench> {
    let timed = || Bench::unary().timeout(Duration::from_secs(2));
    Some(match name {
        "trace_id" => Bench::unary().server_layer(SetTraceIdLayer::new()),
        "logging_sink" => Bench::unary()
            .subscriber(Sink(tracing::Level::TRACE))
            .server_layer(LoggingLayer::new()),
        "logging_level_off" => Bench::unary()
            .subscriber(level_off())
            .server_layer(LoggingLayer::new()),
        "retry_layer" => timed().client_layer(RetryLayer::new(policies::retry())),
        "hedging_layer" => timed().client_layer(RetryLayer::hedging(policies::hedge())),
        _ => return None,
    })
}

/// The fake (journal bounded as `fake_server` bounds it) or the hand-written Greeter.
fn fake_server(side: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let (mut client, _server) = rt.block_on(async {
        if side == "baseline" {
            (
                GreeterClient::new(common::greeter::hand_written_channel()),
                None,
            )
        } else {
            let server = greeter_fake(FakeServer::builder().journal_limit(1024).in_memory());
            (GreeterClient::new(server.channel()), Some(server))
        }
    });
    for _ in 0..2_000 + n {
        let request = HelloRequest { name: "Ada".into() };
        rt.block_on(client.say_hello(request))
            .expect("a call to the Greeter");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(side), Some(n)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: count_calls CASE baseline|candidate N");
        std::process::exit(2);
    };
    if name == "fake_server" {
        return fake_server(side, n);
    }
    let Some(bench) = case(name) else {
        eprintln!("count_calls: no case {name:?}");
        std::process::exit(2);
    };
    let running = bench.start();
    for _ in 0..n {
        match side.as_str() {
            "baseline" => running.baseline(),
            _ => running.candidate(),
        }
    }
}
