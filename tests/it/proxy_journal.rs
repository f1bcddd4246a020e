//! The proxy's journal, through real tonic calls on one paused clock: each call as the
//! client made it and as the proxy answered it, the fault it got, and where its time
//! went (waiting on the upstream, or held by an injected delay), to the exact instant.

use grpc_chaos::fake::{method, CallEnding, FakeServer, Reason, Reply, Stub};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use grpc_chaos::proxy::{Fault, FaultRule, ProxiedCall, Proxy, Upstream};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::proxy_support::*;
use crate::support::*;

fn ending_at(call: &ProxiedCall) -> std::time::Duration {
    call.call.ending.at().expect("ended") - call.call.arrived_at
}

#[grpc_chaos::test]
async fn a_call_is_journaled_as_the_client_made_it_and_as_it_was_answered() {
    let server = upstream();
    let fault = Fault::new()
        .delay(ms(250))
        .set_request_header("x-added", b"1")
        .unwrap();
    let (proxy, mut client) = through(&server, on(SAY_HELLO, fault));
    let start = Instant::now();
    let mut request = hello_in_case("journal");
    request.set_timeout(std::time::Duration::from_secs(5));
    client.say_hello(request).await.unwrap();

    let calls = proxy.wait_for_ended_calls(1).await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    // The metadata as it arrived, before the fault's edit; the upstream got the edit.
    assert_eq!(call.call.header("x-case"), Some("journal"));
    assert_eq!(call.call.header("x-added"), None);
    assert_eq!(server.received_calls()[0].header("x-added"), Some("1"));
    assert_eq!(call.call.arrived_at, start);
    assert_eq!(
        call.call.deadline,
        Some(start + std::time::Duration::from_secs(5))
    );
    assert_eq!(call.call.request::<HelloRequest>(0).unwrap().name, "Ada");
    assert_eq!(call.call.response::<HelloReply>(0).unwrap().message, "hi");
    assert_eq!(call.call.stub, None);
    let applied = call.fault.as_ref().unwrap();
    assert_eq!(applied.rule, format!("method == {SAY_HELLO:?}"));
    assert_eq!(applied.fault, "delay 250ms, set request header x-added");
    assert_eq!(call.forwarded_at, Some(start + ms(250)));
    assert_eq!((call.injected_time, call.upstream_time()), (ms(250), ms(0)));
    assert_eq!(call.upstream_status, Some((Code::Ok, String::new())));
    assert_eq!(call.call.status_code(), Some(Code::Ok));
    assert_eq!(ending_at(call), ms(250));
}

#[grpc_chaos::test]
async fn the_upstream_time_and_the_injected_time_add_up_to_the_call() {
    let server = upstream();
    // The upstream sends at +0, +100, +200 ms; the proxy holds the headers 50 ms and
    // the third message 500 ms.
    let fault = Fault::new()
        .delay_response(ms(50))
        .delay_messages(ms(500), Some(3));
    let (proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, fault));
    let (got, at, end) = stream_messages(&mut client).await;
    end.unwrap();
    assert_eq!(got, ["one", "two", "three"]);
    assert_eq!(at, [ms(50), ms(100), ms(700)]);

    let call = &proxy.wait_for_ended_calls(1).await[0];
    assert_eq!(call.injected_time, ms(550));
    // Waited on: the second message from +50 to +100, the third from +100 to +200.
    assert_eq!(call.upstream_time(), ms(150));
    assert_eq!(ending_at(call), call.injected_time + call.upstream_time());
    assert_eq!(call.call.response_messages.len(), 3);
    assert_eq!(
        call.fault.as_ref().unwrap().fault,
        "delay response headers by 50ms, delay response message 3 by 500ms"
    );
}

#[grpc_chaos::test]
async fn an_injected_status_stands_beside_what_the_upstream_said() {
    let server = upstream();
    let (proxy, mut client) = through(
        &server,
        vec![
            FaultRule::given(method(SAY_HELLO_STREAM))
                .named("cut the stream")
                .with(Fault::new().abort_after(2, Status::unavailable("cut"))),
            FaultRule::given(method(SAY_HELLO))
                .with(Fault::new().answer(Status::not_found("nope"))),
        ],
    );
    let (got, _, end) = stream_messages(&mut client).await;
    assert_eq!(got, ["one", "two"]);
    assert_eq!(end.unwrap_err().code(), Code::Unavailable);
    let answered = client.say_hello(hello("x")).await.unwrap_err();
    assert_eq!(answered.code(), Code::NotFound);

    let calls = proxy.wait_for_ended_calls(2).await;
    let (cut, nope) = (&calls[0], &calls[1]);
    assert_eq!(cut.fault.as_ref().unwrap().rule, "cut the stream");
    assert_eq!(
        cut.fault.as_ref().unwrap().fault,
        "abort after 2 with Unavailable"
    );
    assert_eq!(
        cut.call.ending,
        CallEnding::Status {
            code: Code::Unavailable,
            message: "cut".into(),
            at: cut.call.arrived_at + ms(200),
        }
    );
    assert_eq!(cut.call.response_messages.len(), 2);
    // The upstream was cancelled before its status.
    assert_eq!(cut.upstream_status, None);

    assert_eq!(nope.forwarded_at, None);
    assert_eq!(nope.upstream_status, None);
    assert_eq!(nope.call.status_code(), Some(Code::NotFound));
    assert_eq!(server.received_calls().len(), 1);
}

#[grpc_chaos::test]
async fn a_cancel_a_reset_and_a_missing_status_are_each_journaled() {
    let server = upstream();
    let (proxy, mut client) = through(
        &server,
        vec![
            FaultRule::given(method(SAY_HELLO_STREAM))
                .and(grpc_chaos::fake::metadata("x-case", "reset"))
                .with(Fault::new().reset_after(1, Reason::REFUSED_STREAM)),
            FaultRule::given(method(SAY_HELLO_STREAM))
                .and(grpc_chaos::fake::metadata("x-case", "no-status"))
                .with(Fault::new().drop_trailers()),
        ],
    );
    // Cancelled: the client drops the stream after the first message.
    let mut stream = client
        .say_hello_stream(hello("cancel"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    for case in ["reset", "no-status"] {
        let mut request = hello_in_case(case);
        *request.get_mut() = hello(case);
        let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
        while let Ok(Some(_)) = stream.message().await {}
    }

    let calls = proxy.wait_for_ended_calls(3).await;
    assert!(
        matches!(
            calls[0].call.ending,
            CallEnding::Cancelled {
                responses_sent: 1,
                ..
            }
        ),
        "{:?}",
        calls[0].call.ending
    );
    assert!(
        matches!(
            calls[1].call.ending,
            CallEnding::Reset {
                reason: Reason::REFUSED_STREAM,
                ..
            }
        ),
        "{:?}",
        calls[1].call.ending
    );
    assert_eq!(calls[1].call.response_messages.len(), 1);
    assert_eq!(
        calls[2].call.ending,
        CallEnding::NoStatus {
            at: calls[2].call.arrived_at + ms(200)
        }
    );
    // The upstream's own status, which the client never saw.
    assert_eq!(calls[2].upstream_status, Some((Code::Ok, String::new())));
}

#[grpc_chaos::test]
async fn a_request_message_held_on_its_way_up_is_injected_time_not_upstream_time() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::message(&reply("all")))
        .mount(&server);
    let fault = Fault::new().delay_request_messages(ms(300), Some(2));
    let (proxy, mut client) = through(&server, on(SAY_HELLO_CLIENT_STREAM, fault));
    let names = tokio_stream::iter([hello("a"), hello("b"), hello("c")]);
    client.say_hello_client_stream(names).await.unwrap();

    let call = &proxy.wait_for_ended_calls(1).await[0];
    let names: Vec<String> = call
        .call
        .requests::<HelloRequest>()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!((call.injected_time, call.upstream_time()), (ms(300), ms(0)));
    assert_eq!(ending_at(call), ms(300));
}

#[grpc_chaos::test]
async fn the_journal_is_bounded_watchable_and_can_be_turned_off() {
    let server = upstream();
    let proxy = Proxy::builder(Upstream::fake(&server))
        .journal_limit(2)
        .in_memory();
    let mut watch = proxy.watch_calls();
    let mut client = grpc_chaos::pb::greeter_client::GreeterClient::new(proxy.channel());
    for name in ["a", "b", "c"] {
        client.say_hello(hello(name)).await.unwrap();
    }
    let watched = watch.recv().await.unwrap();
    assert_eq!(watched.call.request::<HelloRequest>(0).unwrap().name, "a");
    let kept: Vec<usize> = proxy
        .wait_for_ended_calls(2)
        .await
        .iter()
        .map(|c| c.call.id)
        .collect();
    assert_eq!(kept, [1, 2]);
    proxy.clear_received_calls_where(|c| c.call.id == 1);
    assert_eq!(proxy.received_calls().len(), 1);

    let off = Proxy::builder(Upstream::fake(&server))
        .journal_limit(0)
        .in_memory();
    let mut client = grpc_chaos::pb::greeter_client::GreeterClient::new(off.channel());
    client.say_hello(hello("d")).await.unwrap();
    assert!(off.received_calls().is_empty());
    assert!(off.wait_for_ended_calls_within(1, ms(10)).await.is_err());
}

#[grpc_chaos::test]
async fn oversized_metadata_is_journaled_with_its_status() {
    let server = upstream();
    let (proxy, mut client) = through(&server, Vec::new());
    let mut request = hello_in_case("big");
    request
        .metadata_mut()
        .insert("x-big", "v".repeat(20 * 1024).parse().unwrap());
    let status = client.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let call = &proxy.wait_for_ended_calls(1).await[0];
    assert_eq!(call.call.status_code(), Some(Code::ResourceExhausted));
    assert_eq!(call.forwarded_at, None);
    assert!(server.received_calls().is_empty());
}
