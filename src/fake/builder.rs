//! Building a fake server: the options beyond its stubs, and where it listens.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::hygiene::Hygiene;
use super::journal::JournalLimits;
use super::server::FakeServer;
use super::services::Services;
use super::state::State;
use super::transport;
use super::wait::DEFAULT_WAIT_LIMIT;
use crate::deadline::EnforceDeadlineLayer;
use crate::method::MethodShape;

/// How a fake server behaves beyond its stubs.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Call shapes by path, for the "call started" log (DEBUG); others log as unknown.
    pub(crate) shapes: HashMap<String, MethodShape>,
    pub(crate) enforce_deadlines: bool,
    /// The deadline layer's admission rules: strict or lenient `grpc-timeout`.
    pub(crate) admission: EnforceDeadlineLayer,
    pub(crate) fault_headers: bool,
    pub(crate) journal: JournalLimits,
    pub(crate) metadata_limit: Option<usize>,
    /// How long the journal's waits last before they fail.
    pub(crate) wait_limit: Duration,
    /// Limits on each connection.
    pub(crate) hygiene: Hygiene,
    /// Real services served beside the stubs.
    pub(crate) services: Services,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            shapes: HashMap::new(),
            enforce_deadlines: false,
            // The plain fake only observes: a malformed timeout is recorded, not refused.
            admission: EnforceDeadlineLayer::new().lenient_timeouts(true),
            fault_headers: false,
            journal: JournalLimits::default(),
            metadata_limit: None,
            wait_limit: DEFAULT_WAIT_LIMIT,
            hygiene: Hygiene::default(),
            services: Services::default(),
        }
    }
}

/// Builds a [`FakeServer`] with options. Every option is off by default, so that the
/// plain fake only observes: it records a `grpc-timeout` but never acts on it.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use grpc_chaos::fake::FakeServer;
/// let server = FakeServer::builder().enforce_deadlines(true).start().await;
/// # }
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until it starts a server"]
pub struct FakeServerBuilder {
    options: Options,
}

impl FakeServerBuilder {
    /// Ends a call whose `grpc-timeout` passes with DEADLINE_EXCEEDED (status 4) from the
    /// server, as the spec says (tonic's server sends CANCELLED), stream bodies included.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().enforce_deadlines(true);
    /// ```
    pub fn enforce_deadlines(mut self, on: bool) -> Self {
        self.options.enforce_deadlines = on;
        self
    }

    /// With `false`, answers a malformed `grpc-timeout` (`abc`, `+1S`, `123456789S`,
    /// `1X`, empty …) with INTERNAL naming the header, as the deadline layer does. By
    /// default (`true`) the fake only records it and goes on, as tonic does. The same
    /// setting is `EnforceDeadlineLayer::lenient_timeouts` and `grpc-chaos serve
    /// --lenient-timeouts` (where strict is the default).
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().lenient_timeouts(false);
    /// ```
    pub fn lenient_timeouts(mut self, on: bool) -> Self {
        self.options.admission = self.options.admission.lenient_timeouts(on);
        self
    }

    /// Lets clients choose faults with `x-chaos-*` request headers, on every method
    /// (see the table in the [`fake`](crate::fake) module docs).
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().fault_headers(true);
    /// ```
    pub fn fault_headers(mut self, on: bool) -> Self {
        self.options.fault_headers = on;
        self
    }

    /// Keeps only the latest `calls` calls in the journal (the oldest go first), so a
    /// long-running server's memory stays bounded. By default every call is kept.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().journal_limit(1000);
    /// ```
    pub fn journal_limit(mut self, calls: usize) -> Self {
        self.options.journal.calls = Some(calls);
        self
    }

    /// Keeps at most `bytes` of request and response messages in the journal, all calls
    /// together: past it the oldest calls go first, as with
    /// [`journal_limit`](Self::journal_limit). By default every byte is kept, which suits
    /// small tests: a call streaming 1 GB keeps 1 GB for as long as the server lives.
    ///
    /// With a budget, the journal keeps copies of the messages (never the buffers they
    /// were read into), and the newest call always stays: a call that alone passes the
    /// budget keeps only the first `bytes` of its messages, and the rest as their sizes.
    /// A truncated message reads as [`DecodeMessageError::Truncated`](super::DecodeMessageError::Truncated).
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().journal_bytes(64 << 20);
    /// ```
    pub fn journal_bytes(mut self, bytes: usize) -> Self {
        self.options.journal.bytes = Some(bytes);
        self
    }

    /// Keeps at most the first `bytes` of each message in the journal; its size is kept
    /// too ([`ReceivedCall::request_sizes`](super::ReceivedCall::request_sizes)), and
    /// decoding it reads as [`DecodeMessageError::Truncated`](super::DecodeMessageError::Truncated).
    /// Stubs, matchers and handlers still see every message whole. No limit by default.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().journal_message_bytes(256 << 10);
    /// ```
    pub fn journal_message_bytes(mut self, bytes: usize) -> Self {
        self.options.journal.message_bytes = Some(bytes);
        self
    }

    /// Answers a request whose header list is over `bytes` (as HTTP/2 counts it: name +
    /// value + 32 per entry) with RESOURCE_EXHAUSTED, and keeps the connection: the
    /// server's HTTP/2 limit is raised to 1 MiB so such requests reach the check instead
    /// of failing with HTTP 431 or a GOAWAY.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().metadata_limit(8 * 1024);
    /// ```
    pub fn metadata_limit(mut self, bytes: usize) -> Self {
        self.options.metadata_limit = Some(bytes);
        self
    }

    /// How long [`FakeServer::wait_for_calls`], [`FakeServer::wait_for_ended_calls`] and
    /// [`FakeServer::wait_for_idle`] wait on the tokio clock before they fail with the
    /// calls received so far (60 s by default). Under paused time the clock jumps to the
    /// limit as soon as nothing else can happen.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().wait_limit(std::time::Duration::from_secs(3_600));
    /// ```
    pub fn wait_limit(mut self, limit: Duration) -> Self {
        self.options.wait_limit = limit;
        self
    }

    /// Closes a connection that has not sent the HTTP/2 preface `limit` after it opened
    /// (a slow-loris, or a client that is not speaking HTTP/2). Off by default.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().handshake_timeout(std::time::Duration::from_secs(10));
    /// ```
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.options.hygiene.handshake_timeout = Some(limit);
        self
    }

    /// Closes a connection gracefully (GOAWAY) once it has had no open call for `limit`.
    /// A client opens a new one for its next call. Off by default.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().idle_timeout(std::time::Duration::from_secs(300));
    /// ```
    pub fn idle_timeout(mut self, limit: Duration) -> Self {
        self.options.hygiene.idle_timeout = Some(limit);
        self
    }

    /// Pings each connection (HTTP/2 PING) after `interval` without frames, and closes it
    /// when the answer has not come `timeout` later: a peer that died without closing
    /// its socket. Off by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = grpc_chaos::fake::FakeServer::builder().keepalive(Duration::from_secs(60), Duration::from_secs(20));
    /// ```
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.options.hygiene.keepalive = Some((interval, timeout));
        self
    }

    /// Keeps at most `n` connections open: a connection past the cap is closed at once,
    /// with a log line, and the open ones go on. Unlimited by default.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().max_connections(1000);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.options.hygiene.max_connections = Some(n);
        self
    }

    /// Tells the server the call shape of these methods, so that its "call started" log (at
    /// DEBUG) says whether each streams (the HTTP/2 request does not say; other methods log as
    /// unknown). `grpc_chaos::pb::shapes()` lists the built-in ones.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().shapes(grpc_chaos::pb::shapes());
    /// ```
    pub fn shapes(mut self, shapes: impl IntoIterator<Item = MethodShape>) -> Self {
        for shape in shapes {
            self.options.shapes.insert(shape.path.to_string(), shape);
        }
        self
    }

    /// Serves a real tonic service beside the stubs, on the same port: a generated
    /// server, or one such as tonic-health's or tonic-reflection's. Calls to its paths
    /// (`/package.Service/…`) go to it as they are: no stub answers them, no fault header
    /// or deadline rule applies, and the journal does not list them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use grpc_chaos::fake::FakeServer;
    /// use grpc_chaos::pb::{greeter_client::GreeterClient, greeter_server::{Greeter, GreeterServer}};
    /// use grpc_chaos::pb::{HelloReply, HelloRequest};
    /// use tonic::{Request, Response, Status};
    ///
    /// #[derive(Clone)]
    /// struct Real;
    /// #[tonic::async_trait]
    /// impl Greeter for Real {
    ///     async fn say_hello(&self, r: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
    ///         Ok(Response::new(HelloReply { message: format!("real {}", r.into_inner().name) }))
    ///     }
    /// #   type SayHelloStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
    /// #   async fn say_hello_stream(&self, _: Request<HelloRequest>) -> Result<Response<Self::SayHelloStreamStream>, Status> { Err(Status::unimplemented("")) }
    /// #   async fn say_hello_client_stream(&self, _: Request<tonic::Streaming<HelloRequest>>) -> Result<Response<HelloReply>, Status> { Err(Status::unimplemented("")) }
    /// #   type SayHelloBidiStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
    /// #   async fn say_hello_bidi_stream(&self, _: Request<tonic::Streaming<HelloRequest>>) -> Result<Response<Self::SayHelloBidiStreamStream>, Status> { Err(Status::unimplemented("")) }
    /// }
    ///
    /// let server = FakeServer::builder().add_service(GreeterServer::new(Real)).in_memory();
    /// let reply = GreeterClient::new(server.channel())
    ///     .say_hello(HelloRequest { name: "Ada".into() })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(reply.into_inner().message, "real Ada");
    /// assert!(server.received_calls().is_empty());
    /// # }
    /// ```
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.options.services.add(service);
        self
    }

    /// Builds an in-memory server (see [`FakeServer::in_memory`]).
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::builder().in_memory();
    /// ```
    pub fn in_memory(self) -> FakeServer {
        FakeServer::new(Arc::new(State::new(self.options)), None, None)
    }

    /// Starts on TCP 127.0.0.1 and a free port.
    ///
    /// # Panics
    /// When no port can be bound.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::builder().start().await;
    /// # }
    /// ```
    pub async fn start(self) -> FakeServer {
        match self.start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(server) => server,
            Err(e) => panic!("grpc-chaos: cannot bind the fake server on 127.0.0.1: {e}"),
        }
    }

    /// Starts on TCP at `addr`.
    ///
    /// # Errors
    /// The bind error.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::builder()
    ///     .start_on("127.0.0.1:0".parse().unwrap())
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub async fn start_on(self, addr: SocketAddr) -> io::Result<FakeServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(self.options));
        let accept = transport::accept_loop(Arc::clone(&state), listener);
        Ok(FakeServer::new(state, Some(addr), Some(accept)))
    }
}
