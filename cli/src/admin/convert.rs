//! A journal entry ([`ReceivedCall`], or the proxy's [`ProxiedCall`]) as the admin API
//! sends it: offsets from server start, metadata as entries, and messages with their
//! JSON when the types are loaded.

use bytes::Bytes;
use grpc_chaos::fake::{CallEnding, ReceivedCall};
use grpc_chaos::proxy::ProxiedCall;
use grpc_chaos::schema::Schema;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tokio::time::Instant;
use tonic::metadata::KeyAndValueRef;

use super::pb;
use super::SESSION_HEADER;

/// A duration as the proto's `google.protobuf.Duration`.
fn duration(d: std::time::Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(d).ok()
}

fn offset(origin: Instant, at: Instant) -> Option<prost_types::Duration> {
    duration(at.saturating_duration_since(origin))
}

pub(super) fn call(call: &ReceivedCall, origin: Instant, schema: &Schema) -> pb::Call {
    let types = schema.method(&call.method);
    let (timeout, timeout_error) = match &call.timeout {
        Some(Ok(t)) => (duration(*t), String::new()),
        Some(Err(e)) => (None, e.to_string()),
        None => (None, String::new()),
    };
    pb::Call {
        id: call.id as u64,
        method: call.method.clone(),
        metadata: call.metadata.iter().map(entry).collect(),
        grpc_timeout: call.grpc_timeout.clone().unwrap_or_default(),
        timeout,
        timeout_error,
        arrived_at: offset(origin, call.arrived_at),
        deadline: call.deadline.and_then(|d| offset(origin, d)),
        requests: messages(
            &call.request_messages,
            &call.request_sizes,
            types.as_ref().map(|m| m.input()),
        ),
        responses: messages(
            &call.response_messages,
            &call.response_sizes,
            types.as_ref().map(|m| m.output()),
        ),
        stub: call.stub.clone().unwrap_or_default(),
        ending: Some(ending(&call.ending, origin)),
        session: call.header(SESSION_HEADER).unwrap_or_default().to_string(),
        proxied: None,
    }
}

/// A call through the proxy: the call as the client saw it, and what the proxy did.
pub(super) fn proxied_call(call: &ProxiedCall, origin: Instant, schema: &Schema) -> pb::Call {
    let (rule, fault) = call
        .fault
        .as_ref()
        .map(|f| (f.rule.clone(), f.fault.clone()))
        .unwrap_or_default();
    let (upstream_answered, upstream_code, upstream_message) = match &call.upstream_status {
        Some((code, message)) => (true, *code as i32, message.clone()),
        None => (false, 0, String::new()),
    };
    pb::Call {
        proxied: Some(pb::Proxied {
            rule,
            fault,
            forwarded_at: call.forwarded_at.and_then(|at| offset(origin, at)),
            upstream_time: duration(call.upstream_time()),
            injected_time: duration(call.injected_time),
            upstream_answered,
            upstream_code,
            upstream_message,
        }),
        ..self::call(&call.call, origin, schema)
    }
}

fn entry(kv: KeyAndValueRef<'_>) -> pb::MetadataEntry {
    match kv {
        KeyAndValueRef::Ascii(key, value) => pb::MetadataEntry {
            key: key.to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            binary_value: Vec::new(),
        },
        KeyAndValueRef::Binary(key, value) => pb::MetadataEntry {
            key: key.to_string(),
            value: String::new(),
            binary_value: value.to_bytes().map(|b| b.to_vec()).unwrap_or_default(),
        },
    }
}

fn messages(kept: &[Bytes], sizes: &[usize], desc: Option<MessageDescriptor>) -> Vec<pb::Message> {
    kept.iter()
        .enumerate()
        .map(|(i, raw)| {
            let size = sizes.get(i).copied().unwrap_or(raw.len());
            let truncated = raw.len() < size;
            let json = match &desc {
                Some(desc) if !truncated => DynamicMessage::decode(desc.clone(), raw.clone())
                    .ok()
                    .and_then(|m| serde_json::to_string(&m).ok())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            pb::Message {
                raw: raw.to_vec(),
                size: size as u64,
                truncated,
                json,
            }
        })
        .collect()
}

fn ending(ending: &CallEnding, origin: Instant) -> pb::Ending {
    use pb::ending::Kind;
    let mut out = pb::Ending {
        kind: Kind::InProgress as i32,
        at: ending.at().and_then(|at| offset(origin, at)),
        ..Default::default()
    };
    match ending {
        CallEnding::Status { code, message, .. } => {
            out.kind = Kind::Status as i32;
            out.code = *code as i32;
            out.message = message.clone();
        }
        CallEnding::Cancelled {
            requests_received,
            responses_sent,
            ..
        } => {
            out.kind = Kind::Cancelled as i32;
            out.requests_received = *requests_received as u64;
            out.responses_sent = *responses_sent as u64;
        }
        CallEnding::Reset { reason, .. } => {
            out.kind = Kind::Reset as i32;
            out.reset_reason = reason.to_string();
        }
        CallEnding::NoStatus { .. } => out.kind = Kind::NoStatus as i32,
        _ => {}
    }
    out
}
