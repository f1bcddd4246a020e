//! Scenario files: parsed into stubs (in memory, paused time) and rejected with
//! file:line:col when malformed. `grpc-chaos serve --scenario` is tested in `cli/tests`.

use std::time::Duration;

use grpc_chaos::fake::FakeServer;
use grpc_chaos::scenario::Scenario;
use tokio::time::Instant;
use tonic::{Code, Request};

use crate::support::*;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios");

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
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nreply = { message = { mesage = \"x\" } }\n", "3:23: pb.HelloReply has no field `mesage`; did you mean `message`?"),
        ("[[stub]]\nmethod = \"/x.Y/Z\"\nreply = { message = { a = 1 } }\n", "2:10: no loaded proto defines the method \"/x.Y/Z\"; the closest is"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHelo\"\n[stub.reply]\n", "2:10: no loaded proto defines the method \"/pb.Greeter/SayHelo\"; the closest is \"/pb.Greeter/SayHello\""),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nexpect = \"3..1\"\n[stub.reply]\n", "3:10: expected a call count"),
        ("[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\nreply = { message = { message = 5 } }\n", "3:33: expected a pb.HelloReply message: invalid type: integer `5`, expected a string"),
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

#[grpc_chaos::test]
async fn a_scenario_replays_sequences_and_seeded_chance_in_memory() {
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

#[grpc_chaos::test]
async fn raw_bytes_take_message_base64_on_the_match_and_reply_side_for_any_method() {
    use crate::inventory::inventory_client::InventoryClient;
    use crate::inventory::{GetItemRequest, Item, StockLevel};
    use grpc_chaos::metadata::encode_binary;
    use prost::Message;

    fn b64(message: &impl Message) -> String {
        encode_binary(&message.encode_to_vec())
    }
    let item = Item {
        sku: "A-1".into(),
        title: "Anvil".into(),
        price_cents: 4999,
    };
    let level = |available| StockLevel {
        sku: "A-1".into(),
        available,
    };
    let request = b64(&GetItemRequest { sku: "A-1".into() });
    let (item_b64, three, two) = (b64(&item), b64(&level(3)), b64(&level(2)));
    // `message_base64` at the match side, at the reply level and in `messages`; the last
    // entry uses `base64`, its first spelling, which is still read.
    let text = format!(
        r#"
        [[stub]]
        method = "/shop.inventory.v1.Inventory/GetItem"
        priority = 1
        match = {{ message_base64 = "{request}" }}
        reply = {{ message_base64 = "{item_b64}" }}

        [[stub]]
        method = "/shop.inventory.v1.Inventory/GetItem"
        priority = 9
        reply = {{ status = {{ code = "NOT_FOUND" }} }}

        [[stub]]
        method = "/shop.inventory.v1.Inventory/WatchStock"
        [stub.reply]
        messages = [
          {{ delay_ms = 1000, message_base64 = "{three}" }},
          {{ delay_ms = 1000, base64 = "{two}" }},
        ]
    "#
    );
    let server = FakeServer::in_memory();
    Scenario::parse("inventory.toml", &text, 0)
        .unwrap()
        .mount(&server);
    let mut client = InventoryClient::new(server.channel());
    let t0 = Instant::now();

    let got = client.get_item(GetItemRequest { sku: "A-1".into() }).await;
    assert_eq!(got.unwrap().into_inner(), item);
    let other = client.get_item(GetItemRequest { sku: "B-2".into() }).await;
    assert_eq!(other.unwrap_err().code(), Code::NotFound);
    let mut stream = client
        .watch_stock(GetItemRequest { sku: "A-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap(), Some(level(3)));
    assert_eq!(stream.message().await.unwrap(), Some(level(2)));
    assert_eq!(stream.message().await.unwrap(), None);
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
}

#[test]
fn a_message_is_written_one_way_at_a_time() {
    let cases = [
        "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.reply]\nmessage = { message = \"x\" }\nmessage_base64 = \"AAEC\"\n",
        "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.match]\nmessage = { name = \"x\" }\nmessage_base64 = \"AAEC\"\n[stub.reply]\n",
        "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.reply]\nmessages = [{ delay_ms = 1 }]\n",
    ];
    for text in cases {
        let err = Scenario::parse("bad.toml", text, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected one of `message` (a table of fields), `message_contains`"),
            "{text:?} gave {err}"
        );
    }
}

#[grpc_chaos::test]
async fn message_equals_the_whole_request_and_message_contains_only_the_listed_fields() {
    use grpc_chaos::pb::grpc::testing::{
        test_service_client::TestServiceClient, Payload, SimpleRequest,
    };
    let text = r#"
        [[stub]]
        name = "exact"
        method = "/grpc.testing.TestService/UnaryCall"
        match = { message = { response_size = 5 } }
        reply = { message = { username = "exact" } }

        [[stub]]
        name = "listed"
        method = "/grpc.testing.TestService/UnaryCall"
        [stub.match.message_contains]
        responseSize = 6                         # the JSON name works too
        payload = { body = "AAE" }               # a nested message: only its listed field
        [stub.reply]
        message = { username = "listed", payload = { type = "COMPRESSABLE", body = "AQID" } }
    "#;
    let server = FakeServer::in_memory();
    Scenario::parse("m.toml", text, 0).unwrap().mount(&server);
    let mut client = TestServiceClient::new(server.channel());
    let request = |size: i32, fill: bool, body: Vec<u8>| SimpleRequest {
        response_size: size,
        fill_username: fill,
        payload: Some(Payload { r#type: 0, body }),
        ..Default::default()
    };

    // Equality: the same size alone matches; with any other field set it does not.
    let exact = SimpleRequest {
        response_size: 5,
        ..Default::default()
    };
    let reply = client.unary_call(exact).await.unwrap().into_inner();
    assert_eq!(reply.username, "exact");
    let status = client
        .unary_call(request(5, true, vec![]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status
            .message()
            .contains(r#"first message == grpc.testing.SimpleRequest {"responseSize":5}"#),
        "{status:?}"
    );
    assert!(
        status.message().contains(r#"received {"responseSize":5,"#),
        "{status:?}"
    );

    // Contains: the listed fields hold, whatever the others are.
    let reply = client
        .unary_call(request(6, true, vec![0, 1]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.username, "listed");
    assert_eq!(reply.payload.unwrap().body, vec![1, 2, 3]);
    let status = client
        .unary_call(request(6, true, vec![9]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status.message().contains("first message contains"),
        "{status:?}"
    );
}
