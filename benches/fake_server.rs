//! The fake server against a hand-written tonic Greeter: one unary call over the
//! in-memory transport on a current-thread runtime, both measured in the same run.
//! Prints the ratio of the medians at the end.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Request, Response, Status, Streaming};

const GROUP: &str = "unary_in_memory";

/// The baseline: what a user would write by hand with tonic.
struct HandWritten;

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
fn hand_written_channel() -> Channel {
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

fn bench_unary(c: &mut Criterion, rt: &Runtime) {
    let fake = rt.block_on(async {
        let server = FakeServer::in_memory();
        Stub::given(method("/pb.Greeter/SayHello"))
            .respond_with(Reply::from_message(|r: &HelloRequest| {
                Reply::message(&HelloReply {
                    message: format!("Hello, {}!", r.name),
                })
            }))
            .mount(&server);
        server
    });
    let mut fake_client = rt.block_on(async { GreeterClient::new(fake.channel()) });
    let mut tonic_client = rt.block_on(async { GreeterClient::new(hand_written_channel()) });

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("hand_written_tonic", |b| {
        b.iter(|| {
            rt.block_on(tonic_client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap()
        })
    });
    group.bench_function("fake_server", |b| {
        b.iter(|| {
            rt.block_on(fake_client.say_hello(HelloRequest { name: "Ada".into() }))
                .unwrap()
        })
    });
    group.finish();
    // The journal keeps every call; clear it so the fake's memory does not grow.
    fake.reset();
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench_unary(&mut c, &rt);
    c.final_summary();
    common::print_ratios(GROUP, "hand_written_tonic", &["fake_server"]);
}
