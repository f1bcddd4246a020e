//! Scenario tables follow the protobuf JSON mapping for a proto loaded at run time
//! (`tests/proto/wkt.proto`, added to the [`Schema`] as an encoded descriptor set): the
//! well-known types in their JSON forms, 64-bit integers as numbers or strings, enums by
//! name or number, bytes as base64, maps of messages. The reply is read back with prost
//! types generated from the same proto.

use std::collections::HashMap;

use grpc_chaos::fake::FakeServer;
use grpc_chaos::scenario::Scenario;
use grpc_chaos::schema::Schema;
use prost_types::value::Kind;

#[allow(clippy::all, missing_docs)]
mod wkt {
    tonic::include_proto!("wkt.v1");
}

fn schema() -> Schema {
    let mut schema = Schema::builtin();
    schema
        .add_descriptor_set(include_bytes!(concat!(env!("OUT_DIR"), "/wkt.bin")))
        .unwrap();
    schema
}

#[grpc_chaos::test]
async fn well_known_types_and_scalars_take_their_json_forms() {
    let text = r#"
        [[stub]]
        method = "/wkt.v1.Kinds/Echo"
        [stub.reply.message]
        timeout = "1.5s"
        at = "2026-12-01T10:00:00.25Z"
        labels = { team = "payments", replicas = 3, canary = true }
        anything = ["a", 1]
        maybe_name = "Ada"
        maybeCount = "9007199254740993"
        extra = { "@type" = "type.googleapis.com/wkt.v1.Note", text = "inside" }
        mask = "timeout,maybeName"
        big = -9007199254740993
        bigger = "18446744073709551615"
        color = "GREEN"
        colors = ["RED", 2]
        notes = { a = { text = "first" } }
        blob = "3q2+7w=="
        ratio = "NaN"
    "#;
    let server = FakeServer::in_memory();
    Scenario::parse_with(&schema(), "wkt.toml", text, 0)
        .unwrap_or_else(|e| panic!("{e}"))
        .mount(&server);
    let mut client = wkt::kinds_client::KindsClient::new(server.channel());
    let got = client
        .echo(wkt::Everything::default())
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        got.timeout,
        Some(prost_types::Duration {
            seconds: 1,
            nanos: 500_000_000
        })
    );
    assert_eq!(
        got.at,
        Some(prost_types::Timestamp {
            seconds: 1_796_119_200,
            nanos: 250_000_000
        })
    );
    let labels = got.labels.unwrap().fields;
    assert_eq!(
        labels["team"].kind,
        Some(Kind::StringValue("payments".into()))
    );
    assert_eq!(labels["replicas"].kind, Some(Kind::NumberValue(3.0)));
    assert_eq!(labels["canary"].kind, Some(Kind::BoolValue(true)));
    let Some(Kind::ListValue(list)) = got.anything.unwrap().kind else {
        panic!("a list");
    };
    assert_eq!(list.values.len(), 2);
    assert_eq!(got.maybe_name.as_deref(), Some("Ada"));
    assert_eq!(got.maybe_count, Some(9_007_199_254_740_993));
    let extra = got.extra.unwrap();
    assert_eq!(extra.type_url, "type.googleapis.com/wkt.v1.Note");
    assert_eq!(
        <wkt::Note as prost::Message>::decode(extra.value.as_slice())
            .unwrap()
            .text,
        "inside"
    );
    assert_eq!(got.mask.unwrap().paths, ["timeout", "maybe_name"]);
    assert_eq!(got.big, -9_007_199_254_740_993);
    assert_eq!(got.bigger, u64::MAX);
    assert_eq!(got.color, wkt::Color::Green as i32);
    assert_eq!(
        got.colors,
        [wkt::Color::Red as i32, wkt::Color::Green as i32]
    );
    let notes: HashMap<String, String> = got.notes.into_iter().map(|(k, v)| (k, v.text)).collect();
    assert_eq!(notes["a"], "first");
    assert_eq!(got.blob, [0xde, 0xad, 0xbe, 0xef]);
    assert!(got.ratio.is_nan());
}

#[test]
fn a_mistake_inside_a_map_of_messages_points_at_its_key() {
    let text = "[[stub]]\nmethod = \"/wkt.v1.Kinds/Echo\"\n[stub.reply.message]\nnotes = { a = { txt = \"x\" } }\n";
    let err = Scenario::parse_with(&schema(), "m.toml", text, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "m.toml:4:17: wkt.v1.Note has no field `txt`; did you mean `text`?"
    );
    let text =
        "[[stub]]\nmethod = \"/wkt.v1.Kinds/Echo\"\n[stub.reply.message]\ntimeout = \"soon\"\n";
    let err = Scenario::parse_with(&schema(), "m.toml", text, 0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("m.toml:4:11: expected a wkt.v1.Everything message"),
        "{err}"
    );
}
