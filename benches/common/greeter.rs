//! A hand-written tonic Greeter on in-memory duplex pipes: the baseline the benches
//! compare against.

use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};

/// How many messages `SayHelloStream` answers with.
pub const STREAM_MESSAGES: usize = 1_000;

/// Serves a tonic router on in-memory duplex pipes on the current runtime, and
/// evaluates to a channel to it. (A macro: a layered router's type is long to name.)
macro_rules! serve_in_memory {
    ($router:expr) => {{
        use hyper_util::rt::TokioIo;
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<tokio::io::DuplexStream, std::io::Error>>(4);
        tokio::spawn($router.serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)));
        tonic::transport::Endpoint::from_static("http://bench.invalid").connect_with_connector_lazy(
            tower::service_fn(move |_: tonic::transport::Uri| {
                let tx = tx.clone();
                async move {
                    let (client, server) = tokio::io::duplex(64 * 1024);
                    tx.send(Ok(server)).await.map_err(std::io::Error::other)?;
                    Ok::<_, std::io::Error>(TokioIo::new(client))
                }
            }),
        )
    }};
}
#[allow(unused_imports)] // only some benches serve their own layered routers
pub(crate) use serve_in_memory;

type ReplyStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HelloReply, Status>> + Send>>;

/// The baseline: what a user would write by hand with tonic. `SayHello` greets;
/// `SayHelloStream` greets [`STREAM_MESSAGES`] times.
pub struct HandWritten;

#[tonic::async_trait]
impl Greeter for HandWritten {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello, {}!", request.into_inner().name),
        }))
    }

    type SayHelloStreamStream = ReplyStream;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let name = request.into_inner().name;
        let replies = (1..=STREAM_MESSAGES).map(move |i| {
            Ok(HelloReply {
                message: format!("Hello #{i}, {name}!"),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn say_hello_client_stream(
        &self,
        _: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }

    type SayHelloBidiStreamStream = ReceiverStream<Result<HelloReply, Status>>;

    async fn say_hello_bidi_stream(
        &self,
        _: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<Self::SayHelloBidiStreamStream>, Status> {
        Err(Status::unimplemented("not benchmarked"))
    }
}

/// A channel to the hand-written Greeter with no layers.
pub fn hand_written_channel() -> Channel {
    serve_in_memory!(Server::builder().add_service(GreeterServer::new(HandWritten)))
}
