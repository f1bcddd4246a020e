//! Handler replies: async functions that read the request stream as it arrives.

use grpc_chaos::fake::{method, CallEnding, CallHandle, FakeServer, Reply, Stub};
use grpc_chaos::pb::HelloRequest;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::{Code, Status};

use crate::support::*;

fn bidi_echo() -> Reply {
    Reply::handler(|mut call: CallHandle| async move {
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert("x-echo", "on".parse().unwrap());
        call.send_headers(md).await;
        while let Some(req) = call.next::<HelloRequest>().await? {
            tokio::time::sleep(ms(5)).await;
            call.send(&reply(&format!("Hello, {}!", req.name))).await;
        }
        Err(Status::with_metadata(Code::Ok, "", {
            let mut t = tonic::metadata::MetadataMap::new();
            t.insert("x-bye", "1".parse().unwrap());
            t
        }))
    })
}

#[grpc_chaos::test]
async fn a_bidi_handler_answers_each_request_as_it_arrives() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(bidi_echo().trailer("x-static", "t"))
        .mount(&server);
    let start = Instant::now();
    let requests = tokio_stream::iter(["a", "b", "c"].map(hello)).throttle(ms(20));

    let response = greeter(&server)
        .say_hello_bidi_stream(requests)
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-echo").unwrap(), "on");
    let mut stream = response.into_inner();
    let mut got = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        got.push((start.elapsed(), m.message));
    }

    assert_eq!(
        got,
        [
            (ms(5), "Hello, a!".into()),
            (ms(25), "Hello, b!".into()),
            (ms(45), "Hello, c!".into())
        ]
    );
    let trailers = stream.trailers().await.unwrap().unwrap();
    assert_eq!(trailers.get("x-bye").unwrap(), "1");
    assert_eq!(trailers.get("x-static").unwrap(), "t");
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.request_messages.len(), 3);
    assert_eq!(call.response_messages.len(), 3);
    assert!(
        matches!(call.ending, CallEnding::Status { code: Code::Ok, at, .. } if at == start + ms(60))
    );
}

#[grpc_chaos::test]
async fn a_client_stream_handler_aggregates_until_half_close() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::handler(|mut call: CallHandle| async move {
            let mut names = Vec::new();
            while let Some(req) = call.next::<HelloRequest>().await? {
                names.push(req.name);
            }
            call.send(&reply(&format!("Hello, {}!", names.join(" and "))))
                .await;
            Ok(())
        }))
        .mount(&server);

    let requests = tokio_stream::iter(["Ada", "Grace"].map(hello));
    let response = greeter(&server)
        .say_hello_client_stream(requests)
        .await
        .unwrap();

    assert_eq!(response.into_inner().message, "Hello, Ada and Grace!");
}

#[grpc_chaos::test]
async fn abort_after_cuts_a_handler_off_and_a_delay_comes_first() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(
            bidi_echo()
                .delay(ms(100))
                .abort_after(2, Status::unavailable("cut")),
        )
        .mount(&server);
    let start = Instant::now();
    let requests = tokio_stream::iter((0..).map(|i: u32| hello(&i.to_string()))).throttle(ms(10));

    let mut stream = greeter(&server)
        .say_hello_bidi_stream(requests)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(start.elapsed(), ms(100));
    assert!(stream.message().await.unwrap().is_some());
    assert!(stream.message().await.unwrap().is_some());
    let status = stream.message().await.unwrap_err();

    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "cut")
    );
    // Requests queued during the delay are answered 5 ms apart once it ends.
    assert_eq!(start.elapsed(), ms(110));
}

#[grpc_chaos::test]
async fn a_handler_error_is_the_status_and_a_handler_hang_is_cancelled_by_the_client() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::handler(|mut call: CallHandle| async move {
            let req: HelloRequest = call.next().await?.unwrap_or_default();
            if req.name.is_empty() {
                return Err(Status::invalid_argument("name is required"));
            }
            std::future::pending().await
        }))
        .mount(&server);
    let mut client = greeter(&server);
    let start = Instant::now();

    let invalid = client.say_hello(hello("")).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(ms(40));
    assert_eq!(
        client.say_hello(request).await.unwrap_err().code(),
        Code::Cancelled
    );

    let calls = server.wait_for_ended_calls(2).await;
    assert_eq!(calls[1].cancelled_at(), Some(start + ms(40)));
    server.wait_for_idle().await;
}
