//! The programmable fake gRPC server.
//!
//! - [`FakeServer`] starts on TCP 127.0.0.1 or in memory and serves any method path.
//! - [`Stub`]s pair matchers ([`method`], [`metadata`], [`message`], [`deadline_at_most`], …)
//!   with a [`Reply`]: delays, messages, headers, trailers, statuses, hangs, resets,
//!   sequences and seeded chance.
//! - The journal ([`FakeServer::received_calls`]) records every call as the server saw it:
//!   metadata, `grpc-timeout`, arrival instant, messages both ways, and how it ended,
//!   including when the client went away.
//!
//! ```
//! use std::time::Duration;
//! use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
//! use grpc_chaos::pb::{greeter_client::GreeterClient, HelloRequest};
//! use tokio::time::Instant;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let server = FakeServer::in_memory();
//! Stub::given(method("/pb.Greeter/SayHello")).respond_with(Reply::hang()).mount(&server);
//!
//! let start = Instant::now();
//! let mut request = tonic::Request::new(HelloRequest { name: "Ada".into() });
//! request.set_timeout(Duration::from_millis(300));
//! let status = GreeterClient::new(server.channel()).say_hello(request).await.unwrap_err();
//! assert_eq!(status.code(), tonic::Code::Cancelled); // tonic's own client says CANCELLED
//!
//! let call = &server.wait_for_ended_calls(1).await[0];
//! assert_eq!(call.grpc_timeout.as_deref(), Some("300000u"));
//! assert_eq!(call.cancelled_at(), Some(start + Duration::from_millis(300)));
//! # }
//! ```

mod builder;
mod call;
mod codec;
pub mod faults;
mod handler;
mod hygiene;
pub(crate) mod journal;
mod matchers;
mod reason;
mod registry;
mod reply;
mod request;
mod script;
mod server;
pub(crate) mod services;
mod state;
mod stub;
mod transport;
mod wait;

pub use builder::FakeServerBuilder;
pub use handler::CallHandle;
pub use journal::{CallEnding, DecodeMessageError, ReceivedCall};
pub(crate) use matchers::NO_MESSAGE;
pub use matchers::{
    any, custom, deadline_absent, deadline_at_most, deadline_present, message, message_eq,
    metadata, metadata_absent, metadata_bin, metadata_exists, metadata_regex, method, path_regex,
    service, try_metadata_regex, try_path_regex, Match,
};
pub use reason::Reason;
pub use reply::{Reply, INTEROP_ECHO_INITIAL, INTEROP_ECHO_TRAILING};
pub use request::CallRequest;
pub use server::FakeServer;
pub use stub::{Stub, StubBuilder, StubGuard, Times, VerificationError};
pub use wait::{WaitTimeout, DEFAULT_WAIT_LIMIT};
