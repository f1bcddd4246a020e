//! Scenario files: parsed into stubs (in memory, paused time), served by
//! `grpc-chaos serve --scenario`, and rejected with file:line:col when malformed.

use std::time::Duration;

use grpc_chaos::fake::FakeServer;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::scenario::Scenario;
use prost::Message as _;
use tokio::time::Instant;
use tonic::{Code, Request};

use crate::raw_client;
use crate::support::*;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios");

fn fixture(name: &str) -> String {
    format!("{SCENARIOS}/{name}")
}

#[test]
fn every_shipped_scenario_parses() {
    let mut names: Vec<_> = std::fs::read_dir(SCENARIOS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 3);
    for path in names {
        let scenario = Scenario::load(&path, 0).unwrap_or_else(|e| panic!("{e}"));
        assert!(!scenario.is_empty(), "{}", path.display());
    }
}

#[test]
fn malformed_files_name_file_line_column_and_what_was_expected() {
    let cases = [
        ("[[stub]\n", "1:"),
        ("[[stub]]\nmethod = 5\n", "2:10: "),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nreply = { mesage = { message = \"x\" } }\n", "3:11: unknown field `mesage`"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nreply = { message = { mesage = \"x\" } }\n", "3:21: expected a pb.HelloReply message: unknown field `mesage`"),
        ("[[stub]]\nmethod = \"/x.Y/Z\"\nreply = { message = { a = 1 } }\n", "3:21: message fields need a built-in method"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.reply]\nstatus = { code = \"UNAVAILABLe\" }\n", "4:10: expected a status code name"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.reply]\nreset = \"BOOM\"\n", "4:9: expected an HTTP/2 error code"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.match]\nmetadata_regex = { a = \"(\" }\n[stub.reply]\n", "4:24: expected a regular expression"),
        ("[[stub]]\nmethod = \"pb.Greeter\"\n[stub.reply]\n", "2:10: expected a method path"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.reply]\nheaders_bin = { \"k-bin\" = \"!!\" }\n", "4:27: expected base64"),
    ];
    for (text, expected) in cases {
        let err = Scenario::parse("bad.toml", text, 0)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.toml:"), "{err}");
        assert!(
            err["bad.toml:".len()..].starts_with(expected) || err.contains(expected),
            "{text:?}\n  gave {err}\n  wanted {expected}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_scenario_replays_sequences_and_seeded_chance_in_memory() {
    let _w = watchdog("a_scenario_replays_sequences_and_seeded_chance_in_memory");
    let text = r#"
        [[stub]]
        method = "/pb.Greeter/SayHello"
        [stub.match]
        metadata = { "x-case" = "sequence" }
        [stub.reply]
        sequence = [
          { status = { code = 14 }, delay_ms = 10 },
          { message = { message = "second" } },
        ]

        [[stub]]
        method = "/pb.Greeter/SayHello"
        [stub.match]
        metadata = { "x-case" = "chance" }
        [stub.reply.chance]
        probability = 0.5
        hit = { status = { code = "UNAVAILABLE" } }
        miss = { message = { message = "lucky" } }
    "#;
    let run = |seed: u64| async move {
        let server = FakeServer::in_memory();
        Scenario::parse("inline.toml", text, seed)
            .unwrap()
            .mount(&server);
        let mut client = greeter(&server);
        let call = |case: &str| {
            let mut r = Request::new(hello("Ada"));
            r.metadata_mut().insert("x-case", case.parse().unwrap());
            r
        };
        let start = Instant::now();
        let first = client.say_hello(call("sequence")).await.unwrap_err().code();
        assert_eq!(
            (first, start.elapsed()),
            (Code::Unavailable, Duration::from_millis(10))
        );
        assert_eq!(
            client
                .say_hello(call("sequence"))
                .await
                .unwrap()
                .into_inner()
                .message,
            "second"
        );
        let mut codes = Vec::new();
        for _ in 0..40 {
            codes.push(
                client
                    .say_hello(call("chance"))
                    .await
                    .map_or_else(|s| s.code(), |_| Code::Ok),
            );
        }
        codes
    };
    let a = run(3).await;
    assert_eq!(a, run(3).await);
    assert_ne!(a, run(4).await);
}

#[tokio::test]
async fn serve_loads_the_shipped_scenarios() {
    let _w = watchdog("serve_loads_the_shipped_scenarios");
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
    let _w = watchdog("serve_rejects_a_malformed_scenario_with_exit_code_2");
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
