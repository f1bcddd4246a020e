//! Server-, client- and bidi-streaming calls against the in-memory fake, under paused time.

use std::time::Duration;

use grpc_chaos::fake::{method, CallEnding, FakeServer, Reason, Reply, Stub};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::{Code, Status};

use crate::support::*;

/// Reads a server stream to its end, noting the virtual instant of each item.
async fn collect_timed(
    mut stream: tonic::Streaming<HelloReply>,
    start: Instant,
) -> (
    Vec<(Duration, String)>,
    Result<Option<tonic::metadata::MetadataMap>, Status>,
) {
    let mut items = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(m)) => items.push((start.elapsed(), m.message)),
            Ok(None) => return (items, stream.trailers().await),
            Err(status) => return (items, Err(status)),
        }
    }
}

#[grpc_chaos::test]
async fn server_stream_messages_arrive_after_their_own_delays_then_trailers() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::stream()
                .delay(ms(100))
                .header("x-stream", "greetings")
                .then_message_after(ms(10), &reply("Hello #1, Ada!"))
                .then_message_after(ms(20), &reply("Hello #2, Ada!"))
                .then_message_after(ms(30), &reply("Hello #3, Ada!"))
                .trailer("x-count", "3"),
        )
        .mount(&server);
    let start = Instant::now();

    let response = greeter(&server)
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), ms(100), "headers after the header delay");
    assert_eq!(response.metadata().get("x-stream").unwrap(), "greetings");
    let (items, trailers) = collect_timed(response.into_inner(), start).await;

    assert_eq!(
        items,
        [
            (ms(110), "Hello #1, Ada!".to_string()),
            (ms(130), "Hello #2, Ada!".to_string()),
            (ms(160), "Hello #3, Ada!".to_string())
        ]
    );
    assert_eq!(trailers.unwrap().unwrap().get("x-count").unwrap(), "3");
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.response_messages.len(), 3);
    assert_eq!(call.ending.at(), Some(start + ms(160)));
}

#[grpc_chaos::test]
async fn server_stream_aborts_after_n_messages_with_the_injected_status() {
    let server = FakeServer::in_memory();
    let three = [reply("1"), reply("2"), reply("3")];
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::messages(&three)
                .abort_after(2, Status::unavailable("server going away"))
                .trailer("x-aborted", "yes"),
        )
        .mount(&server);
    let start = Instant::now();

    let response = greeter(&server)
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap();
    let (items, end) = collect_timed(response.into_inner(), start).await;

    assert_eq!(items.len(), 2);
    let status = end.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "server going away")
    );
    assert_eq!(status.metadata().get("x-aborted").unwrap(), "yes");
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.response_messages.len(), 2);
    assert_eq!(call.status_code(), Some(Code::Unavailable));
}

#[grpc_chaos::test]
async fn server_stream_cancelled_mid_stream_records_instant_and_message_index() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::stream()
                .then_message_after(ms(100), &reply("1"))
                .then_message_after(ms(100), &reply("2"))
                .then_message_after(ms(100), &reply("3")),
        )
        .mount(&server);
    let start = Instant::now();
    let mut stream = greeter(&server)
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(stream.message().await.unwrap().unwrap().message, "1");
    tokio::time::sleep_until(start + ms(150)).await;
    drop(stream);

    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(
        call.ending,
        CallEnding::Cancelled {
            at: start + ms(150),
            requests_received: 1,
            responses_sent: 1
        }
    );
    assert_eq!(server.live_calls(), 0);
}

#[grpc_chaos::test]
async fn server_stream_reset_after_a_message_reaches_the_client() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::message(&reply("1"))
                .then_reset(Reason::CANCEL)
                .end_after(ms(20)),
        )
        .mount(&server);
    let start = Instant::now();

    let response = greeter(&server)
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap();
    let (items, end) = collect_timed(response.into_inner(), start).await;

    assert_eq!(items, [(ms(0), "1".to_string())]);
    assert_eq!(end.unwrap_err().code(), Code::Cancelled);
    assert_eq!(start.elapsed(), ms(20));
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(
        call.ending,
        CallEnding::Reset {
            reason: Reason::CANCEL,
            at: start + ms(20)
        }
    );
}

#[grpc_chaos::test]
async fn client_stream_is_recorded_message_by_message_and_answered_at_half_close() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::message(&reply("Hello, everyone!")).trailer("x-seen", "all"))
        .mount(&server);
    let start = Instant::now();
    let names = ["Ada", "Grace", "Barbara"];
    let requests = tokio_stream::iter(names.map(hello)).throttle(ms(40));

    let response = greeter(&server)
        .say_hello_client_stream(requests)
        .await
        .unwrap();

    // The throttle sends at 0, 40 and 80 ms, then ends the stream at 120 ms.
    assert_eq!(start.elapsed(), ms(120));
    assert_eq!(response.metadata().get("x-seen").unwrap(), "all");
    assert_eq!(response.into_inner().message, "Hello, everyone!");
    let call = &server.wait_for_ended_calls(1).await[0];
    let received: Vec<String> = call
        .requests::<HelloRequest>()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(received, names);
}

#[grpc_chaos::test]
async fn client_stream_hang_then_client_deadline_records_how_far_it_got() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::hang())
        .mount(&server);
    let start = Instant::now();
    let requests = tokio_stream::iter((0..10).map(|i| hello(&i.to_string()))).throttle(ms(100));
    let mut request = tonic::Request::new(requests);
    request.set_timeout(ms(250));

    let err = greeter(&server)
        .say_hello_client_stream(request)
        .await
        .unwrap_err();

    assert_eq!(err.code(), Code::Cancelled);
    let call = &server.wait_for_ended_calls(1).await[0];
    // Messages at 0, 100 and 200 ms arrived before the 250 ms deadline.
    assert_eq!(
        call.ending,
        CallEnding::Cancelled {
            at: start + ms(250),
            requests_received: 3,
            responses_sent: 0
        }
    );
}

#[grpc_chaos::test]
async fn bidi_stream_interleaves_replies_with_requests_and_ends_after_half_close() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(
            Reply::stream()
                .header("x-bidi", "on")
                .then_message_after(ms(50), &reply("a"))
                .then_message_after(ms(50), &reply("b"))
                .trailer("x-done", "1"),
        )
        .mount(&server);
    let start = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello("first")).await.unwrap();

    let response = greeter(&server)
        .say_hello_bidi_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-bidi").unwrap(), "on");
    let mut stream = response.into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "a");
    assert_eq!(start.elapsed(), ms(50));
    tx.send(hello("second")).await.unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "b");
    assert_eq!(start.elapsed(), ms(100));
    tokio::time::sleep(ms(25)).await;
    drop(tx); // half-close at 125 ms: only now may the server end the call

    assert_eq!(stream.message().await.unwrap(), None);
    assert_eq!(start.elapsed(), ms(125));
    assert_eq!(
        stream
            .trailers()
            .await
            .unwrap()
            .unwrap()
            .get("x-done")
            .unwrap(),
        "1"
    );
    let call = &server.wait_for_ended_calls(1).await[0];
    let names: Vec<String> = call
        .requests::<HelloRequest>()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["first", "second"]);
}

#[grpc_chaos::test]
async fn bidi_stream_abort_ends_the_call_while_the_client_still_sends() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(
            Reply::stream()
                .then_message_after(ms(10), &reply("1"))
                .then_message_after(ms(10), &reply("2"))
                .abort_after(1, Status::aborted("enough")),
        )
        .mount(&server);
    let start = Instant::now();
    // A client that would send forever.
    let requests = tokio_stream::iter((0..).map(|i: u32| hello(&i.to_string()))).throttle(ms(3));

    let mut stream = greeter(&server)
        .say_hello_bidi_stream(requests)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "1");
    let status = stream.message().await.unwrap_err();

    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(start.elapsed(), ms(10));
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.response_messages.len(), 1);
    assert!(
        matches!(call.ending, CallEnding::Status { code: Code::Aborted, at, .. } if at == start + ms(10))
    );
}

#[grpc_chaos::test]
async fn bidi_stream_hang_is_cancelled_by_the_client_at_an_exact_instant() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(Reply::message(&reply("welcome")).then_hang())
        .mount(&server);
    let start = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let sender = tokio::spawn(async move {
        for i in 0.. {
            if tx.send(hello(&i.to_string())).await.is_err() {
                break;
            }
            tokio::time::sleep(ms(30)).await;
        }
    });

    let mut stream = greeter(&server)
        .say_hello_bidi_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "welcome");
    tokio::time::sleep_until(start + ms(100)).await;
    // Cancelling a bidi call in tonic takes both halves: dropping the response alone
    // leaves the request half sending (the HTTP/2 stream stays open).
    sender.abort();
    drop(stream);

    let call = &server.wait_for_ended_calls(1).await[0];
    // Requests at 0, 30, 60 and 90 ms arrived; one response was sent.
    assert_eq!(
        call.ending,
        CallEnding::Cancelled {
            at: start + ms(100),
            requests_received: 4,
            responses_sent: 1
        }
    );
    assert_eq!(server.live_calls(), 0);
}
