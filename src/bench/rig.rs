//! The rig: a Greeter served in memory, a client on a current-thread runtime, and the
//! same pair again with the layer under test, so that the two differ by that layer only.

use std::sync::Arc;

use bytes::Bytes;
use tonic::body::Body;
use tonic::service::{Interceptor, InterceptorLayer};
use tonic::transport::Channel;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceExt};

use super::greeter::BenchGreeter;
use super::paired::{measure, Paired};
use crate::memory;
use crate::pb::greeter_client::GreeterClient;
use crate::pb::greeter_server::GreeterServer;
use crate::pb::{HelloReply, HelloRequest};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Either side of a call, boxed alike for baseline and candidate.
type Boxed = BoxCloneService<http::Request<Body>, http::Response<Body>, BoxError>;

/// The service every rig serves: `pb.Greeter`, as tonic generates it around a
/// hand-written implementation that does as little as a service can.
pub type BenchServer = GreeterServer<BenchGreeter>;

type ClientStack = Arc<dyn Fn(Channel) -> Boxed + Send + Sync>;
type ServerStack = Arc<dyn Fn(BenchServer) -> Boxed + Send + Sync>;

/// The call shape a rig makes, with its stream length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// `SayHello`: one request, one reply.
    Unary,
    /// `SayHelloStream`: one request, this many replies.
    ServerStreaming(usize),
    /// `SayHelloClientStream`: this many requests, one reply.
    ClientStreaming(usize),
    /// `SayHelloBidiStream`: this many requests, each answered as it arrives.
    Bidi(usize),
}

impl Shape {
    fn messages(self) -> usize {
        match self {
            Shape::Unary => 1,
            Shape::ServerStreaming(n) | Shape::ClientStreaming(n) | Shape::Bidi(n) => n.max(1),
        }
    }
}

/// A benchmark of a layer's overhead: what to call, and the layer, interceptor or
/// subscriber under test. See the [module docs](super) for what it measures.
///
/// ```
/// use grpc_chaos::bench::Bench;
///
/// let add_header = |mut request: tonic::Request<()>| {
///     request.metadata_mut().insert("x-tenant", "blue".parse().unwrap());
///     Ok(request)
/// };
/// let paired = Bench::unary().client_interceptor(add_header).rounds(5).calls(20).paired();
/// assert!(paired.ratio() > 0.0);
/// println!("add_header: {paired}");
/// ```
#[derive(Clone)]
#[must_use = "a Bench does nothing until it is started or measured"]
pub struct Bench {
    shape: Shape,
    message_bytes: usize,
    metadata: Vec<(String, String)>,
    timeout: Option<std::time::Duration>,
    client: Option<ClientStack>,
    server: Option<ServerStack>,
    subscriber: Option<tracing::Dispatch>,
    rounds: usize,
    calls: Option<usize>,
}

impl std::fmt::Debug for Bench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench")
            .field("shape", &self.shape)
            .field("message_bytes", &self.message_bytes)
            .field("client_layer", &self.client.is_some())
            .field("server_layer", &self.server.is_some())
            .field("rounds", &self.rounds)
            .field("calls", &self.calls_per_round())
            .finish()
    }
}

/// Rounds of a paired measurement, unless a bench says otherwise.
pub const DEFAULT_ROUNDS: usize = 31;

/// Messages each round moves, unless a bench says otherwise (calls × messages a call).
pub const DEFAULT_MESSAGES_PER_ROUND: usize = 400;

impl Bench {
    fn new(shape: Shape) -> Self {
        Self {
            shape,
            message_bytes: 16,
            metadata: Vec::new(),
            timeout: None,
            client: None,
            server: None,
            subscriber: None,
            rounds: DEFAULT_ROUNDS,
            calls: None,
        }
    }

    /// Unary calls (`SayHello`).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary();
    /// ```
    pub fn unary() -> Self {
        Self::new(Shape::Unary)
    }

    /// Server-streaming calls of `messages` replies each (`SayHelloStream`).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::server_streaming(1_000);
    /// ```
    pub fn server_streaming(messages: usize) -> Self {
        Self::new(Shape::ServerStreaming(messages))
    }

    /// Client-streaming calls of `messages` requests each (`SayHelloClientStream`).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::client_streaming(100);
    /// ```
    pub fn client_streaming(messages: usize) -> Self {
        Self::new(Shape::ClientStreaming(messages))
    }

    /// Bidi calls of `messages` requests, each answered as it arrives
    /// (`SayHelloBidiStream`).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::bidi(100);
    /// ```
    pub fn bidi(messages: usize) -> Self {
        Self::new(Shape::Bidi(messages))
    }

    /// The size of every request and reply message's text field (16 bytes by default).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().message_bytes(4096);
    /// ```
    pub fn message_bytes(mut self, bytes: usize) -> Self {
        self.message_bytes = bytes;
        self
    }

    /// Sends this metadata with every call, on both sides (a token for an auth layer).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().metadata("authorization", "Bearer t0k3n");
    /// ```
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.push((key.to_string(), value.to_string()));
        self
    }

    /// Gives every call, on both sides, this timeout (`Request::set_timeout`): for layers
    /// that work from the deadline.
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Wraps the candidate's client channel in `layer` (for several, pass a
    /// `tower::ServiceBuilder`'s `into_inner()`).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary()
    ///     .client_layer(tonic_layers::deadline::PropagateDeadlineLayer::new());
    /// ```
    pub fn client_layer<L, S, B>(mut self, layer: L) -> Self
    where
        L: Layer<Channel, Service = S> + Send + Sync + 'static,
        S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.client = Some(Arc::new(move |channel| boxed(layer.layer(channel))));
        self
    }

    /// Wraps the candidate's server in `layer`, as `Server::builder().layer(…)` would.
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary()
    ///     .server_layer(tonic_layers::deadline::EnforceDeadlineLayer::new());
    /// ```
    pub fn server_layer<L, S, B>(mut self, layer: L) -> Self
    where
        L: Layer<BenchServer, Service = S> + Send + Sync + 'static,
        S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.server = Some(Arc::new(move |server| boxed(layer.layer(server))));
        self
    }

    /// A tonic interceptor on the candidate's client, as `Client::with_interceptor` adds it.
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().client_interceptor(|r| Ok(r));
    /// ```
    pub fn client_interceptor<F>(self, interceptor: F) -> Self
    where
        F: Interceptor + Clone + Send + Sync + 'static,
    {
        self.client_layer(InterceptorLayer::new(interceptor))
    }

    /// A tonic interceptor on the candidate's server, as `Server::with_interceptor` adds it.
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().server_interceptor(|r| Ok(r));
    /// ```
    pub fn server_interceptor<F>(self, interceptor: F) -> Self
    where
        F: Interceptor + Clone + Send + Sync + 'static,
    {
        self.server_layer(InterceptorLayer::new(interceptor))
    }

    /// Runs baseline and candidate alike under this subscriber (as the thread's default).
    /// A subscriber slows the call sites of h2, hyper and tower too; with the same one on
    /// both sides, the ratio is the layer's own cost.
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary()
    ///     .subscriber(tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    /// ```
    pub fn subscriber(mut self, dispatch: impl Into<tracing::Dispatch>) -> Self {
        self.subscriber = Some(dispatch.into());
        self
    }

    /// How many alternating rounds a paired measurement runs ([`DEFAULT_ROUNDS`]).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().rounds(51);
    /// ```
    pub fn rounds(mut self, rounds: usize) -> Self {
        self.rounds = rounds.max(1);
        self
    }

    /// How many calls each round makes on each side (by default, enough for
    /// [`DEFAULT_MESSAGES_PER_ROUND`] messages, and at least 2 calls).
    ///
    /// ```
    /// let bench = grpc_chaos::bench::Bench::unary().calls(500);
    /// ```
    pub fn calls(mut self, calls: usize) -> Self {
        self.calls = Some(calls.max(1));
        self
    }

    fn calls_per_round(&self) -> usize {
        self.calls
            .unwrap_or_else(|| (DEFAULT_MESSAGES_PER_ROUND / self.shape.messages()).max(2))
    }

    /// Serves both sides and connects their clients, on a runtime of the calling thread,
    /// ready for [`Running::baseline`] and [`Running::candidate`] (in a criterion
    /// benchmark function) or [`Running::paired`].
    ///
    /// # Panics
    /// Inside a tokio runtime (the rig has a runtime of its own), when a
    /// [`metadata`](Bench::metadata) key or value is not valid ASCII metadata, and when a
    /// warm-up call fails.
    ///
    /// ```
    /// let running = grpc_chaos::bench::Bench::unary().start();
    /// running.baseline();
    /// running.candidate();
    /// ```
    pub fn start(&self) -> Running {
        let guard = self
            .subscriber
            .as_ref()
            .map(tracing::dispatcher::set_default);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("grpc-chaos bench: a current-thread runtime builds");
        let greeter = BenchGreeter {
            reply: HelloReply {
                message: "r".repeat(self.message_bytes),
            },
            messages: self.shape.messages(),
        };
        let plain_server: ServerStack = Arc::new(boxed);
        let plain_client: ClientStack = Arc::new(boxed);
        let (baseline, candidate) = runtime.block_on(async {
            let connect = |server: &ServerStack, client: &ClientStack| {
                let channel = memory::serve_service(server(GreeterServer::new(greeter.clone())));
                GreeterClient::new(client(channel))
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX)
            };
            let candidate_server = self.server.as_ref().unwrap_or(&plain_server);
            let candidate_client = self.client.as_ref().unwrap_or(&plain_client);
            (
                connect(&plain_server, &plain_client),
                connect(candidate_server, candidate_client),
            )
        });
        let mut request = tonic::metadata::MetadataMap::new();
        if let Some(timeout) = self.timeout {
            let mut timed = tonic::Request::new(());
            timed.set_timeout(timeout);
            request = timed.metadata().clone();
        }
        for (key, value) in &self.metadata {
            let (Ok(key), Ok(value)) = (
                key.parse::<tonic::metadata::MetadataKey<_>>(),
                value.parse(),
            ) else {
                panic!("grpc-chaos bench: metadata {key:?}: {value:?} is not valid ASCII metadata");
            };
            request.insert(key, value);
        }
        let running = Running {
            runtime,
            baseline,
            candidate,
            shape: self.shape,
            message: HelloRequest {
                name: "q".repeat(self.message_bytes),
            },
            metadata: request,
            rounds: self.rounds,
            calls: self.calls_per_round(),
            _subscriber: guard,
        };
        // Warm both sides: connections made, buffers grown, caches filled.
        for _ in 0..running.calls {
            running.baseline();
            running.candidate();
        }
        running
    }

    /// Starts the rig and runs a paired measurement (see [`Running::paired`]).
    ///
    /// # Panics
    /// As [`Bench::start`] does, and when a call fails.
    ///
    /// ```
    /// let paired = grpc_chaos::bench::Bench::unary().rounds(3).calls(10).paired();
    /// println!("{paired}");
    /// ```
    pub fn paired(&self) -> Paired {
        self.start().paired()
    }
}

/// Boxes one side's service, response body and error alike.
fn boxed<S, B>(service: S) -> Boxed
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneService::new(
        service
            .map_response(|response: http::Response<B>| response.map(Body::new))
            .map_err(Into::into),
    )
}

/// A started rig: both servers served in memory and both clients connected, on its own
/// current-thread runtime (not paused: this is wall-clock time).
pub struct Running {
    runtime: tokio::runtime::Runtime,
    baseline: GreeterClient<Boxed>,
    candidate: GreeterClient<Boxed>,
    shape: Shape,
    message: HelloRequest,
    metadata: tonic::metadata::MetadataMap,
    rounds: usize,
    calls: usize,
    _subscriber: Option<tracing::dispatcher::DefaultGuard>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("shape", &self.shape)
            .field("rounds", &self.rounds)
            .field("calls", &self.calls)
            .finish()
    }
}

impl Running {
    /// One call of the baseline, to its end: for `b.iter(|| running.baseline())`.
    ///
    /// # Panics
    /// When the call fails.
    pub fn baseline(&self) {
        let client = self.baseline.clone();
        self.call(client, "baseline");
    }

    /// One call of the candidate, to its end: for `b.iter(|| running.candidate())`.
    ///
    /// # Panics
    /// When the call fails (a layer that refuses the rig's calls cannot be measured).
    pub fn candidate(&self) {
        let client = self.candidate.clone();
        self.call(client, "candidate");
    }

    /// Alternating rounds of the bench's calls on each side, flipping which goes first,
    /// and their median ratio.
    ///
    /// # Panics
    /// When a call fails.
    pub fn paired(&self) -> Paired {
        let timed = measure(
            self.rounds,
            self.calls,
            &mut || self.baseline(),
            &mut || self.candidate(),
        );
        Paired::from_rounds(&timed, self.calls, self.shape.messages())
    }

    fn call(&self, mut client: GreeterClient<Boxed>, side: &str) {
        let (message, metadata, shape) = (&self.message, &self.metadata, self.shape);
        let outcome = self.runtime.block_on(async {
            match shape {
                Shape::Unary => client
                    .say_hello(request(message.clone(), metadata))
                    .await
                    .map(drop),
                Shape::ServerStreaming(_) => {
                    let mut replies = client
                        .say_hello_stream(request(message.clone(), metadata))
                        .await?
                        .into_inner();
                    while replies.message().await?.is_some() {}
                    Ok(())
                }
                Shape::ClientStreaming(n) => {
                    let messages = tokio_stream::iter(std::iter::repeat_n(message.clone(), n));
                    client
                        .say_hello_client_stream(request(messages, metadata))
                        .await
                        .map(drop)
                }
                Shape::Bidi(n) => {
                    let messages = tokio_stream::iter(std::iter::repeat_n(message.clone(), n));
                    let mut replies = client
                        .say_hello_bidi_stream(request(messages, metadata))
                        .await?
                        .into_inner();
                    while replies.message().await?.is_some() {}
                    Ok(())
                }
            }
        });
        if let Err(status) = outcome {
            panic!("grpc-chaos bench: a {side} call failed: {status:?}");
        }
    }
}

/// A request of `message` (or a stream of them) with the bench's metadata.
fn request<T>(message: T, metadata: &tonic::metadata::MetadataMap) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = metadata.clone();
    request
}
