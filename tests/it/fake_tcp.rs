//! The same behaviours over real TCP on 127.0.0.1, in real time (kept short).

use std::time::Duration;

use grpc_chaos::fake::{method, CallEnding, FakeServer, Reason, Reply, Stub};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::support::*;

#[grpc_chaos::test(paused = false)]
async fn tcp_unary_with_delay_headers_and_trailers() {
    let server = FakeServer::start().await;
    assert!(server.addr().unwrap().ip().is_loopback());
    Stub::given(method(SAY_HELLO))
        .respond_with(
            Reply::message(&reply("tcp"))
                .delay(ms(30))
                .header("x-h", "1")
                .trailer("x-t", "2"),
        )
        .expect(1)
        .mount(&server);
    let start = Instant::now();

    let response = greeter(&server).say_hello(hello("Ada")).await.unwrap();

    assert!(start.elapsed() >= ms(30));
    assert_eq!(response.metadata().get("x-h").unwrap(), "1");
    assert_eq!(response.metadata().get("x-t").unwrap(), "2");
    assert_eq!(response.into_inner().message, "tcp");
}

#[grpc_chaos::test(paused = false)]
async fn tcp_stream_abort_and_status() {
    let server = FakeServer::start().await;
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::messages(&[reply("1"), reply("2"), reply("3")])
                .abort_after(2, Status::data_loss("cut")),
        )
        .mount(&server);
    let mut stream = greeter(&server)
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    assert!(stream.message().await.unwrap().is_some());
    assert_eq!(stream.message().await.unwrap_err().code(), Code::DataLoss);
}

#[grpc_chaos::test(paused = false)]
async fn tcp_hang_cancelled_by_deadline_is_journaled() {
    let server = FakeServer::start().await;
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .mount(&server);
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(ms(50));

    let err = greeter(&server).say_hello(request).await.unwrap_err();

    // tonic writes 50 ms in nanoseconds, the finest unit that fits 8 digits.
    assert_eq!(err.code(), Code::Cancelled);
    let calls = tokio::time::timeout(Duration::from_secs(5), server.wait_for_ended_calls(1))
        .await
        .unwrap();
    assert!(
        matches!(
            calls[0].ending,
            CallEnding::Cancelled {
                requests_received: 1,
                ..
            }
        ),
        "{:?}",
        calls[0].ending
    );
    assert_eq!(calls[0].grpc_timeout.as_deref(), Some("50000000n"));
}

#[grpc_chaos::test(paused = false)]
async fn tcp_reset_and_sequence() {
    let server = FakeServer::start().await;
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            Reply::reset(Reason::REFUSED_STREAM),
            Reply::message(&reply("ok")),
        ]))
        .mount(&server);
    let mut client = greeter(&server);
    assert_eq!(
        client.say_hello(hello("a")).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(
        client
            .say_hello(hello("a"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "ok"
    );
}
