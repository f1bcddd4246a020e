//! A hand-written tonic Greeter on in-memory duplex pipes: the baseline the benches
//! compare against.

use hyper_util::rt::TokioIo;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Request, Response, Status, Streaming};

use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};

/// The baseline: what a user would write by hand with tonic.
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

    type SayHelloStreamStream = ReceiverStream<Result<HelloReply, Status>>;

    async fn say_hello_stream(
        &self,
        _: Request<HelloRequest>,
    ) -> Result<Response<Self::SayHelloStreamStream>, Status> {
        Err(Status::unimplemented("not benchmarked"))
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

/// A tonic server on in-memory duplex pipes, on the current runtime.
pub fn hand_written_channel() -> Channel {
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<TokioIo<tokio::io::DuplexStream>, std::io::Error>>(4);
    tokio::spawn(
        Server::builder()
            .add_service(GreeterServer::new(HandWritten))
            .serve_with_incoming(ReceiverStream::new(rx).map_ok_io()),
    );
    Endpoint::from_static("http://hand-written.invalid").connect_with_connector_lazy(
        tower::service_fn(move |_: Uri| {
            let tx = tx.clone();
            async move {
                let (client, server) = tokio::io::duplex(64 * 1024);
                tx.send(Ok(TokioIo::new(server)))
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(TokioIo::new(client))
            }
        }),
    )
}

/// `serve_with_incoming` wants the raw IO type; unwrap the hyper adapter again.
trait MapOkIo {
    fn map_ok_io(
        self,
    ) -> impl tokio_stream::Stream<Item = Result<tokio::io::DuplexStream, std::io::Error>>;
}

impl MapOkIo for ReceiverStream<Result<TokioIo<tokio::io::DuplexStream>, std::io::Error>> {
    fn map_ok_io(
        self,
    ) -> impl tokio_stream::Stream<Item = Result<tokio::io::DuplexStream, std::io::Error>> {
        tokio_stream::StreamExt::map(self, |r| r.map(TokioIo::into_inner))
    }
}
