//! What `RetryLayer` costs on a call that succeeds the first time: a unary call to the
//! hand-written tonic Greeter over the in-memory transport, with and without the
//! layer (retry and hedging policies), measured in the same run.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use grpc_chaos::retry::{HedgingPolicy, RetryLayer, RetryPolicy};
use tonic::Code;

use common::greeter::hand_written_channel;

const GROUP: &str = "retry_layer_first_time_success";

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let retry = RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(1))
        .backoff_multiplier(2.0)
        .retryable_status_codes([Code::Unavailable])
        .build()
        .unwrap();
    let hedge = HedgingPolicy::builder()
        .max_attempts(3)
        .hedging_delay(Duration::from_millis(100))
        .non_fatal_status_codes([Code::Unavailable])
        .build()
        .unwrap();
    let (mut bare, mut retrying, mut hedging) = rt.block_on(async {
        let channel = hand_written_channel();
        let layered = |layer: RetryLayer| {
            GreeterClient::new(
                tower::ServiceBuilder::new()
                    .layer(layer)
                    .service(channel.clone()),
            )
        };
        (
            GreeterClient::new(channel.clone()),
            layered(RetryLayer::new(retry)),
            layered(RetryLayer::hedging(hedge)),
        )
    });
    let request = || {
        let mut r = tonic::Request::new(HelloRequest { name: "Ada".into() });
        r.set_timeout(Duration::from_secs(2));
        r
    };

    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group(GROUP);
    group.bench_function("bare", |b| {
        b.iter(|| rt.block_on(bare.say_hello(request())).unwrap())
    });
    group.bench_function("retry_layer", |b| {
        b.iter(|| rt.block_on(retrying.say_hello(request())).unwrap())
    });
    group.bench_function("hedging_layer", |b| {
        b.iter(|| rt.block_on(hedging.say_hello(request())).unwrap())
    });
    group.finish();
    c.final_summary();
    common::print_ratios(GROUP, "bare", &["retry_layer", "hedging_layer"]);
}
