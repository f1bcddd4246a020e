//! The fake server: its transports (TCP 127.0.0.1 or an in-memory duplex), its stubs,
//! and its journal.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Status;

use super::call;
use super::faults::FailFirstCounts;
use super::journal::{Journal, ReceivedCall};
use super::matchers::CallRequest;
use super::reply::Script;
use super::stub::{Mounted, Stub, VerificationError};
use crate::memory;
use crate::method::MethodShape;

/// The HTTP/2 header-list limit when the server checks metadata size itself.
const RAISED_HEADER_LIST_LIMIT: u32 = 1024 * 1024;
/// How many stubs an UNIMPLEMENTED message lists as the closest.
const CLOSEST_STUBS: usize = 3;

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
    ///     .reject_malformed_timeouts(true)
    ///     .fault_headers(true)
    ///     .in_memory();
    /// ```
    pub fn builder() -> FakeServerBuilder {
        FakeServerBuilder::default()
    }

    async fn start_with(addr: SocketAddr, options: Options) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(options));
        let accept_state = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        accept_state.serve_connection(stream);
                    }
                    // Running out of file descriptors and the like pass; keep accepting.
                    Err(e) => tracing::warn!("grpc-chaos fake server: accept failed: {e}"),
                }
            }
        });
        let accept = accept.abort_handle();
        Ok(Self {
            state,
            addr: Some(addr),
            accept: Some(accept),
        })
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

    fn in_memory_with(options: Options) -> Self {
        Self {
            state: Arc::new(State::new(options)),
            addr: None,
            accept: None,
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
        memory::channel(move |server_end| state.serve_connection(server_end))
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

    /// Waits until at least `n` calls have arrived (not necessarily ended).
    ///
    /// ```
    /// # async fn f(server: grpc_chaos::fake::FakeServer) {
    /// let calls = server.wait_for_calls(2).await;
    /// # }
    /// ```
    pub async fn wait_for_calls(&self, n: usize) -> Vec<ReceivedCall> {
        self.state
            .journal
            .wait_until(|calls| calls.len() >= n)
            .await
    }

    /// Waits until at least `n` calls have ended (a status, a reset or a client cancel is
    /// recorded), and returns every call.
    ///
    /// ```
    /// # async fn f(server: grpc_chaos::fake::FakeServer) {
    /// let calls = server.wait_for_ended_calls(1).await;
    /// # }
    /// ```
    pub async fn wait_for_ended_calls(&self, n: usize) -> Vec<ReceivedCall> {
        self.state
            .journal
            .wait_until(|calls| calls.iter().filter(|c| !c.ending.is_in_progress()).count() >= n)
            .await
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
        self.state.draining.send_replace(true);
        loop {
            let task = self
                .state
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            match task {
                // A connection that ends in error has already been logged.
                Some(task) => {
                    // Should this wait be cut short, dropping the server still aborts it.
                    self.state
                        .awaited
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(task.abort_handle());
                    let _ = task.await;
                }
                None => return,
            }
        }
    }

    /// Drops every open connection at once, as a network failure would: calls in flight
    /// end (the journal records them as cancelled at this instant, the clients see
    /// UNAVAILABLE), and the server stays up for new connections.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.drop_connections();
    /// # }
    /// ```
    pub fn drop_connections(&self) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.state.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    /// Waits until no call has a live handler (every call has ended and been dropped).
    ///
    /// ```
    /// # async fn f(server: grpc_chaos::fake::FakeServer) {
    /// server.wait_for_idle().await;
    /// assert_eq!(server.live_calls(), 0);
    /// # }
    /// ```
    pub async fn wait_for_idle(&self) {
        let journal = &self.state.journal;
        journal.wait_until(|_| journal.live() == 0).await;
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
        self.state.verify()
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

    /// Unmounts every stub (without verifying) and clears the journal.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// server.reset();
    /// ```
    pub fn reset(&self) {
        self.state.stubs().clear();
        self.state.journal.clear();
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let verdict = self.state.verify();
        self.stop_accepting();
        self.state.shut_down();
        // Never panic while already panicking: that would abort and hide the first failure.
        if let Err(e) = verdict {
            if !std::thread::panicking() {
                panic!("{e}");
            }
        }
    }
}

/// How a fake server behaves beyond its stubs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Options {
    /// Call shapes by path, for the "call started" log; others log as unknown.
    pub(crate) shapes: HashMap<String, MethodShape>,
    pub(crate) enforce_deadlines: bool,
    pub(crate) reject_malformed_timeouts: bool,
    pub(crate) fault_headers: bool,
    pub(crate) journal_limit: Option<usize>,
    pub(crate) metadata_limit: Option<usize>,
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

    /// Answers a malformed `grpc-timeout` (`abc`, `+1S`, `123456789S`, `1X`, empty …) with
    /// INTERNAL naming the header, instead of recording it and going on as tonic does.
    ///
    /// ```
    /// let b = grpc_chaos::fake::FakeServer::builder().reject_malformed_timeouts(true);
    /// ```
    pub fn reject_malformed_timeouts(mut self, on: bool) -> Self {
        self.options.reject_malformed_timeouts = on;
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
        self.options.journal_limit = Some(calls);
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

    /// Tells the server the call shape of these methods, so that its "call started" log
    /// says whether each streams (the HTTP/2 request does not say; other methods log as
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

    /// Builds an in-memory server (see [`FakeServer::in_memory`]).
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::builder().in_memory();
    /// ```
    pub fn in_memory(self) -> FakeServer {
        FakeServer::in_memory_with(self.options)
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
        FakeServer::start_with(addr, self.options).await
    }
}

/// What the server and its connections share.
#[derive(Debug)]
pub(crate) struct State {
    stubs: Mutex<Vec<Mounted>>,
    pub(crate) journal: Arc<Journal>,
    next_stub: AtomicU64,
    /// The tokio instant the server was made: failure messages give times from it.
    origin: Instant,
    /// Connection tasks (and the accept loop), aborted when the server is dropped.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Tasks taken out of `tasks` by a graceful shutdown, still aborted on drop.
    awaited: Mutex<Vec<AbortHandle>>,
    /// Tells every connection to finish gracefully (GOAWAY, then let streams end).
    draining: watch::Sender<bool>,
    pub(crate) options: Options,
    pub(crate) fail_counts: FailFirstCounts,
}

impl State {
    fn new(options: Options) -> Self {
        Self {
            journal: Arc::new(Journal::with_limit(options.journal_limit)),
            options,
            fail_counts: FailFirstCounts::default(),
            stubs: Mutex::new(Vec::new()),
            next_stub: AtomicU64::new(0),
            origin: Instant::now(),
            tasks: Mutex::new(Vec::new()),
            awaited: Mutex::new(Vec::new()),
            draining: watch::channel(false).0,
        }
    }

    fn stubs(&self) -> MutexGuard<'_, Vec<Mounted>> {
        self.stubs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn shut_down(&self) {
        for task in self
            .awaited
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    /// Serves HTTP/2 on one connection, on the current runtime.
    fn serve_connection<I>(self: &Arc<Self>, io: I)
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let state = Arc::clone(self);
        let service =
            hyper::service::service_fn(move |request| call::serve(Arc::clone(&state), request));
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        if self.options.metadata_limit.is_some() {
            builder.max_header_list_size(RAISED_HEADER_LIST_LIMIT);
        }
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let mut draining = self.draining.subscribe();
        let task = tokio::spawn(async move {
            tokio::pin!(connection);
            let drain = async move {
                // The guard `wait_for` returns must not live across an await.
                let _ = draining.wait_for(|d| *d).await.is_ok();
            };
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = drain => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("grpc-chaos fake server: connection ended: {e}");
            }
        });
        self.track(task);
    }

    pub(crate) fn mount(&self, stub: Stub, scoped: bool) -> u64 {
        let id = self.next_stub.fetch_add(1, Ordering::SeqCst);
        self.stubs().push(Mounted::new(id, stub, scoped));
        id
    }

    /// Whether the call must be read up to its first message before matching: only when
    /// a stub that could answer it needs the message. Reading otherwise would deadlock a
    /// bidi client that waits for the response headers before it sends.
    pub(crate) fn needs_message_for(&self, request: &CallRequest) -> bool {
        let stubs = self.stubs();
        // The stub that would answer if every message matcher held.
        let best = stubs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.could_match_without_message(request))
            .min_by_key(|(i, s)| (s.priority(), *i));
        best.is_some_and(|(_, s)| s.needs_message())
    }

    /// Picks the stub for a call and resolves its reply; UNIMPLEMENTED when none matches.
    pub(crate) fn answer(&self, call_id: usize, request: &CallRequest) -> (Option<String>, Script) {
        let mut stubs = self.stubs();
        let best = stubs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.matches(request))
            .min_by_key(|(i, s)| (s.priority(), *i))
            .map(|(i, _)| i);
        if let Some(i) = best {
            let stub = &mut stubs[i];
            let (label, reply) = (stub.label(), stub.answer(call_id));
            // The reply may run user code (a responder): never under the stubs' lock.
            drop(stubs);
            return (Some(label), reply.resolve(request));
        }
        let message = unmatched_message(&stubs, request);
        (None, Script::from_status(Status::unimplemented(message)))
    }

    pub(crate) fn calls_of(&self, stub_id: u64) -> Vec<ReceivedCall> {
        let ids = self
            .stubs()
            .iter()
            .find(|s| s.id == stub_id)
            .map(|s| s.calls.clone())
            .unwrap_or_default();
        let all = self.journal.snapshot();
        ids.into_iter()
            .filter_map(|id| all.get(id).cloned())
            .collect()
    }

    fn verify_where(&self, pick: impl Fn(&Mounted) -> bool) -> Result<(), VerificationError> {
        let unmet: Vec<String> = self
            .stubs()
            .iter()
            .filter(|s| pick(s))
            .filter_map(Mounted::unmet)
            .collect();
        if unmet.is_empty() {
            return Ok(());
        }
        let calls = self
            .journal
            .snapshot()
            .iter()
            .map(|c| c.summary(self.origin))
            .collect();
        Err(VerificationError::new(unmet, calls))
    }

    pub(crate) fn verify(&self) -> Result<(), VerificationError> {
        self.verify_where(|_| true)
    }

    pub(crate) fn unmount_and_verify(&self, stub_id: u64) -> Result<(), VerificationError> {
        let verdict = self.verify_where(|s| s.id == stub_id && s.scoped);
        self.stubs().retain(|s| s.id != stub_id);
        verdict
    }
}

/// The UNIMPLEMENTED message: the method, then the closest stubs and what failed.
fn unmatched_message(stubs: &[Mounted], request: &CallRequest) -> String {
    let mut message = format!("grpc-chaos: no stub matched {}", request.method);
    if stubs.is_empty() {
        message.push_str("; no stubs are mounted");
        return message;
    }
    let mut scored: Vec<_> = stubs.iter().map(|s| (s, s.score(request))).collect();
    scored.sort_by_key(|(_, (held, _))| std::cmp::Reverse(*held));
    let closest: Vec<String> = scored
        .iter()
        .take(CLOSEST_STUBS)
        .map(|(stub, (held, failed))| {
            let why = if failed.is_empty() {
                "all matchers hold but it is used up".to_string()
            } else {
                format!("failing: {}", failed.join(", "))
            };
            format!(
                "{:?} ({held} of {} matchers hold; {why})",
                stub.label(),
                held + failed.len()
            )
        })
        .collect();
    message.push_str("; closest stubs: ");
    message.push_str(&closest.join("; "));
    message
}
