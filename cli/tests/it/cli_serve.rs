//! `grpc-chaos serve` as a subprocess on 127.0.0.1:0, driven by a tonic client.

use std::time::Duration;

use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::grpc::testing::test_service_client::TestServiceClient;
use grpc_chaos::pb::grpc::testing::{ResponseParameters, StreamingOutputCallRequest};

use crate::served::Served;
use crate::support::*;

#[grpc_chaos::test(paused = false)]
async fn serve_prints_its_real_port_answers_the_greeter_and_exits_0_on_sigterm() {
    let mut served = Served::start(&[]).await;
    assert!(
        served.addr.starts_with("127.0.0.1:") && !served.addr.ends_with(":0"),
        "{}",
        served.addr
    );
    let mut client = GreeterClient::connect(served.uri()).await.unwrap();

    let reply = client.say_hello(hello("Ada")).await.unwrap().into_inner();
    assert_eq!(reply.message, "Hello, Ada!");
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let mut greetings = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        greetings.push(m.message);
    }
    assert_eq!(
        greetings,
        ["Hello #1, Ada!", "Hello #2, Ada!", "Hello #3, Ada!"]
    );
    let mut bidi = client
        .say_hello_bidi_stream(tokio_stream::iter([hello("a"), hello("b")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bidi.message().await.unwrap().unwrap().message, "Hello, a!");
    assert_eq!(bidi.message().await.unwrap().unwrap().message, "Hello, b!");
    assert_eq!(bidi.message().await.unwrap(), None);
    let all = client
        .say_hello_client_stream(tokio_stream::iter([
            hello("Ada"),
            hello("Grace"),
            hello("Barbara"),
        ]))
        .await
        .unwrap();
    assert_eq!(all.into_inner().message, "Hello, Ada, Grace and Barbara!");

    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[grpc_chaos::test(paused = false)]
async fn serve_exits_0_on_sigint() {
    let mut served = Served::start(&[]).await;
    served.signal("INT");
    assert_eq!(served.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[grpc_chaos::test(paused = false)]
async fn sigterm_lets_an_in_flight_call_finish_before_exiting_0() {
    let mut served = Served::start(&[]).await;
    let mut client = TestServiceClient::connect(served.uri()).await.unwrap();
    let parameters = vec![
        ResponseParameters {
            size: 1,
            interval_us: 0,
            compressed: None,
        },
        ResponseParameters {
            size: 2,
            interval_us: 300_000,
            compressed: None,
        },
    ];
    let request = StreamingOutputCallRequest {
        response_parameters: parameters,
        ..Default::default()
    };
    let mut stream = client
        .full_duplex_call(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    // The first response proves the call is in flight on the server.
    assert!(stream.message().await.unwrap().is_some());

    served.signal("TERM");

    let second = stream.message().await.unwrap().unwrap();
    assert_eq!(second.payload.unwrap().body.len(), 2);
    assert_eq!(stream.message().await.unwrap(), None);
    assert_eq!(served.wait_exit(Duration::from_secs(10)).await, Some(0));
}

#[test]
fn help_prints_the_usage_and_no_rust_code() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.starts_with("A programmable fake gRPC server"),
        "{help}"
    );
    assert!(help.contains("Usage: grpc-chaos <COMMAND>"), "{help}");
    assert!(
        !help.contains("```") && !help.contains("parse_from"),
        "{help}"
    );
}

/// Serves one SayHello answered NOT_FOUND by its `x-chaos-status` header, logging at
/// `level`, and returns everything it logged once it exited.
async fn logs_of_one_call(level: &str) -> String {
    let mut served = Served::start_logging(level, &[]).await;
    let mut client = GreeterClient::connect(served.uri()).await.unwrap();
    let mut request = tonic::Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-chaos-status", "5".parse().unwrap());
    let status = client.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)).await, Some(0));
    served.logs_after_exit().await
}

#[grpc_chaos::test(paused = false)]
async fn serve_logs_each_call_once_at_info_when_it_ends() {
    let logs = logs_of_one_call("info").await;
    let ended: Vec<&str> = logs.lines().filter(|l| l.contains("call ended")).collect();
    assert_eq!(ended.len(), 1, "{logs}");
    assert!(
        ended[0].contains("method=/pb.Greeter/SayHello stub=\"built-in pb.Greeter/SayHello\""),
        "{logs}"
    );
    let ending = ended[0].split("ending=").nth(1).expect("an ending field");
    let offset = regex::Regex::new(r"^NotFound at \+\d+\.\d{3}s$").unwrap();
    assert!(offset.is_match(ending), "{ending:?} in {logs}");
    assert!(!logs.contains("Instant"), "{logs}");
    // One line per call at INFO: the start is DEBUG's.
    assert!(!logs.contains("call started"), "{logs}");
}

#[grpc_chaos::test(paused = false)]
async fn serve_logs_each_start_with_its_shape_at_debug() {
    let logs = logs_of_one_call("debug").await;
    // The built-in methods' shapes are known, so the log says whether each streams.
    let started: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("call started"))
        .collect();
    assert_eq!(started.len(), 1, "{logs}");
    assert!(
        started[0].contains("client_streaming=\"false\" server_streaming=\"false\""),
        "{logs}"
    );
    assert_eq!(logs.matches("call ended").count(), 1, "{logs}");
}
