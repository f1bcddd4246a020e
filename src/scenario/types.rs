//! The built-in message types scenario files may write as TOML tables, and the
//! request and response types of the built-in methods.

use serde::de::DeserializeOwned;

use crate::pb;
use crate::pb::grpc::testing as interop;

/// Encodes a TOML table as the named built-in message type.
pub(crate) fn encode(type_name: &str, fields: toml::Value) -> Result<Vec<u8>, String> {
    fn enc<T: DeserializeOwned + prost::Message>(fields: toml::Value) -> Result<Vec<u8>, String> {
        fields
            .try_into::<T>()
            .map(|m| m.encode_to_vec())
            .map_err(|e| e.message().to_string())
    }
    match type_name {
        "pb.HelloRequest" => enc::<pb::HelloRequest>(fields),
        "pb.HelloReply" => enc::<pb::HelloReply>(fields),
        "grpc.testing.Empty" => enc::<interop::Empty>(fields),
        "grpc.testing.SimpleRequest" => enc::<interop::SimpleRequest>(fields),
        "grpc.testing.SimpleResponse" => enc::<interop::SimpleResponse>(fields),
        "grpc.testing.StreamingInputCallRequest" => {
            enc::<interop::StreamingInputCallRequest>(fields)
        }
        "grpc.testing.StreamingInputCallResponse" => {
            enc::<interop::StreamingInputCallResponse>(fields)
        }
        "grpc.testing.StreamingOutputCallRequest" => {
            enc::<interop::StreamingOutputCallRequest>(fields)
        }
        "grpc.testing.StreamingOutputCallResponse" => {
            enc::<interop::StreamingOutputCallResponse>(fields)
        }
        other => Err(format!("{other} is not a built-in message type")),
    }
}

/// The (request, response) message types of a built-in method.
pub(crate) fn method_types(path: &str) -> Option<(&'static str, &'static str)> {
    pb::find(path).map(|m| (m.request, m.response))
}

/// Whether two encodings are the same message of the named built-in type (decoded and
/// compared field by field, so field order and default values do not matter).
pub(crate) fn same_message(type_name: &str, a: &[u8], b: &[u8]) -> bool {
    fn eq<T: prost::Message + Default + PartialEq>(a: &[u8], b: &[u8]) -> bool {
        matches!((T::decode(a), T::decode(b)), (Ok(x), Ok(y)) if x == y)
    }
    match type_name {
        "pb.HelloRequest" => eq::<pb::HelloRequest>(a, b),
        "pb.HelloReply" => eq::<pb::HelloReply>(a, b),
        "grpc.testing.Empty" => eq::<interop::Empty>(a, b),
        "grpc.testing.SimpleRequest" => eq::<interop::SimpleRequest>(a, b),
        "grpc.testing.SimpleResponse" => eq::<interop::SimpleResponse>(a, b),
        "grpc.testing.StreamingInputCallRequest" => eq::<interop::StreamingInputCallRequest>(a, b),
        "grpc.testing.StreamingInputCallResponse" => {
            eq::<interop::StreamingInputCallResponse>(a, b)
        }
        "grpc.testing.StreamingOutputCallRequest" => {
            eq::<interop::StreamingOutputCallRequest>(a, b)
        }
        "grpc.testing.StreamingOutputCallResponse" => {
            eq::<interop::StreamingOutputCallResponse>(a, b)
        }
        _ => a == b,
    }
}
