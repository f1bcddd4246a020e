//! A recorded call written as a scenario stub: what `grpc-chaos proxy --record` appends
//! and `grpc-chaos serve --scenario` replays.

use bytes::Bytes;
use http::HeaderMap;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use toml::{Table, Value};

use crate::metadata::encode_binary;
use crate::proxy::RecordedCall;
use crate::schema::Schema;

/// Headers no recording keeps, whatever `--redact` says.
const ALWAYS_REDACTED: [&str; 3] = ["authorization", "cookie", "set-cookie"];

/// `[[stub]]` text for one recorded call; `redact` names more metadata keys to leave out.
/// Messages are tables when `schema` knows the method's types, base64 otherwise.
pub(super) fn stub_text(call: &RecordedCall, redact: &[String], schema: Option<&Schema>) -> String {
    let types = schema.and_then(|s| s.method(&call.method));
    let (input, output) = types.map(|m| (m.input(), m.output())).unzip();
    let mut stub = Table::new();
    stub.insert("method".into(), call.method.clone().into());
    // Each recording answers once, so that calls replay in the order they were made.
    stub.insert("up_to".into(), Value::Integer(1));
    if let Some(request) = &call.request {
        let mut matches = Table::new();
        put_message(&mut matches, request, input.as_ref());
        stub.insert("match".into(), matches.into());
    }
    let mut reply = Table::new();
    reply.insert("delay_ms".into(), millis(call.headers_after));
    let kept = |k: &str| {
        !ALWAYS_REDACTED.contains(&k) && !redact.iter().any(|r| r.eq_ignore_ascii_case(k))
    };
    let (text, binary) = metadata(&call.headers, &kept);
    insert_nonempty(&mut reply, "headers", text);
    insert_nonempty(&mut reply, "headers_bin", binary);
    let messages: Vec<Value> = call
        .messages
        .iter()
        .map(|(after, bytes)| {
            let mut m = Table::new();
            m.insert("delay_ms".into(), millis(*after));
            put_message(&mut m, bytes, output.as_ref());
            m.into()
        })
        .collect();
    if !messages.is_empty() {
        reply.insert("messages".into(), messages.into());
    }
    let (text, binary) = metadata(&call.trailers, &kept);
    insert_nonempty(&mut reply, "trailers", text);
    insert_nonempty(&mut reply, "trailers_bin", binary);
    if let Some((code, message)) = &call.status {
        let mut status = Table::new();
        status.insert("code".into(), Value::Integer(i64::from(*code)));
        if !message.is_empty() {
            status.insert("message".into(), message.clone().into());
        }
        reply.insert("status".into(), status.into());
    }
    stub.insert("reply".into(), reply.into());
    let mut file = Table::new();
    file.insert("stub".into(), Value::Array(vec![stub.into()]));
    // A table of strings, integers and tables always serializes.
    toml::to_string(&file).unwrap_or_default()
}

/// `message = {…}` in the protobuf JSON mapping when the type is known and the message
/// decodes (and has no JSON null, which TOML cannot write); `message_base64` otherwise.
fn put_message(table: &mut Table, bytes: &Bytes, desc: Option<&MessageDescriptor>) {
    let fields = desc
        .and_then(|d| DynamicMessage::decode(d.clone(), bytes.clone()).ok())
        .and_then(|m| serde_json::to_value(&m).ok())
        .and_then(toml_value);
    match fields {
        Some(fields) => table.insert("message".into(), fields),
        None => table.insert("message_base64".into(), encode_binary(bytes).into()),
    };
}

/// A JSON value as TOML; `None` when it holds a null.
fn toml_value(json: serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match json {
        J::Null => return None,
        J::Bool(b) => Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            // u64 past i64 and floats: the JSON mapping reads either from a string or a float.
            None if n.is_u64() => Value::String(n.to_string()),
            None => Value::Float(n.as_f64()?),
        },
        J::String(s) => Value::String(s),
        J::Array(items) => Value::Array(items.into_iter().map(toml_value).collect::<Option<_>>()?),
        J::Object(fields) => Value::Table(
            fields
                .into_iter()
                .map(|(k, v)| Some((k, toml_value(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

fn millis(d: std::time::Duration) -> Value {
    Value::Integer(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn insert_nonempty(table: &mut Table, key: &str, value: Table) {
    if !value.is_empty() {
        table.insert(key.into(), value.into());
    }
}

/// Text and `-bin` metadata (the latter as base64 of the decoded bytes), minus the
/// redacted keys.
fn metadata(headers: &HeaderMap, kept: &dyn Fn(&str) -> bool) -> (Table, Table) {
    let (mut text, mut binary) = (Table::new(), Table::new());
    for (name, value) in headers {
        let key = name.as_str();
        if !kept(key) {
            continue;
        }
        if key.ends_with("-bin") {
            let bytes = crate::metadata::decode_base64(value.as_bytes()).unwrap_or_default();
            binary.insert(key.into(), encode_binary(&bytes).into());
        } else if let Ok(v) = value.to_str() {
            text.insert(key.into(), v.into());
        }
    }
    (text, binary)
}
