//! In-memory connections: tonic channels over duplex pipes, with no sockets. Client and
//! server run on the runtime that opens the connection, so under paused time the whole
//! system is deterministic.
//!
//! [`serve`] serves any tonic server, layered or not, without naming its type, and
//! [`serve_service`] serves one tower service of tonic's shape (a generated server, or a
//! `ServiceBuilder` stack around one). Both give back a [`Channel`], and the fake server's
//! in-memory mode uses the same pipes, so a client, the service under test and the fakes
//! of its downstreams all run on the test's one clock:
//!
//! ```
//! use grpc_chaos::pb::greeter_client::GreeterClient;
//! use grpc_chaos::pb::greeter_server::GreeterServer;
//! # use grpc_chaos::pb::{HelloReply, HelloRequest};
//! # use tonic::{Request, Response, Status, Streaming};
//! # struct MyGreeter;
//! # #[tonic::async_trait]
//! # impl grpc_chaos::pb::greeter_server::Greeter for MyGreeter {
//! #     async fn say_hello(&self, r: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
//! #         Ok(Response::new(HelloReply { message: format!("Hi {}", r.into_inner().name) }))
//! #     }
//! #     type SayHelloStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
//! #     async fn say_hello_stream(&self, _: Request<HelloRequest>) -> Result<Response<Self::SayHelloStreamStream>, Status> { Err(Status::unimplemented("")) }
//! #     async fn say_hello_client_stream(&self, _: Request<Streaming<HelloRequest>>) -> Result<Response<HelloReply>, Status> { Err(Status::unimplemented("")) }
//! #     type SayHelloBidiStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
//! #     async fn say_hello_bidi_stream(&self, _: Request<Streaming<HelloRequest>>) -> Result<Response<Self::SayHelloBidiStreamStream>, Status> { Err(Status::unimplemented("")) }
//! # }
//! use tonic::transport::Server;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let channel = grpc_chaos::memory::serve(|incoming| {
//!     Server::builder()
//!         .layer(grpc_chaos::deadline::EnforceDeadlineLayer::new())
//!         .add_service(GreeterServer::new(MyGreeter))
//!         .serve_with_incoming(incoming)
//! });
//! let reply = GreeterClient::new(channel)
//!     .say_hello(HelloRequest { name: "Ada".into() })
//!     .await
//!     .unwrap();
//! assert_eq!(reply.into_inner().message, "Hi Ada");
//! # }
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::{Service, ServiceExt};

/// Bytes each direction of a pipe buffers before the writer waits.
pub const PIPE_BUFFER: usize = 64 * 1024;

/// The URI in-memory channels report (nothing resolves it; `.invalid` by RFC 2606).
pub const URI: &str = "http://in-memory.invalid";

/// A lazy channel whose every connection is a new duplex pipe, the server's end handed to
/// `accept` on the connecting task. Each call makes a channel of its own connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let channel = grpc_chaos::memory::channel(|server_end| drop(server_end));
/// # }
/// ```
pub fn channel(accept: impl Fn(DuplexStream) + Send + Sync + 'static) -> Channel {
    Endpoint::from_static(URI).connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        accept(server);
        std::future::ready(Ok::<_, io::Error>(TokioIo::new(client)))
    }))
}

/// The server's side: a stream of accepted connections for tonic's
/// `Router::serve_with_incoming`. It ends when every [`Connector`] is dropped.
#[derive(Debug)]
pub struct Incoming(mpsc::UnboundedReceiver<DuplexStream>);

impl tokio_stream::Stream for Incoming {
    type Item = io::Result<DuplexStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|io| io.map(Ok))
    }
}

/// The client's side: makes channels whose connections arrive at its [`Incoming`].
#[derive(Clone, Debug)]
pub struct Connector(mpsc::UnboundedSender<DuplexStream>);

impl Connector {
    /// A new connection's client end, as a raw byte stream (for an HTTP/2 client of your
    /// own, or a proxy's upstream); the server end arrives at the [`Incoming`].
    ///
    /// ```
    /// let (_incoming, connector) = grpc_chaos::memory::incoming();
    /// let client_end = connector.connect();
    /// ```
    pub fn connect(&self) -> DuplexStream {
        let (client, server) = tokio::io::duplex(PIPE_BUFFER);
        // A server that has stopped leaves the client to see the pipe close.
        let _ = self.0.send(server);
        client
    }

    /// A lazy channel to the server; it connects on first use.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (_incoming, connector) = grpc_chaos::memory::incoming();
    /// let channel = connector.channel();
    /// # }
    /// ```
    pub fn channel(&self) -> Channel {
        let tx = self.0.clone();
        channel(move |server_end| {
            // A server that has stopped leaves the client to see the pipe close.
            let _ = tx.send(server_end);
        })
    }
}

/// A connected pair: serve the [`Incoming`], make channels with the [`Connector`].
///
/// ```
/// let (incoming, connector) = grpc_chaos::memory::incoming();
/// ```
pub fn incoming() -> (Incoming, Connector) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Incoming(rx), Connector(tx))
}

/// Serves one tower service of tonic's shape over in-memory HTTP/2 on the current
/// runtime, and returns a channel to it: a generated server (`GreeterServer::new(svc)`),
/// a `tower::ServiceBuilder` stack around one, or any service of
/// `http::Request<tonic::body::Body>`. For a tonic `Router` with several services and its
/// `Server::builder().layer(…)` stack, use [`serve`].
///
/// ```
/// # use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
/// # use grpc_chaos::pb::{HelloReply, HelloRequest};
/// # use tonic::{Request, Response, Status, Streaming};
/// # struct Slow;
/// # #[tonic::async_trait]
/// # impl Greeter for Slow {
/// #     async fn say_hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
/// #         tokio::time::sleep(std::time::Duration::from_secs(10)).await;
/// #         Ok(Response::new(HelloReply { message: "late".into() }))
/// #     }
/// #     type SayHelloStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
/// #     async fn say_hello_stream(&self, _: Request<HelloRequest>) -> Result<Response<Self::SayHelloStreamStream>, Status> { Err(Status::unimplemented("")) }
/// #     async fn say_hello_client_stream(&self, _: Request<Streaming<HelloRequest>>) -> Result<Response<HelloReply>, Status> { Err(Status::unimplemented("")) }
/// #     type SayHelloBidiStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
/// #     async fn say_hello_bidi_stream(&self, _: Request<Streaming<HelloRequest>>) -> Result<Response<Self::SayHelloBidiStreamStream>, Status> { Err(Status::unimplemented("")) }
/// # }
/// use std::time::Duration;
/// use grpc_chaos::deadline::{EnforceDeadlineLayer, PropagateDeadlineLayer};
/// use grpc_chaos::pb::greeter_client::GreeterClient;
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let channel = grpc_chaos::memory::serve_service(
///     tower::ServiceBuilder::new()
///         .layer(EnforceDeadlineLayer::new())
///         .service(GreeterServer::new(Slow)),
/// );
/// let client = tower::ServiceBuilder::new().layer(PropagateDeadlineLayer::new()).service(channel);
/// let t0 = Instant::now();
/// let mut request = Request::new(HelloRequest { name: "Ada".into() });
/// request.set_timeout(Duration::from_secs(2));
/// let status = GreeterClient::new(client).say_hello(request).await.unwrap_err();
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// assert_eq!(t0.elapsed(), Duration::from_secs(2)); // on the paused clock
/// # }
/// ```
///
/// # Panics
/// Outside a tokio runtime, when the channel first connects.
pub fn serve_service<S, B>(service: S) -> Channel
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // `channel` takes a `Sync` closure; a tower service need not be `Sync`.
    let service = std::sync::Mutex::new(service);
    channel(move |server_end| {
        let service = service.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let per_request = hyper::service::service_fn(move |request: http::Request<_>| {
            let service = service.clone();
            service.oneshot(request.map(tonic::body::Body::new))
        });
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        let connection = builder.serve_connection(TokioIo::new(server_end), per_request);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("grpc-chaos: in-memory connection ended: {e}");
            }
        });
    })
}

/// Spawns the server that `start` builds from an [`Incoming`] on the current runtime,
/// and returns a channel to it (see the module example). A server that fails is
/// logged, and its clients see their connection close.
///
/// # Panics
/// Outside a tokio runtime.
pub fn serve<F, Fut, E>(start: F) -> Channel
where
    F: FnOnce(Incoming) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let (incoming, connector) = incoming();
    let server = start(incoming);
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::warn!("grpc-chaos: in-memory server ended: {e}");
        }
    });
    connector.channel()
}
