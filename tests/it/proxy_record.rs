//! Record, then replay: calls through a recording proxy become scenario stubs, and a
//! fresh fake serving them answers the same calls the same way, to the virtual
//! millisecond, with secrets left out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::proxy::{Proxy, Upstream};
use grpc_chaos::scenario::Scenario;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Status;

use crate::support::*;

fn upstream() -> FakeServer {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .and(grpc_chaos::fake::message_eq(hello("Ada")))
        .respond_with(
            Reply::message(&reply("Hello, Ada!"))
                .delay(ms(100))
                .header("x-region", "eu")
                .header("x-secret", "hunter2")
                .header("authorization", "Bearer leaked")
                .header_bin("x-trace-bin", [0u8, 255])
                .trailer("x-cost", "3"),
        )
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::status(Status::unavailable("later, 50% off")))
        .mount(&server);
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(
            Reply::stream()
                .then_message(&reply("one"))
                .then_message_after(ms(100), &reply("two"))
                .then_message_after(ms(250), &reply("three"))
                .trailer("x-count", "3")
                .then_status(Status::aborted("done early")),
        )
        .mount(&server);
    server
}

/// What a client saw: per call, the messages with their instants, metadata, and the
/// ending.
async fn session(channel: Channel) -> Vec<String> {
    let mut client = GreeterClient::new(channel);
    let mut seen = Vec::new();
    let start = Instant::now();
    match client.say_hello(hello("Ada")).await {
        Ok(r) => {
            let md = r.metadata();
            seen.push(format!(
                "ok {:?} region={:?} secret={:?} auth={:?} trace={:?} cost={:?} at {:?}",
                r.get_ref().message,
                md.get("x-region"),
                md.get("x-secret"),
                md.get("authorization"),
                md.get_bin("x-trace-bin").map(|v| v.to_bytes().unwrap()),
                md.get("x-cost"),
                start.elapsed()
            ));
        }
        Err(s) => seen.push(format!("err {s:?}")),
    }
    let status = client.say_hello(hello("Bob")).await.unwrap_err();
    seen.push(format!("{:?} {:?}", status.code(), status.message()));
    let start = Instant::now();
    let mut stream = client
        .say_hello_stream(hello("x"))
        .await
        .unwrap()
        .into_inner();
    loop {
        match stream.message().await {
            Ok(Some(m)) => seen.push(format!("{} at {:?}", m.message, start.elapsed())),
            Ok(None) => break,
            Err(s) => {
                seen.push(format!(
                    "{:?} {:?} x-count={:?}",
                    s.code(),
                    s.message(),
                    s.metadata().get("x-count")
                ));
                break;
            }
        }
    }
    seen
}

/// Written with the types known (messages as tables) or not (as base64), a recording
/// replays the same.
#[rstest::rstest]
#[case::as_tables(true)]
#[case::as_bytes(false)]
#[grpc_chaos::test]
async fn a_recorded_session_replays_the_same(#[case] tables: bool) {
    let server = upstream();
    let recorded = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&recorded);
    let schema = grpc_chaos::schema::Schema::builtin();
    let proxy = Proxy::builder(Upstream::fake(&server))
        .record(move |call| {
            let redact = ["x-secret".to_string()];
            let text = if tables {
                Scenario::recorded_stub_with(&schema, &call, &redact)
            } else {
                Scenario::recorded_stub(&call, &redact)
            };
            sink.lock().unwrap().push_str(&text);
        })
        .in_memory();
    let through_proxy = session(proxy.channel()).await;
    server.wait_for_ended_calls(3).await;

    let text = recorded.lock().unwrap().clone();
    assert!(
        !text.contains("hunter2") && !text.contains("leaked"),
        "{text}"
    );
    assert_eq!(text.contains("name = \"Ada\""), tables, "{text}");
    assert_eq!(text.contains("message_base64"), !tables, "{text}");
    let replay = FakeServer::in_memory();
    Scenario::parse("recorded.toml", &text, 0)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .mount(&replay);
    let replayed = session(replay.channel()).await;

    assert_eq!(
        through_proxy[0].split(" secret=").next(),
        replayed[0].split(" secret=").next()
    );
    assert!(
        through_proxy[0].contains("secret=Some"),
        "the live call had it"
    );
    assert!(
        replayed[0].contains("secret=None auth=None"),
        "{}",
        replayed[0]
    );
    assert_eq!(through_proxy[1..], replayed[1..]);
    assert_eq!(
        replayed[1..],
        [
            "Unavailable \"later, 50% off\"".to_string(),
            "one at 0ns".into(),
            "two at 100ms".into(),
            "three at 350ms".into(),
            "Aborted \"done early\" x-count=Some(\"3\")".into(),
        ]
    );
    assert!(
        replayed[0].ends_with(&format!("at {:?}", Duration::from_millis(100))),
        "{}",
        replayed[0]
    );
}
