#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # grpc-chaos
//!
//! Makes gRPC deadlines, metadata and failures testable with tonic: a programmable fake
//! gRPC server ([`fake`]) that injects latency, errors, cancellation, headers and
//! trailers and records every call exactly as the server saw it.
//!
//! It is built on [`tonic_layers`], the production layers tonic lacks, and re-exports
//! them under the same names ([`deadline`], [`metadata`], [`retry`], [`cancel`],
//! [`intercept`]), so a test can write `grpc_chaos::deadline::…` for what a service
//! imports as `tonic_layers::deadline::…`: they are the same items.
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

/// The production layers crate itself, for paths that name it.
pub use tonic_layers;
pub use tonic_layers::{
    cancel, connection, deadline, framing, intercept, metadata, method, retry, rng,
};

pub mod bench;
pub mod memory;
pub mod testing;

/// Makes an `async fn` a test that cannot hang: paused time, a virtual-time limit and a
/// wall-clock watchdog, both named after the test. See [`testing`].
pub use grpc_chaos_macros::test;

pub mod fake;
pub mod proxy;

pub mod pb;
pub mod schema;

pub mod builtin;
pub mod scenario;
#[cfg(feature = "strategy")]
pub mod strategy;

/// Compiles the README's Rust examples as doc tests, so they cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
