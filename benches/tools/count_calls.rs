//! Makes N calls of one side of a comparison, for counting instructions per call with
//! callgrind (`benches/tools/count_calls.py` runs it): the steady measure beside the paired
//! wall-clock figures, which move by several percent between runs on a shared machine.
//!
//! ```text
//! cargo build --release --example count_calls
//! target/release/examples/count_calls CASE SIDE N
//! ```
//! `CASE` is one of the names [`case`] lists, `SIDE` is `baseline` or `candidate`. Start-up
//! (serving, connecting, warming) is the same for every N, so the difference between
//! two runs with different N, divided by the difference in N, is one call's cost.

#[path = "../common/greeter.rs"]
#[allow(dead_code)]
mod greeter;

use std::time::Duration;

use grpc_chaos::bench::Bench;
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::intercept::{LoggingLayer, SetTraceIdLayer};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::{HelloReply, HelloRequest};
use grpc_chaos::retry::{HedgingPolicy, RetryLayer, RetryPolicy};
use tonic::Code;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Accepts this workspace's events and spans, and drops them (as `interceptor_overhead`'s).
struct Sink;

impl Subscriber for Sink {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("tonic_layers") || metadata.target().starts_with("grpc_chaos")
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// A subscriber whose level (WARN) leaves the logging layer disabled.
fn level_off() -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::sink)
        .finish()
}

/// The kit's rig for each case the README counts.
fn case(name: &str) -> Option<Bench> {
    let retry = RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(1))
        .backoff_multiplier(2.0)
        .retryable_status_codes([Code::Unavailable])
        .build()
        .ok()?;
    let hedge = HedgingPolicy::builder()
        .max_attempts(3)
        .hedging_delay(Duration::from_millis(100))
        .non_fatal_status_codes([Code::Unavailable])
        .build()
        .ok()?;
    let timed = || Bench::unary().timeout(Duration::from_secs(2));
    Some(match name {
        "trace_id" => Bench::unary().server_layer(SetTraceIdLayer::new()),
        "logging_sink" => Bench::unary()
            .subscriber(Sink)
            .server_layer(LoggingLayer::new()),
        "logging_level_off" => Bench::unary()
            .subscriber(level_off())
            .server_layer(LoggingLayer::new()),
        "retry_layer" => timed().client_layer(RetryLayer::new(retry)),
        "hedging_layer" => timed().client_layer(RetryLayer::hedging(hedge)),
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
            (GreeterClient::new(greeter::hand_written_channel()), None)
        } else {
            let server = FakeServer::builder().journal_limit(1024).in_memory();
            Stub::given(method("/pb.Greeter/SayHello"))
                .respond_with(Reply::from_message(|r: &HelloRequest| {
                    Reply::message(&HelloReply {
                        message: format!("Hello, {}!", r.name),
                    })
                }))
                .mount(&server);
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
