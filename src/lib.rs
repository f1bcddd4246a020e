#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # grpc-chaos
//!
//! Makes gRPC deadlines, metadata and failures testable with tonic: a programmable fake
//! gRPC server ([`fake`]) that injects latency, errors, cancellation, headers and
//! trailers and records every call exactly as the server saw it, plus the pieces real
//! services need and tonic lacks ([`deadline`]).
//!
//! ```
//! use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
//! use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = FakeServer::in_memory();
//! Stub::given(method("/pb.Greeter/SayHello"))
//!     .respond_with(Reply::message(&HelloReply { message: "Hello, Ada!".into() }).trailer("x-cost", "1"))
//!     .expect(1)
//!     .mount(&server);
//!
//! let reply = GreeterClient::new(server.channel())
//!     .say_hello(HelloRequest { name: "Ada".into() })
//!     .await
//!     .unwrap();
//! // tonic merges a unary reply's trailers into its metadata.
//! assert_eq!(reply.metadata().get("x-cost").unwrap(), "1");
//! # }
//! ```

pub mod builtin;
pub mod cancel;
pub mod cli;
pub mod deadline;
pub mod fake;
pub mod intercept;
pub mod metadata;
pub mod pb;
pub mod retry;
pub mod scenario;
#[cfg(feature = "strategy")]
pub mod strategy;
pub mod watchdog;

/// Compiles the README's Rust examples as doc tests, so they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
