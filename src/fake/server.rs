//! The fake server's public face: start it, get channels to it, read its journal,
//! verify its stubs, shut it down. The parts are in `builder`, `registry`, `transport`
//! and `state`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tonic::transport::{Channel, Endpoint, Uri};

use super::builder::FakeServerBuilder;
use super::journal::ReceivedCall;
use super::state::State;
use super::stub::{StubGuard, VerificationError};
use super::transport;
use super::wait::{count, WaitTimeout};
use crate::memory;

/// A programmable fake gRPC server: stubs answer calls, the journal records them.
///
/// It serves any method path, so it can fake any service: match on the path and answer
/// with your own prost types or raw bytes. Expectations are verified when it is dropped.
///
/// In memory ([`FakeServer::in_memory`]) every connection is a duplex pipe served on the
/// caller's runtime, so under `#[tokio::test(start_paused = true)]` the client, the fake
/// and the clock are one deterministic system and instants are exact.
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
/// use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
/// use tokio::time::Instant;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let server = FakeServer::in_memory();
/// Stub::given(method("/pb.Greeter/SayHello"))
///     .respond_with(Reply::message(&HelloReply { message: "Hello, Ada!".into() }).delay(Duration::from_secs(3)))
///     .expect(1)
///     .mount(&server);
///
/// let start = Instant::now();
/// let mut client = GreeterClient::new(server.channel());
/// let reply = client.say_hello(HelloRequest { name: "Ada".into() }).await.unwrap();
/// assert_eq!(reply.into_inner().message, "Hello, Ada!");
/// assert_eq!(start.elapsed(), Duration::from_secs(3)); // virtual, exact, instant
/// # }
/// ```
#[derive(Debug)]
pub struct FakeServer {
    state: Arc<State>,
    addr: Option<SocketAddr>,
    /// The TCP accept loop, when there is one.
    accept: Option<AbortHandle>,
}

impl FakeServer {
    /// Starts on TCP, on 127.0.0.1 and a free port.
    ///
    /// # Panics
    /// When no port can be bound; [`FakeServer::start_on`] returns the error instead.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::start().await;
    /// assert!(server.addr().unwrap().ip().is_loopback());
    /// # }
    /// ```
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Starts on TCP at `addr` (port 0 picks a free port).
    ///
    /// # Errors
    /// The bind error.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use grpc_chaos::fake::FakeServer;
    /// let server = FakeServer::start_on("127.0.0.1:0".parse().unwrap()).await.unwrap();
    /// # }
    /// ```
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        Self::builder().start_on(addr).await
    }

    /// Options beyond the defaults: deadline enforcement, strict `grpc-timeout`, and
    /// faults chosen by request headers.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::builder()
    ///     .enforce_deadlines(true)
    ///     .lenient_timeouts(false)
    ///     .fault_headers(true)
    ///     .in_memory();
    /// ```
    pub fn builder() -> FakeServerBuilder {
        FakeServerBuilder::default()
    }

    /// A server reached through in-memory duplex pipes: no sockets, and deterministic
    /// under paused time. Connections are served on the runtime that opens them.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// assert!(server.addr().is_none());
    /// ```
    pub fn in_memory() -> Self {
        Self::builder().in_memory()
    }

    pub(super) fn new(
        state: Arc<State>,
        addr: Option<SocketAddr>,
        accept: Option<AbortHandle>,
    ) -> Self {
        Self {
            state,
            addr,
            accept,
        }
    }

    /// A tonic channel to this server. Each call to `channel` opens its own connection
    /// (lazily, on first use). Call it inside a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use grpc_chaos::pb::greeter_client::GreeterClient;
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// let client = GreeterClient::new(server.channel());
    /// # }
    /// ```
    pub fn channel(&self) -> Channel {
        if self.addr.is_some() {
            return Endpoint::from(self.uri()).connect_lazy();
        }
        let state = Arc::clone(&self.state);
        memory::channel(move |server_end| transport::serve_connection(&state, server_end))
    }

    /// Opens in-memory connections to this server: each call of the returned function
    /// gives the client end of a new one, served on the current runtime (for an HTTP/2
    /// client of your own, or a [`proxy`](crate::proxy)'s upstream). It works for a TCP
    /// server too, bypassing the socket.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// let dial = server.dialer();
    /// let client_end: tokio::io::DuplexStream = dial();
    /// # }
    /// ```
    pub fn dialer(&self) -> impl Fn() -> tokio::io::DuplexStream + Send + Sync + 'static {
        let state = Arc::clone(&self.state);
        move || {
            let (client, server) = tokio::io::duplex(memory::PIPE_BUFFER);
            transport::serve_connection(&state, server);
            client
        }
    }

    /// The server's URI: `http://127.0.0.1:PORT` on TCP, a placeholder in memory.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// assert_eq!(server.uri().scheme_str(), Some("http"));
    /// ```
    pub fn uri(&self) -> Uri {
        match self.addr {
            Some(addr) => {
                Uri::try_from(format!("http://{addr}")).expect("a socket address makes a valid URI")
            }
            None => Uri::from_static(memory::URI),
        }
    }

    /// The TCP address, or `None` in memory.
    ///
    /// ```
    /// assert_eq!(grpc_chaos::fake::FakeServer::in_memory().addr(), None);
    /// ```
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// A snapshot of every call received so far, in arrival order.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// assert!(server.received_calls().is_empty());
    /// ```
    pub fn received_calls(&self) -> Vec<ReceivedCall> {
        self.state.journal.snapshot()
    }

    /// Waits until at least `n` calls have arrived (not necessarily ended), and returns
    /// every call.
    ///
    /// # Panics
    /// When they have not come within the server's wait limit on the tokio clock
    /// ([`FakeServerBuilder::wait_limit`], 60 s by default), with a message naming the
    /// test and listing the calls received so far. Under paused time, a wait that cannot
    /// end fails at once.
    ///
    /// ```
    /// # async fn f(server: grpc_chaos::fake::FakeServer) {
    /// let calls = server.wait_for_calls(2).await;
    /// # }
    /// ```
    pub async fn wait_for_calls(&self, n: usize) -> Vec<ReceivedCall> {
        or_panic(self.wait_for_calls_within(n, self.wait_limit()).await)
    }

    /// Waits up to `limit` on the tokio clock for at least `n` calls to arrive.
    ///
    /// # Errors
    /// A [`WaitTimeout`] with the calls received so far.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// let limit = std::time::Duration::from_secs(1);
    /// assert!(server.wait_for_calls_within(1, limit).await.is_err());
    /// # }
    /// ```
    pub async fn wait_for_calls_within(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<ReceivedCall>, WaitTimeout> {
        let journal = &self.state.journal;
        journal
            .wait_until(limit, |calls| calls.len() >= n)
            .await
            .map_err(|calls| self.timeout(count(n, "call"), limit, calls))
    }

    /// Waits until at least `n` calls have ended (a status, a reset or a client cancel is
    /// recorded), and returns every call.
    ///
    /// # Panics
    /// As [`FakeServer::wait_for_calls`] does, when they have not ended within the wait
    /// limit.
    ///
    /// ```
    /// # async fn f(server: grpc_chaos::fake::FakeServer) {
    /// let calls = server.wait_for_ended_calls(1).await;
    /// # }
    /// ```
    pub async fn wait_for_ended_calls(&self, n: usize) -> Vec<ReceivedCall> {
        or_panic(self.wait_for_ended_calls_within(n, self.wait_limit()).await)
    }

    /// Waits up to `limit` on the tokio clock for at least `n` calls to end.
    ///
    /// # Errors
    /// A [`WaitTimeout`] with the calls received so far.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// let limit = std::time::Duration::from_secs(1);
    /// assert!(server.wait_for_ended_calls_within(1, limit).await.is_err());
    /// # }
    /// ```
    pub async fn wait_for_ended_calls_within(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<ReceivedCall>, WaitTimeout> {
        let ended = |calls: &[ReceivedCall]| {
            calls.iter().filter(|c| !c.ending.is_in_progress()).count() >= n
        };
        let journal = &self.state.journal;
        journal
            .wait_until(limit, ended)
            .await
            .map_err(|calls| self.timeout(count(n, "ended call"), limit, calls))
    }

    /// Stops accepting TCP connections; open connections and their calls go on. Pair it
    /// with [`FakeServer::wait_for_idle`] for a graceful shutdown.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::start().await;
    /// server.stop_accepting();
    /// server.wait_for_idle().await;
    /// # }
    /// ```
    pub fn stop_accepting(&self) {
        if let Some(accept) = &self.accept {
            accept.abort();
        }
    }

    /// Shuts down gracefully: stops accepting, tells every connection to finish (HTTP/2
    /// GOAWAY: no new calls), and waits until the calls in flight have ended and their
    /// last frames are written. Bound it with a timeout; dropping the server then cancels
    /// whatever is left.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use std::time::Duration;
    /// let server = grpc_chaos::fake::FakeServer::start().await;
    /// let _ = tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        self.stop_accepting();
        self.state.connections.drain().await;
    }

    /// Drops every open connection at once, as a network failure would: calls in flight
    /// end, the journal records them as cancelled at this instant, and the server stays up
    /// for new connections.
    ///
    /// What the client reads depends on its stack (pinned by `tests/it/connection_lost.rs`):
    /// - a plain tonic 0.14 client reads UNKNOWN: `"transport error"` before the response
    ///   headers, `"h2 protocol error: error reading a body from connection"` after them;
    /// - through this crate's client layers, `PropagateDeadlineLayer` or `RetryLayer`, it
    ///   reads UNAVAILABLE, as the spec maps a lost connection, and a retry policy that
    ///   lists UNAVAILABLE retries it (see `tonic_layers::connection`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.drop_connections();
    /// # }
    /// ```
    pub fn drop_connections(&self) {
        self.state.connections.drop_all();
    }

    /// How many bytes of messages the journal keeps now, all calls together (see
    /// [`FakeServerBuilder::journal_bytes`]).
    ///
    /// ```
    /// assert_eq!(grpc_chaos::fake::FakeServer::in_memory().journal_bytes(), 0);
    /// ```
    pub fn journal_bytes(&self) -> usize {
        self.state.journal.kept_bytes()
    }

    /// How many connections are open now, in memory or over TCP.
    ///
    /// ```
    /// assert_eq!(grpc_chaos::fake::FakeServer::in_memory().open_connections(), 0);
    /// ```
    pub fn open_connections(&self) -> usize {
        self.state.connections.open()
    }

    /// Waits until no call has a live handler (every call has ended and been dropped).
    ///
    /// # Panics
    /// As [`FakeServer::wait_for_calls`] does, when calls are still live after the wait
    /// limit.
    ///
    /// ```
    /// # async fn f(server: grpc_chaos::fake::FakeServer) {
    /// server.wait_for_idle().await;
    /// assert_eq!(server.live_calls(), 0);
    /// # }
    /// ```
    pub async fn wait_for_idle(&self) {
        let journal = &self.state.journal;
        let limit = self.wait_limit();
        let waited = journal.wait_until(limit, |_| journal.live() == 0).await;
        let waited = waited.map_err(|calls| self.timeout("no live calls".into(), limit, calls));
        or_panic(waited);
    }

    /// How many calls have a live handler right now (0 once every call has ended and
    /// been dropped).
    ///
    /// ```
    /// assert_eq!(grpc_chaos::fake::FakeServer::in_memory().live_calls(), 0);
    /// ```
    pub fn live_calls(&self) -> usize {
        self.state.journal.live()
    }

    /// Checks every mounted stub's expectation now.
    ///
    /// # Panics
    /// With the same message as the check on drop, when an expectation is unmet.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.verify();
    /// ```
    pub fn verify(&self) {
        if let Err(e) = self.try_verify() {
            panic!("{e}");
        }
    }

    /// Checks every mounted stub's expectation now, returning what is unmet.
    ///
    /// # Errors
    /// A [`VerificationError`] listing the unmet expectations and the calls received.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// assert!(server.try_verify().is_ok());
    /// ```
    pub fn try_verify(&self) -> Result<(), VerificationError> {
        self.state.stubs.verify()
    }

    /// Checks the expectations of these scoped stubs only (one test's, say), with the
    /// same report as [`try_verify`](Self::try_verify).
    ///
    /// # Errors
    /// A [`VerificationError`] listing their unmet expectations and the calls received.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// let server = FakeServer::in_memory();
    /// let a = Stub::given(any()).respond_with(Reply::empty()).expect(1).mount_as_scoped(&server);
    /// let b = Stub::given(any()).respond_with(Reply::empty()).mount_as_scoped(&server);
    /// assert!(server.try_verify_only(&[&b]).is_ok());
    /// assert_eq!(server.try_verify_only(&[&a, &b]).unwrap_err().unmet().len(), 1);
    /// a.unmount();
    /// ```
    pub fn try_verify_only(&self, stubs: &[&StubGuard]) -> Result<(), VerificationError> {
        let ids: Vec<u64> = stubs.iter().map(|g| g.id()).collect();
        self.state.stubs.verify_ids(&ids)
    }

    /// Forgets the calls received so far (stubs stay mounted, and their counts too);
    /// calls in flight go on recording, unlisted.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.clear_received_calls();
    /// assert!(server.received_calls().is_empty());
    /// ```
    pub fn clear_received_calls(&self) {
        self.state.journal.clear();
    }

    /// Forgets the calls `forget` picks, such as those of one test's session; the others
    /// stay, in order.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.clear_received_calls_where(|call| call.header("x-chaos-session") == Some("a"));
    /// ```
    pub fn clear_received_calls_where(&self, forget: impl Fn(&ReceivedCall) -> bool) {
        self.state.journal.clear_where(forget);
    }

    /// When the server started, on the tokio clock: the journal's offsets (`+1.250s`)
    /// count from here.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// assert!(server.started_at() <= tokio::time::Instant::now());
    /// ```
    pub fn started_at(&self) -> tokio::time::Instant {
        self.state.journal.origin()
    }

    /// Every call that ends from now on, as it ends (its journal entry, ending and all
    /// response messages included): a test or an admin client can wait for a call
    /// instead of polling. A watcher that falls more than 256 calls behind misses the
    /// oldest and is told how many ([`broadcast::error::RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
    /// use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
    /// let server = FakeServer::in_memory();
    /// Stub::given(method("/pb.Greeter/SayHello"))
    ///     .respond_with(Reply::message(&HelloReply::default()))
    ///     .mount(&server);
    /// let mut ended = server.watch_calls();
    /// GreeterClient::new(server.channel()).say_hello(HelloRequest::default()).await.unwrap();
    /// let call = ended.recv().await.unwrap();
    /// assert_eq!(call.status_code(), Some(tonic::Code::Ok));
    /// # }
    /// ```
    pub fn watch_calls(&self) -> tokio::sync::broadcast::Receiver<ReceivedCall> {
        self.state.journal.watch()
    }

    /// Unmounts every stub (without verifying) and clears the journal.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.reset();
    /// ```
    pub fn reset(&self) {
        self.state.stubs.clear();
        self.state.journal.clear();
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    fn wait_limit(&self) -> Duration {
        self.state.options.wait_limit
    }

    fn timeout(
        &self,
        waited_for: String,
        limit: Duration,
        calls: Vec<ReceivedCall>,
    ) -> WaitTimeout {
        WaitTimeout::new(waited_for, limit, calls, self.state.journal.origin())
    }
}

/// The calls a bounded wait returned, or its panic with the calls received so far.
fn or_panic<T>(waited: Result<T, WaitTimeout>) -> T {
    waited.unwrap_or_else(|timeout| panic!("{timeout}"))
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let verdict = self.state.stubs.verify();
        self.stop_accepting();
        self.state.connections.shut_down();
        // Never panic while already panicking: that would abort and hide the first failure.
        if let Err(e) = verdict
            && !std::thread::panicking()
        {
            panic!("{e}");
        }
    }
}
