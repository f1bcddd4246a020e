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

tonic::include_proto!("pb");

/// The `grpc` package tree.
pub mod grpc {
    /// `grpc.testing`: the interop suite's messages and services.
    pub mod testing {
        tonic::include_proto!("grpc.testing");
    }
}
