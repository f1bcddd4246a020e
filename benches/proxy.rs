//! The pass-through proxy against calling the same fake directly, in process on one
//! current-thread runtime, paired: a unary round trip, and a server stream of 10,000
//! messages (read as messages per second), first in memory, then over TCP loopback
//! (the fake and the proxy each on 127.0.0.1); each through the proxy with its journal
//! (as `grpc-chaos proxy` runs) and with none.

use grpc_chaos::bench::{pair, DEFAULT_MESSAGES_PER_ROUND, DEFAULT_ROUNDS};
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::{HelloReply, HelloRequest};
use grpc_chaos::proxy::{Proxy, Upstream};
use tonic::transport::Channel;

const STREAM: usize = 10_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for loopback in [false, true] {
        measure(&rt, loopback);
    }
}

fn measure(rt: &tokio::runtime::Runtime, loopback: bool) {
    let over = if loopback {
        "over loopback"
    } else {
        "in memory"
    };
    let (_server, _proxies, mut direct, mut proxied, mut bare) = rt.block_on(async {
        let builder = FakeServer::builder().journal_limit(1024);
        let server = if loopback {
            builder.start().await
        } else {
            builder.in_memory()
        };
        Stub::given(method("/pb.Greeter/SayHello"))
            .respond_with(Reply::message(&HelloReply {
                message: "hi".into(),
            }))
            .mount(&server);
        let many: Vec<HelloReply> = (0..STREAM)
            .map(|i| HelloReply {
                message: format!("message {i}"),
            })
            .collect();
        Stub::given(method("/pb.Greeter/SayHelloStream"))
            .respond_with(Reply::messages(&many))
            .mount(&server);
        // As `grpc-chaos proxy` runs (its journal bounded as the CLI bounds it), and
        // with no journal at all.
        let journaled = Proxy::builder(Upstream::fake(&server))
            .journal_limit(1000)
            .journal_bytes(64 << 20)
            .journal_message_bytes(256 << 10);
        let unjournaled = Proxy::builder(Upstream::fake(&server)).journal_limit(0);
        let mut proxies = Vec::new();
        for builder in [journaled, unjournaled] {
            proxies.push(if loopback {
                builder
                    .start_on("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap()
            } else {
                builder.in_memory()
            });
        }
        let direct = GreeterClient::new(server.channel());
        let proxied = GreeterClient::new(proxies[0].channel());
        let bare = GreeterClient::new(proxies[1].channel());
        (server, proxies, direct, proxied, bare)
    });
    let unary = |client: &mut GreeterClient<Channel>| {
        rt.block_on(client.say_hello(HelloRequest { name: "Ada".into() }))
            .unwrap();
    };
    let paired = pair(
        DEFAULT_ROUNDS,
        DEFAULT_MESSAGES_PER_ROUND,
        1,
        || unary(&mut direct),
        || unary(&mut proxied),
    );
    println!("paired unary through the proxy vs direct, {over}: {paired}");
    let paired = pair(
        DEFAULT_ROUNDS,
        DEFAULT_MESSAGES_PER_ROUND,
        1,
        || unary(&mut direct),
        || unary(&mut bare),
    );
    println!("paired unary through the proxy, no journal, vs direct, {over}: {paired}");

    let stream = |client: &mut GreeterClient<Channel>| {
        rt.block_on(async {
            let mut s = client
                .say_hello_stream(HelloRequest { name: "Ada".into() })
                .await
                .unwrap()
                .into_inner();
            let mut n = 0;
            while s.message().await.unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, STREAM);
        });
    };
    let paired = pair(
        DEFAULT_ROUNDS,
        1,
        STREAM,
        || stream(&mut direct),
        || stream(&mut proxied),
    );
    println!("paired stream of {STREAM} through the proxy vs direct, {over}: {paired}");
    let paired = pair(
        DEFAULT_ROUNDS,
        1,
        STREAM,
        || stream(&mut direct),
        || stream(&mut bare),
    );
    println!(
        "paired stream of {STREAM} through the proxy, no journal, vs direct, {over}: {paired}"
    );
}
