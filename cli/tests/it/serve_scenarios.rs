//! `grpc-chaos serve --scenario`: the shipped scenario files served by the binary, and a
//! malformed one refused with exit code 2 and file:line:col.

use std::time::Duration;

use grpc_chaos::pb::greeter_client::GreeterClient;
use prost::Message as _;
use tonic::{Code, Request};

use crate::raw_client;
use crate::served::Served;
use crate::support::*;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/scenarios");

fn fixture(name: &str) -> String {
    format!("{SCENARIOS}/{name}")
}

#[grpc_chaos::test(paused = false)]
async fn serve_loads_the_shipped_scenarios() {
    let served = Served::start(&[
        "--scenario",
        &fixture("greeter-stream-log.toml"),
        "--scenario",
        &fixture("slow-server.toml"),
        "--scenario",
        &fixture("metadata.toml"),
    ])
    .await;
    let mut client = GreeterClient::connect(served.uri()).await.unwrap();

    // The greeter with its stream log.
    let start = std::time::Instant::now();
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let mut greetings = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        greetings.push(m.message);
    }
    assert_eq!(greetings.len(), 5);
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        stream
            .trailers()
            .await
            .unwrap()
            .unwrap()
            .get("x-greetings")
            .unwrap(),
        "5"
    );

    // The slow server against a deadline: the server's own DEADLINE_EXCEEDED.
    let slow = hello("slow").encode_to_vec();
    let response = raw_client::call(
        &served.addr,
        SAY_HELLO,
        &[("grpc-timeout", "100m")],
        &slow,
        true,
    )
    .await;
    assert_eq!(response.grpc_status(), Some(4), "{response:?}");

    // Metadata in headers and trailers.
    let mut tenant = Request::new(hello("Ada"));
    tenant
        .metadata_mut()
        .insert("x-tenant", "blue".parse().unwrap());
    let response = client.say_hello(tenant).await.unwrap();
    let md = response.metadata();
    assert_eq!(md.get("x-region").unwrap(), "eu-west");
    assert_eq!(
        md.get_bin("trace-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0, 1, 2, 3]
    );
    assert_eq!(md.get("x-cost-units").unwrap(), "42");
    assert_eq!(
        md.get_bin("checksum-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0xde, 0xad, 0xbe, 0xef]
    );
    let missing = client.say_hello(hello("Ada")).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.metadata().get("x-hint").unwrap(), "send x-tenant");
}

#[test]
fn serve_rejects_a_malformed_scenario_with_exit_code_2() {
    let dir = std::env::temp_dir().join(format!("grpc-chaos-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.reply]\ndelay_ms = \"soon\"\n",
    )
    .unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args(["serve", "--addr", "127.0.0.1:0", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:4:12: ", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("expected"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing is served");
    std::fs::remove_dir_all(&dir).unwrap();
}
