//! Interceptors as tower layers: trace ids, logging and auth, with the tonic
//! `Interceptor` forms where they fit.
//!
//! | layer | side | what it does |
//! |---|---|---|
//! | [`SetTraceIdLayer`] | server | reads `trace-id` or generates one; [`current_trace_id`] in the handler's task, [`TraceId`] in the extensions, a `tracing` span around the call |
//! | [`PropagateTraceIdLayer`] | client | adds the current trace id to outbound calls |
//! | [`LoggingLayer`] | both | logs the start (method, shape, redacted metadata), every message each way (index, size, optionally decoded), and the end (status, duration) |
//! | [`AuthLayer`] | server | bearer token → [`TokenValidator`] → identity in the extensions, or UNAUTHENTICATED / PERMISSION_DENIED |
//!
//! Interceptor forms: [`auth_interceptor`], [`trace_id_interceptor`] (server, extensions
//! only) and [`propagate_trace_id_interceptor`] (client). A tonic interceptor sees only
//! the request metadata and extensions: it cannot log messages or the end of a call, and
//! on a server it does not see the method path. Those need the layers.
//!
//! # Chaining: which order, and why
//!
//! In `tower::ServiceBuilder` the first layer is the outermost: it sees the request first
//! and the response last. On a server, use:
//!
//! 1. **[`SetTraceIdLayer`] first**: it puts the id (given or generated) in the request
//!    extensions before the other layers run, so the logging layer writes it on every
//!    line of the call (auth refusals included), and the handler reads it.
//! 2. **[`LoggingLayer`]** next: it logs every call that arrives, with its (redacted)
//!    metadata, and the status each one ends with, UNAUTHENTICATED refusals included.
//! 3. **[`AuthLayer`]** inside the logging: a refused call's body is never read, so the
//!    logging layer, which logs messages as the handler reads them, never logs (or
//!    decodes) the messages of a caller that did not authenticate.
//! 4. **[`EnforceDeadlineLayer`](crate::deadline::EnforceDeadlineLayer)** innermost, next to the
//!    handler: its DEADLINE_EXCEEDED ends the call inside the logging layer, so the log
//!    shows status 4 (outside it, the log would only see the call dropped), and
//!    unauthenticated calls are refused before any deadline work.
//!
//! On a client channel, [`PropagateTraceIdLayer`] and
//! [`PropagateDeadlineLayer`](crate::deadline::PropagateDeadlineLayer) add headers, so put
//! [`LoggingLayer::client`] after them (closer to the wire): its start line shows the
//! `trace-id` and `grpc-timeout` actually sent. A deadline that passes then shows in the
//! log as a call dropped before its status.
//!
//! ```
//! # use grpc_chaos::pb::{HelloReply, HelloRequest};
//! use tonic_layers::deadline::{EnforceDeadlineLayer, PropagateDeadlineLayer};
//! use tonic_layers::intercept::{
//!     AuthLayer, Identity, LoggingLayer, PropagateTraceIdLayer, StaticTokens, SetTraceIdLayer,
//! };
//! use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
//! use tonic::{Request, Response, Status};
//!
//! struct MyGreeter;
//!
//! #[tonic::async_trait]
//! impl Greeter for MyGreeter {
//!     async fn say_hello(&self, request: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
//!         let who = request.extensions().get::<Identity>().map(|i| i.subject.clone());
//!         Ok(Response::new(HelloReply { message: format!("Hello, {}!", who.unwrap_or_default()) }))
//!     }
//! #   type SayHelloStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
//! #   async fn say_hello_stream(&self, _: Request<HelloRequest>) -> Result<Response<Self::SayHelloStreamStream>, Status> { Err(Status::unimplemented("")) }
//! #   async fn say_hello_client_stream(&self, _: Request<tonic::Streaming<HelloRequest>>) -> Result<Response<HelloReply>, Status> { Err(Status::unimplemented("")) }
//! #   type SayHelloBidiStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
//! #   async fn say_hello_bidi_stream(&self, _: Request<tonic::Streaming<HelloRequest>>) -> Result<Response<Self::SayHelloBidiStreamStream>, Status> { Err(Status::unimplemented("")) }
//!     // … the other methods
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // A server: trace id, logging, auth, deadline, then the service.
//! let layers = tower::ServiceBuilder::new()
//!     .layer(SetTraceIdLayer::new())
//!     .layer(LoggingLayer::new())
//!     .layer(AuthLayer::new(StaticTokens::new().token("s3cret", "alice")))
//!     .layer(EnforceDeadlineLayer::new())
//!     .into_inner();
//! let router = tonic::transport::Server::builder()
//!     .layer(layers)
//!     .add_service(GreeterServer::new(MyGreeter));
//! // router.serve(addr).await …
//!
//! // A client channel: trace id and deadline propagation, then logging next to the wire.
//! let downstream = grpc_chaos::fake::FakeServer::in_memory();
//! grpc_chaos::builtin::mount_greeter(&downstream);
//! let channel = tower::ServiceBuilder::new()
//!     .layer(PropagateTraceIdLayer::new())
//!     .layer(PropagateDeadlineLayer::new())
//!     .layer(LoggingLayer::client())
//!     .service(downstream.channel());
//! let mut client = grpc_chaos::pb::greeter_client::GreeterClient::new(channel);
//! let reply = client.say_hello(HelloRequest { name: "Ada".into() }).await.unwrap();
//! assert_eq!(reply.into_inner().message, "Hello, Ada!");
//! # }
//! ```

mod auth;
mod logging;
mod trace_id;

pub use auth::{
    auth_interceptor, constant_time_eq, Auth, AuthError, AuthInterceptor, AuthLayer, Identity,
    ResponseFuture as AuthResponseFuture, StaticTokens, TokenValidator,
};
pub use logging::{Logging, LoggingLayer, ResponseFuture as LoggingResponseFuture};
pub use trace_id::{
    current_trace_id, propagate_trace_id_interceptor, trace_id_interceptor, with_trace_id,
    PropagateTraceId, PropagateTraceIdInterceptor, PropagateTraceIdLayer,
    ResponseFuture as SetTraceIdResponseFuture, SetTraceId, SetTraceIdLayer, TraceId,
    TraceIdInterceptor, DEFAULT_TRACE_HEADER,
};
