//! A connection lost under a call (`FakeServer::drop_connections`): what a plain tonic
//! client reads (UNKNOWN), and what it reads through this crate's client layers
//! (UNAVAILABLE, as the spec maps it), which a retry policy listing UNAVAILABLE retries.

use std::future::Future;
use std::time::Duration;

use grpc_chaos::deadline::{PropagateDeadline, PropagateDeadlineLayer};
use grpc_chaos::fake::{method, CallEnding, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::retry::{Retry, RetryLayer, RetryPolicy};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::*;

/// Runs `call` until `after`, drops every connection of `server` then, and returns how
/// the call ends.
async fn drop_connections_during<T>(
    server: &FakeServer,
    after: Duration,
    call: impl Future<Output = T>,
) -> T {
    tokio::pin!(call);
    tokio::select! {
        _ = &mut call => panic!("the call ended before the connections were dropped"),
        () = tokio::time::sleep(after) => server.drop_connections(),
    }
    call.await
}

fn policy(retryable: Code) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(ms(100))
        .max_backoff(ms(1000))
        .backoff_multiplier(2.0)
        .retryable_status_codes([retryable])
        .build()
        .unwrap()
        .without_jitter()
}

fn retrying(server: &FakeServer, retryable: Code) -> GreeterClient<Retry<Channel>> {
    let layer = RetryLayer::new(policy(retryable));
    GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(layer)
            .service(server.channel()),
    )
}

fn propagating(server: &FakeServer) -> GreeterClient<PropagateDeadline<Channel>> {
    let layer = PropagateDeadlineLayer::new();
    GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(layer)
            .service(server.channel()),
    )
}

/// SayHello hangs the first time and answers "second" after that; SayHelloStream sends
/// one message and hangs.
fn flaky_server() -> FakeServer {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .up_to_n_times(1)
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("second")))
        .with_priority(9)
        .mount(&server);
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(Reply::stream().then_message(&reply("one")).then_hang())
        .mount(&server);
    server
}

#[grpc_chaos::test]
async fn the_retry_layer_retries_a_dropped_connection_as_unavailable() {
    let server = flaky_server();
    let mut client = retrying(&server, Code::Unavailable);
    let t0 = Instant::now();

    let reply = drop_connections_during(&server, ms(50), client.say_hello(hello("Ada"))).await;

    assert_eq!(reply.unwrap().into_inner().message, "second");
    let calls = server.wait_for_ended_calls(2).await;
    assert!(
        matches!(calls[0].ending, CallEnding::Cancelled { at, .. } if at == t0 + ms(50)),
        "{:?}",
        calls[0].ending
    );
    // The backoff runs from the instant the connection went, then a new one is made.
    assert_eq!(calls[1].arrived_at, t0 + ms(150));
    assert_eq!(previous_attempts(&calls), [None, Some("1".to_string())]);
}

#[grpc_chaos::test]
async fn without_unavailable_in_the_policy_the_client_reads_unavailable_once() {
    let server = flaky_server();
    let mut client = retrying(&server, Code::ResourceExhausted);

    let status = drop_connections_during(&server, ms(50), client.say_hello(hello("Ada")))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("connection lost under the call"),
        "{status:?}"
    );
    assert_eq!(server.wait_for_ended_calls(1).await.len(), 1);
}

#[grpc_chaos::test]
async fn a_plain_tonic_client_reads_unknown_where_the_layers_read_unavailable() {
    let server = flaky_server();
    let mut plain = greeter(&server);
    let status = drop_connections_during(&server, ms(50), plain.say_hello(hello("Ada")))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unknown, "transport error")
    );

    let server = flaky_server();
    let mut layered = propagating(&server);
    let status = drop_connections_during(&server, ms(50), layered.say_hello(hello("Ada")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[grpc_chaos::test]
async fn a_stream_that_loses_its_connection_after_headers_reads_unavailable_through_the_layers() {
    // With and without a deadline (the layer wraps the response either way), and through
    // the retry layer, which never retries a call whose response headers have come.
    for timeout in [None, Some(Duration::from_secs(5))] {
        let server = flaky_server();
        let mut request = tonic::Request::new(hello("Ada"));
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        let mut client = propagating(&server);
        let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
        assert_eq!(stream.message().await.unwrap().unwrap().message, "one");
        server.drop_connections();
        let status = stream.message().await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{timeout:?}: {status:?}");
    }

    let server = flaky_server();
    let mut client = retrying(&server, Code::Unavailable);
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "one");
    server.drop_connections();
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(server.wait_for_ended_calls(1).await.len(), 1);

    // A plain client, for the record: tonic's UNKNOWN.
    let server = flaky_server();
    let mut plain = greeter(&server);
    let mut stream = plain
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap();
    server.drop_connections();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Unknown);
}
