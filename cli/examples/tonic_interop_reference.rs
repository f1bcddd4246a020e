//! The baseline for `benches/serve_loopback.py`: a plain tonic server of the interop
//! suite's `TestService`, set up as tonic's own interop server is (a default
//! multi-thread `#[tokio::main]`, `Server::builder()` with its defaults, a `tracing`
//! subscriber that shows errors only), answering `EmptyCall` and `UnaryCall`.
//!
//! It is not tonic's interop binary (that crate is not published); it is the same
//! stack doing the same work per `EmptyCall`, without the interop server's wrapper that
//! echoes test headers, so if anything it is the faster of the two.
//!
//! ```text
//! cargo run --release -p grpc-chaos-cli --example tonic_interop_reference -- 127.0.0.1:0
//! ```
//! It prints `listening on ADDR` first, as `grpc-chaos serve` does.

#![forbid(unsafe_code)]

use std::pin::Pin;

use grpc_chaos::pb::grpc::testing::{
    test_service_server::{TestService, TestServiceServer},
    Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use tokio_stream::{wrappers::TcpListenerStream, Stream};
use tonic::{Request, Response, Status, Streaming};

type Replies = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

/// `TestService`'s unary calls, answered as the interop server answers them.
struct Reference;

#[tonic::async_trait]
impl TestService for Reference {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let size = usize::try_from(request.get_ref().response_size)
            .map_err(|_| Status::invalid_argument("response_size is negative"))?;
        Ok(Response::new(SimpleResponse {
            payload: Some(grpc_chaos::pb::grpc::testing::Payload {
                body: vec![0; size],
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        self.unary_call(request).await
    }

    type StreamingOutputCallStream = Replies;

    async fn streaming_output_call(
        &self,
        _: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn streaming_input_call(
        &self,
        _: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    type FullDuplexCallStream = Replies;

    async fn full_duplex_call(
        &self,
        _: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    type HalfDuplexCallStream = Replies;

    async fn half_duplex_call(
        &self,
        _: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented("UnimplementedCall"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(TestServiceServer::new(Reference))
        .serve_with_incoming(TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
