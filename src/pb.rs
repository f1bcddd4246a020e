//! Protobuf types and tonic stubs generated from `proto/` (with protox: no `protoc`).
//!
//! - `pb`: the walkthrough's Greeter, in all four call shapes.
//! - [`grpc::testing`]: the gRPC interop suite's `TestService`, wire-compatible with it.
//!
//! ```
//! use grpc_chaos::pb::{HelloRequest, grpc::testing::SimpleRequest};
//! let hello = HelloRequest { name: "Ada".into() };
//! let simple = SimpleRequest { response_size: 314_159, ..Default::default() };
//! ```

#![allow(missing_docs, clippy::all)]

use crate::method::MethodShape;

tonic::include_proto!("pb");

/// One method of the built-in protos: its path, message types and call shape, written by
/// `build.rs` from the same descriptors the code above is generated from.
///
/// ```
/// let m = grpc_chaos::pb::find("/grpc.testing.TestService/StreamingInputCall").unwrap();
/// assert_eq!(m.request, "grpc.testing.StreamingInputCallRequest");
/// assert!(m.client_streaming && !m.server_streaming);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtoMethod {
    /// `/package.Service/Method`.
    pub path: &'static str,
    /// The request message's full name (`pb.HelloRequest`).
    pub request: &'static str,
    /// The response message's full name.
    pub response: &'static str,
    /// Whether the client streams.
    pub client_streaming: bool,
    /// Whether the server streams.
    pub server_streaming: bool,
}

impl ProtoMethod {
    /// Its call shape, for logs ([`LoggingLayer::shapes`](crate::intercept::LoggingLayer::shapes),
    /// [`FakeServerBuilder::shapes`](crate::fake::FakeServerBuilder::shapes)).
    pub fn shape(&self) -> MethodShape {
        MethodShape::new(self.path)
            .client_streaming(self.client_streaming)
            .server_streaming(self.server_streaming)
    }
}

include!(concat!(env!("OUT_DIR"), "/methods.rs"));

/// The built-in method at `path`, if it is one.
///
/// ```
/// assert!(grpc_chaos::pb::find("/pb.Greeter/SayHello").is_some());
/// assert!(grpc_chaos::pb::find("/shop.Inventory/Get").is_none());
/// ```
pub fn find(path: &str) -> Option<&'static ProtoMethod> {
    METHODS.iter().find(|m| m.path == path)
}

/// The call shapes of every built-in method.
///
/// ```
/// assert_eq!(grpc_chaos::pb::shapes().count(), grpc_chaos::pb::METHODS.len());
/// ```
pub fn shapes() -> impl Iterator<Item = MethodShape> {
    METHODS.iter().map(ProtoMethod::shape)
}

/// The `grpc` package tree.
pub mod grpc {
    /// `grpc.testing`: the interop suite's messages and services.
    pub mod testing {
        tonic::include_proto!("grpc.testing");
    }
}
