//! The fake's `x-chaos-*` request headers through the proxy (`fault_headers(true)`):
//! each applied at its exact virtual instant, stripped before forwarding (but for
//! `x-chaos-session`), refused by name when malformed, and passed on untouched when off.

use grpc_chaos::fake::FakeServer;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::proxy::{Proxy, Upstream};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::proxy_support::*;
use crate::support::*;

fn through(server: &FakeServer, on: bool) -> (Proxy, GreeterClient<Channel>) {
    let proxy = Proxy::builder(Upstream::fake(server))
        .fault_headers(on)
        .in_memory();
    let client = GreeterClient::new(proxy.channel());
    (proxy, client)
}

fn asking(headers: &[(&'static str, &'static str)]) -> Request<grpc_chaos::pb::HelloRequest> {
    let mut request = Request::new(hello("Ada"));
    for (k, v) in headers {
        request.metadata_mut().append(*k, v.parse().unwrap());
    }
    request
}

#[grpc_chaos::test]
async fn a_delay_is_applied_and_the_fault_headers_go_no_further() {
    let server = upstream();
    let (proxy, mut client) = through(&server, true);
    let start = Instant::now();
    let request = asking(&[
        ("x-chaos-delay-ms", "200"),
        ("x-chaos-header", "x-added=1"),
        ("x-chaos-trailer", "x-late=2"),
        ("x-chaos-session", "s1"),
    ]);
    let response = client.say_hello(request).await.unwrap();
    assert_eq!(start.elapsed(), ms(200));
    assert_eq!(response.metadata().get("x-added").unwrap(), "1");
    let upstream = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(upstream.arrived_at, start);
    assert_eq!(upstream.header("x-chaos-delay-ms"), None);
    assert_eq!(upstream.header("x-chaos-header"), None);
    assert_eq!(upstream.header("x-chaos-session"), Some("s1"));
    let call = &proxy.wait_for_ended_calls(1).await[0];
    let applied = call.fault.as_ref().unwrap();
    assert_eq!(applied.rule, "x-chaos-* headers");
    assert_eq!(
        applied.fault,
        "delay response headers by 200ms, set response header x-added, set response trailer x-late"
    );
    // The journal keeps the headers as the client sent them.
    assert_eq!(call.call.header("x-chaos-delay-ms"), Some("200"));
}

#[grpc_chaos::test]
async fn a_status_an_abort_and_a_hang() {
    let server = upstream();
    let (_proxy, mut client) = through(&server, true);
    let start = Instant::now();
    let status = client
        .say_hello(asking(&[
            ("x-chaos-status", "5"),
            ("x-chaos-message", "gone"),
            ("x-chaos-delay-ms", "50"),
        ]))
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "gone"));
    assert_eq!(start.elapsed(), ms(50));
    assert!(server.received_calls().is_empty());

    let mut request = asking(&[("x-chaos-abort-after", "1")]);
    *request.get_mut() = hello("x");
    let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "one");
    assert_eq!(
        stream.message().await.unwrap_err().code(),
        Code::Unavailable
    );

    let start = Instant::now();
    let mut request = asking(&[("x-chaos-hang", "true")]);
    request.set_timeout(std::time::Duration::from_secs(1));
    let status = client.say_hello(request).await.unwrap_err();
    // tonic's own timer and the proxy's fire at the same instant.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert_eq!(start.elapsed(), ms(1000));
    assert_eq!(
        server.received_calls().len(),
        1,
        "the hanging call was never forwarded"
    );
}

#[grpc_chaos::test]
async fn the_first_calls_of_a_key_fail_with_a_pushback_and_later_ones_pass() {
    let server = upstream();
    let (_proxy, mut client) = through(&server, true);
    let headers = [
        ("x-chaos-fail-first", "2"),
        ("x-chaos-key", "k"),
        ("x-chaos-pushback-ms", "100"),
    ];
    for _ in 0..2 {
        let status = client.say_hello(asking(&headers)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "100"
        );
    }
    client.say_hello(asking(&headers)).await.unwrap();
    assert_eq!(server.received_calls().len(), 1);
}

#[grpc_chaos::test]
async fn a_bad_fault_header_is_refused_by_name() {
    let server = upstream();
    let (_proxy, mut client) = through(&server, true);
    let status = client
        .say_hello(asking(&[("x-chaos-delay-ms", "soon")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("x-chaos-delay-ms"), "{status:?}");
    let status = client
        .say_hello(asking(&[("x-chaos-teleport", "1")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("unknown fault header x-chaos-teleport"),
        "{status:?}"
    );
    assert!(server.received_calls().is_empty());
}

#[grpc_chaos::test]
async fn when_off_the_headers_pass_through_untouched() {
    let server = upstream();
    let (_proxy, mut client) = through(&server, false);
    let start = Instant::now();
    client
        .say_hello(asking(&[("x-chaos-delay-ms", "200")]))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(0));
    let upstream = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(upstream.header("x-chaos-delay-ms"), Some("200"));
}
