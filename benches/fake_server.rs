//! The fake server against a hand-written tonic Greeter: one unary call over the
//! in-memory transport on a current-thread runtime, both measured in the same run.
//! Prints the ratio of the medians at the end.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tokio::runtime::Runtime;

use common::greeter::hand_written_channel;

const GROUP: &str = "unary_in_memory";

fn bench_unary(c: &mut Criterion, rt: &Runtime) {
    let fake = rt.block_on(async {
        let server = FakeServer::in_memory();
        Stub::given(method("/pb.Greeter/SayHello"))
            .respond_with(Reply::from_message(|r: &HelloRequest| {
                Reply::message(&HelloReply {
                    message: format!("Hello, {}!", r.name),
                })
            }))
            .mount(&server);
        server
    });
    let mut fake_client = rt.block_on(async { GreeterClient::new(fake.channel()) });
    let mut tonic_client = rt.block_on(async { GreeterClient::new(hand_written_channel()) });

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("hand_written_tonic", |b| {
        b.iter(|| {
            rt.block_on(tonic_client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap()
        })
    });
    group.bench_function("fake_server", |b| {
        b.iter(|| {
            rt.block_on(fake_client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap()
        })
    });
    group.finish();
    // The journal keeps every call; clear it so the fake's memory does not grow.
    fake.reset();
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench_unary(&mut c, &rt);
    c.final_summary();
    common::print_ratios(GROUP, "hand_written_tonic", &["fake_server"]);
}
