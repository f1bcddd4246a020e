//! Expectations: verified on drop (server and scoped guard), with pinned messages.

use grpc_chaos::fake::{any, message_eq, method, FakeServer, ReceivedCall, Reply, Stub, StubGuard};
use grpc_chaos::pb::HelloRequest;
use tonic::Code;

use crate::support::*;

#[grpc_chaos::test(paused = false)]
#[should_panic(
    expected = "grpc-chaos: 1 unmet expectation(s):\n- stub \"greeting\" (method == \"/pb.Greeter/SayHello\"; replies 1 message(s) then status Ok) expected exactly 2 call(s), received 1\nreceived calls (1):\n  #0 /pb.Greeter/SayHello at +"
)]
async fn an_unmet_expectation_panics_on_drop_listing_the_calls() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("hi")))
        .expect(2)
        .named("greeting")
        .mount(&server);
    greeter(&server).say_hello(hello("Ada")).await.unwrap();
    server.wait_for_ended_calls(1).await;
}

#[grpc_chaos::test(paused = false)]
#[should_panic(
    expected = "- stub \"scoped\" (any call; replies 0 message(s) then status Unavailable) expected at least 1 call(s), received 0\nreceived calls (0):"
)]
async fn a_scoped_guard_verifies_its_own_stub_when_dropped() {
    let server = FakeServer::in_memory();
    let guard = Stub::given(any())
        .respond_with(Reply::error(Code::Unavailable, "x"))
        .expect(1..)
        .named("scoped")
        .mount_as_scoped(&server);
    drop(guard);
}

#[grpc_chaos::test(paused = false)]
async fn a_scoped_stub_answers_only_while_its_guard_lives() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("outer")))
        .with_priority(9)
        .mount(&server);
    let mut client = greeter(&server);
    {
        let guard = Stub::given(method(SAY_HELLO))
            .respond_with(Reply::message(&reply("inner")))
            .expect(1)
            .mount_as_scoped(&server);
        assert_eq!(
            client
                .say_hello(hello("a"))
                .await
                .unwrap()
                .into_inner()
                .message,
            "inner"
        );
        assert_eq!(guard.received_calls().len(), 1);
    }
    assert_eq!(
        client
            .say_hello(hello("a"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "outer"
    );
}

#[grpc_chaos::test(paused = false)]
#[should_panic(expected = "the test's own failure")]
async fn drop_does_not_verify_while_the_thread_is_already_panicking() {
    let server = FakeServer::in_memory();
    Stub::given(any())
        .respond_with(Reply::empty())
        .expect(5)
        .mount(&server);
    // Were the server to verify during this unwind, the process would abort instead.
    panic!("the test's own failure");
}

#[grpc_chaos::test(paused = false)]
async fn try_verify_reports_and_up_to_n_times_falls_through() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::error(Code::Unavailable, "first"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("second")))
        .expect(0)
        .named("never")
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
        "second"
    );

    let err = server.try_verify().unwrap_err();
    assert_eq!(err.unmet().len(), 1);
    assert!(err.unmet()[0].starts_with("stub \"never\""), "{err}");
    server.reset();
    server.verify();
}

#[grpc_chaos::test(paused = false)]
async fn an_unmatched_call_with_no_stubs_says_so() {
    let server = FakeServer::in_memory();
    let err = greeter(&server).say_hello(hello("a")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert_eq!(
        err.message(),
        "grpc-chaos: no stub matched /pb.Greeter/SayHello; no stubs are mounted"
    );
}

#[grpc_chaos::test]
async fn reset_with_a_call_in_flight_keeps_recording_safely() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .mount(&server);
    let mut client = greeter(&server);
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(ms(100));
    let in_flight = tokio::spawn(async move { client.say_hello(request).await });
    server.wait_for_calls(1).await;

    server.reset();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("after reset")))
        .mount(&server);

    assert_eq!(
        in_flight.await.unwrap().unwrap_err().code(),
        Code::Cancelled
    );
    server.wait_for_idle().await;
    let answered = greeter(&server).say_hello(hello("Ada")).await.unwrap();
    assert_eq!(answered.into_inner().message, "after reset");
    let calls = server.received_calls();
    assert_eq!(
        calls.len(),
        1,
        "the call from before the reset is no longer listed"
    );
    assert_eq!(calls[0].id, 1, "ids go on counting");
}

#[grpc_chaos::test(paused = false)]
async fn a_dropped_tcp_server_stops_answering() {
    let server = FakeServer::start().await;
    Stub::given(any())
        .respond_with(Reply::empty())
        .mount(&server);
    let uri = server.uri();
    drop(server);

    let err = grpc_chaos::pb::greeter_client::GreeterClient::connect(uri)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("transport"), "{err}");
}

/// Two scoped stubs, one per name, answering calls for "a", "b", "a", "b", "a"; returns
/// once the journal has the ending of the last `kept` of them.
async fn two_stubs_answer_five_calls(server: &FakeServer, kept: usize) -> (StubGuard, StubGuard) {
    let given = |name: &str| {
        Stub::given(method(SAY_HELLO))
            .and(message_eq(hello(name)))
            .respond_with(Reply::message(&reply(name)))
            .mount_as_scoped(server)
    };
    let (a, b) = (given("a"), given("b"));
    let mut client = greeter(server);
    for name in ["a", "b", "a", "b", "a"] {
        client.say_hello(hello(name)).await.unwrap();
    }
    server.wait_for_ended_calls(kept).await;
    (a, b)
}

fn names(calls: &[ReceivedCall]) -> Vec<(usize, String)> {
    calls
        .iter()
        .map(|c| (c.id, c.request::<HelloRequest>(0).unwrap().name))
        .collect()
}

#[grpc_chaos::test]
async fn a_stubs_calls_are_its_own_after_the_journal_forgot_some() {
    let server = FakeServer::in_memory();
    let (a, b) = two_stubs_answer_five_calls(&server, 5).await;
    // Forget call 0 (an "a"): the rest move up the journal's list, not their ids.
    server.clear_received_calls_where(|call| call.id == 0);

    assert_eq!(
        names(&a.received_calls()),
        [(2, "a".into()), (4, "a".into())]
    );
    assert_eq!(
        names(&b.received_calls()),
        [(1, "b".into()), (3, "b".into())]
    );
    // The counts are of calls answered, forgotten or not.
    assert_eq!((a.call_count(), b.call_count()), (3, 2));
}

#[grpc_chaos::test]
async fn a_bounded_journal_gives_a_stub_the_calls_it_still_keeps() {
    let server = FakeServer::builder().journal_limit(2).in_memory();
    let (a, b) = two_stubs_answer_five_calls(&server, 2).await;

    assert_eq!(names(&a.received_calls()), [(4, "a".into())]);
    assert_eq!(names(&b.received_calls()), [(3, "b".into())]);
    assert_eq!((a.call_count(), b.call_count()), (3, 2));
}
