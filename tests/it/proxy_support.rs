//! What the proxy tests share: an upstream fake answering every Greeter shape, a proxy
//! in front of it, and a streaming call read to its end with each message's instant.

use std::time::Duration;

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::proxy::{Fault, FaultRule, Proxy, Upstream};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Status;

use crate::support::*;

/// A fake answering every Greeter shape, with headers and trailers (text and binary).
pub fn upstream() -> FakeServer {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(
            Reply::message(&reply("hi"))
                .header("x-region", "eu")
                .header_bin("x-trace-bin", [0u8, 1, 2, 255])
                .trailer("x-cost", "3")
                .trailer_bin("x-sig-bin", [9u8, 8]),
        )
        .mount(&server);
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::stream()
                .then_message(&reply("one"))
                .then_message_after(ms(100), &reply("two"))
                .then_message_after(ms(100), &reply("three"))
                .trailer("x-count", "3"),
        )
        .mount(&server);
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::message(&reply("all of them")))
        .mount(&server);
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(Reply::messages([&reply("a"), &reply("b")]))
        .mount(&server);
    server
}

pub fn through(server: &FakeServer, rules: Vec<FaultRule>) -> (Proxy, GreeterClient<Channel>) {
    let proxy = Proxy::builder(Upstream::fake(server))
        .rules(rules)
        .in_memory();
    let client = GreeterClient::new(proxy.channel());
    (proxy, client)
}

pub fn on(path: &str, fault: Fault) -> Vec<FaultRule> {
    vec![FaultRule::given(method(path.to_string())).with(fault)]
}

pub async fn stream_messages(
    client: &mut GreeterClient<Channel>,
) -> (Vec<String>, Vec<Duration>, Result<(), Status>) {
    let start = Instant::now();
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let (mut got, mut at) = (Vec::new(), Vec::new());
    loop {
        match stream.message().await {
            Ok(Some(m)) => {
                got.push(m.message);
                at.push(start.elapsed());
            }
            Ok(None) => return (got, at, Ok(())),
            Err(status) => return (got, at, Err(status)),
        }
    }
}
