//! A hand-written tonic Greeter on in-memory duplex pipes: the baseline the benches
//! compare against.

use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};

/// How many messages `SayHelloStream` answers with.
pub const STREAM_MESSAGES: usize = 1_000;

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
    memory::serve(|incoming| {
        Server::builder()
            .add_service(GreeterServer::new(HandWritten))
            .serve_with_incoming(incoming)
    })
}

/// The fake answering SayHello as [`HandWritten`] does, from a stub on `server`.
pub fn greeter_fake(server: FakeServer) -> FakeServer {
    Stub::given(method("/pb.Greeter/SayHello"))
        .respond_with(Reply::from_message(|r: &HelloRequest| {
            Reply::message(&HelloReply {
                message: format!("Hello, {}!", r.name),
            })
        }))
        .mount(&server);
    server
}
