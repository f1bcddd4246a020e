//! The fake server against a hand-written tonic Greeter: one unary call over the
//! in-memory transport on a current-thread runtime, both measured in the same run.
//! Prints the ratios of the medians at the end.
//!
//! The fake is measured twice: keeping the latest 1,024 calls in its journal (as
//! `grpc-chaos serve` does, with a larger limit), and keeping every call (the default,
//! for tests). A bench makes hundreds of thousands of calls; with every one kept, the
//! growing journal's fresh memory is part of what is measured.
//!
//! The paired rounds add the fake keeping only its latest 4 calls, against the fake
//! keeping 1,024 and against the hand-written Greeter: the first says what keeping
//! calls costs (an entry's memory is cold by the time the entry is let go), the second
//! what the fake's own work per call costs.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::bench::{pair, DEFAULT_MESSAGES_PER_ROUND, DEFAULT_ROUNDS};
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use tokio::runtime::Runtime;

use common::greeter::{greeter_fake, hand_written_channel};

const GROUP: &str = "unary_in_memory";

fn bench_unary(c: &mut Criterion, rt: &Runtime) {
    let (bounded, unbounded) = rt.block_on(async {
        let bounded = FakeServer::builder().journal_limit(1024).in_memory();
        (greeter_fake(bounded), greeter_fake(FakeServer::in_memory()))
    });
    let mut bounded_client = rt.block_on(async { GreeterClient::new(bounded.channel()) });
    let mut unbounded_client = rt.block_on(async { GreeterClient::new(unbounded.channel()) });
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
            rt.block_on(bounded_client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap()
        })
    });
    group.bench_function("fake_server_every_call_kept", |b| {
        b.iter(|| {
            rt.block_on(unbounded_client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap()
        })
    });
    group.finish();
    // Let the unbounded journal's memory go.
    unbounded.reset();

    // Paired: the fake against the hand-written server, and the fake with 500 stubs on
    // 50 other methods mounted against the same fake with none.
    let crowded = rt.block_on(async {
        let server = FakeServer::builder().journal_limit(1024).in_memory();
        for i in 0..500 {
            Stub::given(method(format!("/other.Service{}/Method{i}", i % 50)))
                .respond_with(Reply::empty())
                .mount(&server);
        }
        greeter_fake(server)
    });
    let mut crowded_client = rt.block_on(async { GreeterClient::new(crowded.channel()) });
    // The same fake keeping only its latest 4 calls: what the journal's kept memory costs.
    let short =
        rt.block_on(async { greeter_fake(FakeServer::builder().journal_limit(4).in_memory()) });
    let mut short_client = rt.block_on(async { GreeterClient::new(short.channel()) });
    type Client = GreeterClient<tonic::transport::Channel>;
    // Pairs two clients' SayHello and prints the figure under `what`.
    let paired = |what: &str, baseline: &mut Client, candidate: &mut Client| {
        let call = |client: &mut Client| {
            rt.block_on(client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap();
        };
        let figure = pair(
            DEFAULT_ROUNDS,
            DEFAULT_MESSAGES_PER_ROUND,
            1,
            || call(baseline),
            || call(candidate),
        );
        println!("paired fake_server {what}: {figure}");
    };
    paired(
        "vs hand_written_tonic",
        &mut tonic_client,
        &mut bounded_client,
    );
    paired(
        "with 500 stubs on other methods vs none",
        &mut bounded_client,
        &mut crowded_client,
    );
    paired(
        "keeping 1,024 calls vs keeping 4",
        &mut short_client,
        &mut bounded_client,
    );
    paired(
        "keeping 4 calls vs hand_written_tonic",
        &mut tonic_client,
        &mut short_client,
    );
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
    common::print_ratios(
        GROUP,
        "hand_written_tonic",
        &["fake_server", "fake_server_every_call_kept"],
    );
}
