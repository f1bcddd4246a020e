//! Bad input from the upstream's side, through the proxy to a tonic client: a bare
//! HTTP/2 server that lies in its length prefix, sends a header list too big, or drops
//! its connection inside a message. Each call ends with a defined status, and the proxy
//! answers the next call.

use bytes::{BufMut, Bytes, BytesMut};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::proxy::{Proxy, Upstream};
use http::{HeaderMap, Response};
use prost::Message as _;
use tokio::io::DuplexStream;
use tonic::{Code, Request};

use crate::support::*;

fn framed(flag: u8, declared: u32, body: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(flag);
    out.put_u32(declared);
    out.put_slice(body);
    out.freeze()
}

fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    trailers
}

/// Answers each call as its `x-case` header says, misbehaving on purpose.
async fn bad_server(io: DuplexStream) {
    let Ok(mut connection) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let case = request
            .headers()
            .get("x-case")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("ok")
            .to_string();
        let mut head = Response::builder()
            .status(200)
            .header("content-type", "application/grpc");
        if case == "huge headers" {
            head = head.header("x-big", "a".repeat(100 * 1024));
        }
        let Ok(mut send) = respond.send_response(head.body(()).unwrap(), false) else {
            continue;
        };
        let reply = reply("fine").encode_to_vec();
        match case.as_str() {
            "lying prefix" => {
                let _ = send.send_data(framed(0, 100, b"abc"), false);
                let _ = send.send_trailers(ok_trailers());
            }
            "close mid-message" => {
                let _ = send.send_data(framed(0, 100, b"abc"), false);
                // Let the bytes go out, then the connection with them.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                return;
            }
            _ => {
                let _ = send.send_data(framed(0, reply.len() as u32, &reply), false);
                let _ = send.send_trailers(ok_trailers());
            }
        }
    }
}

fn case(name: &'static str) -> Request<grpc_chaos::pb::HelloRequest> {
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-case", name.parse().unwrap());
    request
}

#[grpc_chaos::test]
async fn bad_upstream_answers_end_their_call_with_a_defined_status() {
    let upstream = Upstream::in_memory(|| {
        let (client, server) = tokio::io::duplex(1 << 20);
        tokio::spawn(bad_server(server));
        client
    });
    let proxy = Proxy::builder(upstream).in_memory();
    let mut client = GreeterClient::new(proxy.channel());
    let cases = [
        ("lying prefix", Code::Internal),
        // As gRPC answers metadata over the limit.
        ("huge headers", Code::ResourceExhausted),
        ("close mid-message", Code::Unavailable),
    ];
    for (name, code) in cases {
        let status = client.say_hello(case(name)).await.unwrap_err();
        assert_eq!(status.code(), code, "{name}: {status:?}");
        assert!(
            status.message().starts_with("grpc-chaos proxy"),
            "{name}: {status:?}"
        );
        assert_eq!(
            client
                .say_hello(case("ok"))
                .await
                .unwrap()
                .into_inner()
                .message,
            "fine",
            "after {name}"
        );
    }
    let calls = proxy.wait_for_ended_calls(6).await;
    // The upstream said OK to the call whose message it cut short.
    assert_eq!(calls[0].upstream_status, Some((Code::Ok, String::new())));
    let endings: Vec<Option<Code>> = calls.iter().map(|c| c.call.status_code()).collect();
    assert_eq!(
        endings,
        [
            Some(Code::Internal),
            Some(Code::Ok),
            Some(Code::ResourceExhausted),
            Some(Code::Ok),
            Some(Code::Unavailable),
            Some(Code::Ok)
        ]
    );
}
