//! The journal's limits in bytes: a per-message prefix, a budget for all calls (oldest
//! out first), and a single call over the budget. Stubs, matchers and handlers still see
//! every message whole.

use grpc_chaos::fake::{message_eq, method, DecodeMessageError, FakeServer, Reply, Stub};
use grpc_chaos::pb::HelloRequest;
use prost::Message;

use crate::support::*;

fn long(n: usize) -> String {
    "x".repeat(n)
}

#[grpc_chaos::test]
async fn a_message_over_the_cap_keeps_its_size_and_a_prefix_and_matches_whole() {
    let server = FakeServer::builder().journal_message_bytes(10).in_memory();
    let name = long(100);
    Stub::given(method(SAY_HELLO))
        .and(message_eq(hello(&name)))
        .respond_with(Reply::message(&reply(&long(50))))
        .mount(&server);

    let answer = greeter(&server).say_hello(hello(&name)).await.unwrap();

    // The matcher saw the whole message, and the client the whole reply.
    assert_eq!(answer.into_inner().message.len(), 50);
    let call = &server.wait_for_ended_calls(1).await[0];
    let sent = hello(&name).encode_to_vec();
    assert_eq!(call.request_messages[0], sent[..10]);
    assert_eq!(call.request_sizes, [sent.len()]);
    assert_eq!(call.response_messages[0].len(), 10);
    assert_eq!(call.response_sizes, [reply(&long(50)).encoded_len()]);
    let err = call.request::<HelloRequest>(0).unwrap_err();
    assert!(
        matches!(err, DecodeMessageError::Truncated { side: "request", index: 0, kept: 10, size } if size == sent.len()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "request message 0 was truncated in the journal: 10 of its {} bytes were kept",
            sent.len()
        )
    );
}

#[grpc_chaos::test]
async fn past_the_byte_budget_the_oldest_calls_go_first() {
    // Each call keeps 203 + 203 bytes (request and reply); three fit in 1,300.
    let server = FakeServer::builder().journal_bytes(1_300).in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply(&long(200))))
        .mount(&server);
    let mut client = greeter(&server);

    for _ in 0..5 {
        client.say_hello(hello(&long(200))).await.unwrap();
    }

    let calls = server.wait_for_ended_calls(3).await;
    let ids: Vec<usize> = calls.iter().map(|c| c.id).collect();
    assert_eq!(ids, [2, 3, 4]);
    assert_eq!(server.journal_bytes(), 3 * (203 + 203));
    // The calls kept are whole.
    assert_eq!(
        calls[2].request::<HelloRequest>(0).unwrap(),
        hello(&long(200))
    );
}

#[grpc_chaos::test]
async fn one_call_over_the_budget_keeps_the_first_bytes_and_its_handler_sees_everything() {
    let server = FakeServer::builder().journal_bytes(1_000).in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::handler(|mut call| async move {
            let mut total = 0;
            while let Some(message) = call.next_message().await {
                total += HelloRequest::decode(message).unwrap().name.len();
            }
            call.send(&reply(&total.to_string())).await;
            Ok(())
        }))
        .mount(&server);
    let requests: Vec<HelloRequest> = (0..10).map(|_| hello(&long(297))).collect();

    let answer = greeter(&server)
        .say_hello_client_stream(tokio_stream::iter(requests))
        .await
        .unwrap();

    assert_eq!(answer.into_inner().message, "2970");
    let call = &server.wait_for_ended_calls(1).await[0];
    let kept: Vec<usize> = call.request_messages.iter().map(|m| m.len()).collect();
    // 300 bytes each: three whole, then what is left of the 1,000, then sizes only.
    assert_eq!(kept, [300, 300, 300, 100, 0, 0, 0, 0, 0, 0]);
    assert_eq!(call.request_sizes, [300; 10]);
    assert_eq!(server.journal_bytes(), 1_000);
    assert!(call.request::<HelloRequest>(2).is_ok());
    assert!(matches!(
        call.request::<HelloRequest>(3),
        Err(DecodeMessageError::Truncated {
            kept: 100,
            size: 300,
            ..
        })
    ));
}
