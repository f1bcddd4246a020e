//! The pass-through proxy against calling the same fake directly, in process on one
//! current-thread runtime, paired: a unary round trip, and a server stream of 10,000
//! messages (read as messages per second), first in memory, then over TCP loopback
//! (the fake and the proxy each on 127.0.0.1).

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
    let (_server, _proxy, mut direct, mut proxied) = rt.block_on(async {
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
        let proxy = if loopback {
            Proxy::builder(Upstream::fake(&server))
                .start_on("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap()
        } else {
            Proxy::builder(Upstream::fake(&server)).in_memory()
        };
        let direct = GreeterClient::new(server.channel());
        let proxied = GreeterClient::new(proxy.channel());
        (server, proxy, direct, proxied)
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
}
