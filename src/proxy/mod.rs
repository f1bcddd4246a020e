//! A gRPC-aware chaos proxy: it forwards every call to a real server, in all four call
//! shapes, message by message as they arrive (no whole-stream buffering), with headers
//! and trailers passed through as they are, and applies the [`Fault`] of the first
//! [`FaultRule`] that picks the call: delays before forwarding, before the response
//! headers or before a response message; a status without calling the upstream; an
//! abort or a stream reset after N messages; metadata edits; a `grpc-timeout` stripped
//! or shrunk on its way upstream; trailers dropped.
//!
//! Request metadata over 16 KiB gets RESOURCE_EXHAUSTED from the proxy, the call alone
//! (not HTTP 431, nor a GOAWAY that would end the client's other calls). The proxy
//! enforces the client's deadline itself: when its `grpc-timeout` passes, the
//! client gets DEADLINE_EXCEEDED (status 4) and the upstream call is cancelled. An
//! upstream it cannot reach gives UNAVAILABLE; a stream the upstream resets gives the
//! code the spec maps its HTTP/2 error code to (REFUSED_STREAM: UNAVAILABLE, CANCEL:
//! CANCELLED, ENHANCE_YOUR_CALM: RESOURCE_EXHAUSTED, INADEQUATE_SECURITY:
//! PERMISSION_DENIED, others INTERNAL).
//!
//! Like the fake, it serves over TCP or in memory, so a test runs client, proxy and
//! server on one paused clock and asserts exact instants:
//!
//! ```
//! use std::time::Duration;
//! use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
//! use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
//! use grpc_chaos::proxy::{Fault, FaultRule, Proxy, Upstream};
//! use tokio::time::Instant;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let server = FakeServer::in_memory();
//! Stub::given(method("/pb.Greeter/SayHello"))
//!     .respond_with(Reply::message(&HelloReply { message: "hi".into() }))
//!     .mount(&server);
//! let proxy = Proxy::builder(Upstream::fake(&server))
//!     .rule(FaultRule::given(method("/pb.Greeter/SayHello")).with(Fault::new().delay(Duration::from_millis(250))))
//!     .in_memory();
//!
//! let start = Instant::now();
//! let reply = GreeterClient::new(proxy.channel()).say_hello(HelloRequest::default()).await.unwrap();
//! assert_eq!(reply.into_inner().message, "hi");
//! assert_eq!(server.received_calls()[0].arrived_at - start, Duration::from_millis(250));
//! # }
//! ```

mod call;
mod coalesce;
mod fault;
mod headers;
mod journal;
mod record;
mod request;
mod upstream;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use tokio::sync::{broadcast, watch, Notify};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint};

use crate::fake::faults::FailFirstCounts;
use crate::fake::journal::{Journal, JournalLimits};
use crate::fake::services::Services;
use crate::fake::{CallRequest, WaitTimeout, DEFAULT_WAIT_LIMIT};
use crate::rng::SplitMix64;

pub use fault::{Fault, FaultRule};
pub use journal::{AppliedFault, ProxiedCall};
pub use record::RecordedCall;
pub use upstream::Upstream;

use upstream::Link;

/// Request metadata over this gets RESOURCE_EXHAUSTED from the proxy (the limit HTTP/2
/// servers such as tonic's apply by default).
const METADATA_LIMIT: usize = 16 * 1024;
/// The HTTP/2 header-list limit, raised so that oversized metadata reaches the check.
const RAISED_HEADER_LIST_LIMIT: u32 = 1024 * 1024;

/// What every connection of one proxy shares.
pub(crate) struct Shared {
    upstream: Upstream,
    /// Where completed calls go, when the proxy records.
    recorder: Option<record::Sink>,
    /// Every call, unless the builder turned it off.
    journal: Option<Arc<Journal<ProxiedCall>>>,
    /// Whether `x-chaos-*` request headers choose faults, and their fail-first counts.
    fault_headers: bool,
    fail_counts: FailFirstCounts,
    /// Real services the proxy answers itself (an admin API), not forwarded.
    services: Services,
    /// The rules, each with what the journal says of it (described once, at start).
    rules: Vec<(FaultRule, AppliedFault)>,
    rng: Mutex<SplitMix64>,
    draining: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Calls whose response has not been dropped yet.
    live: AtomicUsize,
    /// Calls a fault is being applied to now, and the cap on them.
    active_faults: Arc<AtomicUsize>,
    max_active_faults: Option<usize>,
    /// Downstream connections open.
    connections: AtomicUsize,
    /// Told each time a call or a connection ends.
    ended: Notify,
    /// When the proxy was built, on the tokio clock.
    started_at: Instant,
}

impl Shared {
    /// The fault of the first rule that picks the call, what it is for the journal, and
    /// the token that counts it as active (none when the cap on active faults is
    /// reached: the call is forwarded untouched).
    pub(crate) fn pick(&self, call: &CallRequest) -> Option<(Fault, &AppliedFault, ActiveFault)> {
        let (rule, applied) = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            self.rules.iter().find(|(r, _)| r.picks(call, &mut rng))?
        };
        tracing::debug!(rule = %applied.rule, fault = %applied.fault, method = %call.method, "grpc-chaos proxy: fault applied");
        let token = self.admit(&rule.fault, &call.method)?;
        Some((rule.fault.clone(), applied, token))
    }

    /// The token that counts a fault as active while its call lasts; `None` when the
    /// cap on active faults is reached (the call then goes untouched). A fault that does
    /// nothing is not counted.
    pub(crate) fn admit(&self, fault: &Fault, method: &str) -> Option<ActiveFault> {
        if !fault.is_active() {
            return Some(ActiveFault(None));
        }
        let admitted = self
            .active_faults
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                self.max_active_faults
                    .is_none_or(|cap| n < cap)
                    .then_some(n + 1)
            });
        match admitted {
            Ok(_) => Some(ActiveFault(Some(Arc::clone(&self.active_faults)))),
            Err(_) => {
                tracing::debug!(%method, "grpc-chaos proxy: at the cap on active faults; forwarding untouched");
                None
            }
        }
    }

    /// Whether the call's first request message must be read before a rule is picked:
    /// the first rule that could pick it (its other matchers holding) reads it. A rule
    /// before it that picks every such call for certain settles it without the message.
    pub(crate) fn needs_message_for(&self, call: &CallRequest) -> bool {
        for (rule, _) in &self.rules {
            if !rule.could_pick_without_message(call) {
                continue;
            }
            if rule.needs_message() {
                return true;
            }
            if rule.percentage >= 100.0 {
                return false;
            }
        }
        false
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

/// Builds a [`Proxy`]: its upstream, its rules, its seed.
///
/// ```
/// let b = grpc_chaos::proxy::Proxy::builder(grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap())).seed(7);
/// ```
#[must_use = "a builder does nothing until it starts a proxy"]
pub struct ProxyBuilder {
    upstream: Upstream,
    max_active_faults: Option<usize>,
    recorder: Option<record::Sink>,
    journal: JournalLimits,
    services: Services,
    fault_headers: bool,
    rules: Vec<FaultRule>,
    seed: u64,
}

impl ProxyBuilder {
    /// Adds a rule; the first rule that picks a call applies.
    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules, in order.
    pub fn rules(mut self, rules: impl IntoIterator<Item = FaultRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Hands each completed call to `sink` as the upstream answered it (its first
    /// request message, response headers, messages with their timing, trailers and
    /// status), for a scenario that replays it
    /// ([`Scenario::recorded_stub`](crate::scenario::Scenario::recorded_stub)).
    ///
    /// ```
    /// use grpc_chaos::proxy::{Proxy, Upstream};
    /// let b = Proxy::builder(Upstream::tcp("127.0.0.1:50051".parse().unwrap()))
    ///     .record(|call| println!("{} answered with {:?}", call.method, call.status));
    /// ```
    pub fn record(mut self, sink: impl Fn(RecordedCall) + Send + Sync + 'static) -> Self {
        self.recorder = Some(Arc::new(sink));
        self
    }

    /// At most `n` calls have a fault applied at once, as Envoy's `max_active_faults`:
    /// past the cap, a call a rule picks is forwarded untouched. Unlimited by default.
    ///
    /// ```
    /// let b = grpc_chaos::proxy::Proxy::builder(grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap()))
    ///     .max_active_faults(100);
    /// ```
    pub fn max_active_faults(mut self, n: usize) -> Self {
        self.max_active_faults = Some(n);
        self
    }

    /// Seeds the rules' percentages, so a run replays.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Lets the client choose a call's fault with the fake's `x-chaos-*` request headers
    /// ([`crate::fake::faults`]), which the proxy strips before forwarding (all but
    /// `x-chaos-session`). A call's headers take the place of the rules for it; a bad
    /// header is INVALID_ARGUMENT naming it. Off by default.
    ///
    /// | header | through the proxy |
    /// |---|---|
    /// | `x-chaos-delay-ms: N` | the response headers are held N ms (before forwarding, with `x-chaos-status` alone) |
    /// | `x-chaos-status`, `x-chaos-message` | answered with that status, without the upstream |
    /// | `x-chaos-abort-after: N` | N response messages pass, then `x-chaos-status` (default UNAVAILABLE) |
    /// | `x-chaos-header`, `x-chaos-trailer: key=value` | set on the response headers or trailers |
    /// | `x-chaos-hang: true` | never forwarded: the client's deadline (which the proxy enforces) or cancel ends it |
    /// | `x-chaos-fail-first: N`, `x-chaos-key: K`, `x-chaos-pushback-ms` | the first N calls with key K answered with `x-chaos-status` (default UNAVAILABLE), later ones forwarded |
    ///
    /// ```
    /// let b = grpc_chaos::proxy::Proxy::builder(grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap()))
    ///     .fault_headers(true);
    /// ```
    pub fn fault_headers(mut self, on: bool) -> Self {
        self.fault_headers = on;
        self
    }

    /// Keeps only the latest `calls` calls in the journal (the oldest go first). With 0
    /// the proxy keeps no journal and does none of its work. Every call is kept by
    /// default, as the fake keeps them.
    ///
    /// ```
    /// let b = grpc_chaos::proxy::Proxy::builder(grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap()))
    ///     .journal_limit(1000);
    /// ```
    pub fn journal_limit(mut self, calls: usize) -> Self {
        self.journal.calls = Some(calls);
        self
    }

    /// Keeps at most `bytes` of request and response messages in the journal, all calls
    /// together, as [`FakeServerBuilder::journal_bytes`](crate::fake::FakeServerBuilder::journal_bytes) does.
    ///
    /// ```
    /// let b = grpc_chaos::proxy::Proxy::builder(grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap()))
    ///     .journal_bytes(64 << 20);
    /// ```
    pub fn journal_bytes(mut self, bytes: usize) -> Self {
        self.journal.bytes = Some(bytes);
        self
    }

    /// Keeps at most the first `bytes` of each message in the journal, and its size.
    ///
    /// ```
    /// let b = grpc_chaos::proxy::Proxy::builder(grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap()))
    ///     .journal_message_bytes(256 << 10);
    /// ```
    pub fn journal_message_bytes(mut self, bytes: usize) -> Self {
        self.journal.message_bytes = Some(bytes);
        self
    }

    /// Answers calls to this real tonic service itself, on the same port, instead of
    /// forwarding them (an admin API, health): they get no fault and no journal entry.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use grpc_chaos::fake::FakeServer;
    /// use grpc_chaos::pb::{greeter_client::GreeterClient, greeter_server::{Greeter, GreeterServer}};
    /// use grpc_chaos::pb::{HelloReply, HelloRequest};
    /// use grpc_chaos::proxy::{Proxy, Upstream};
    /// use tonic::{Request, Response, Status};
    ///
    /// #[derive(Clone)]
    /// struct Local;
    /// #[tonic::async_trait]
    /// impl Greeter for Local {
    ///     async fn say_hello(&self, r: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
    ///         Ok(Response::new(HelloReply { message: format!("local {}", r.into_inner().name) }))
    ///     }
    /// #   type SayHelloStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
    /// #   async fn say_hello_stream(&self, _: Request<HelloRequest>) -> Result<Response<Self::SayHelloStreamStream>, Status> { Err(Status::unimplemented("")) }
    /// #   async fn say_hello_client_stream(&self, _: Request<tonic::Streaming<HelloRequest>>) -> Result<Response<HelloReply>, Status> { Err(Status::unimplemented("")) }
    /// #   type SayHelloBidiStreamStream = tokio_stream::Empty<Result<HelloReply, Status>>;
    /// #   async fn say_hello_bidi_stream(&self, _: Request<tonic::Streaming<HelloRequest>>) -> Result<Response<Self::SayHelloBidiStreamStream>, Status> { Err(Status::unimplemented("")) }
    /// }
    ///
    /// let upstream = FakeServer::in_memory();
    /// let proxy = Proxy::builder(Upstream::fake(&upstream))
    ///     .add_service(GreeterServer::new(Local))
    ///     .in_memory();
    /// let reply = GreeterClient::new(proxy.channel())
    ///     .say_hello(HelloRequest { name: "Ada".into() })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(reply.into_inner().message, "local Ada");
    /// assert!(upstream.received_calls().is_empty() && proxy.received_calls().is_empty());
    /// # }
    /// ```
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.services.add(service);
        self
    }

    fn shared(self) -> Arc<Shared> {
        let journal = (self.journal.calls != Some(0)).then(|| Arc::new(Journal::new(self.journal)));
        Arc::new(Shared {
            started_at: journal.as_ref().map_or_else(Instant::now, |j| j.origin()),
            upstream: self.upstream,
            recorder: self.recorder,
            journal,
            fault_headers: self.fault_headers,
            fail_counts: FailFirstCounts::default(),
            services: self.services,
            rules: self
                .rules
                .into_iter()
                .map(|rule| {
                    let applied = AppliedFault {
                        rule: rule.label(),
                        fault: rule.fault.to_string(),
                    };
                    (rule, applied)
                })
                .collect(),
            rng: Mutex::new(SplitMix64::new(self.seed)),
            draining: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            ended: Notify::new(),
            active_faults: Arc::new(AtomicUsize::new(0)),
            max_active_faults: self.max_active_faults,
        })
    }

    /// A proxy served in memory: [`Proxy::channel`] connects to it.
    pub fn in_memory(self) -> Proxy {
        Proxy {
            shared: self.shared(),
            addr: None,
            accept: None,
        }
    }

    /// Starts on TCP at `addr`.
    ///
    /// # Errors
    /// The bind error.
    pub async fn start_on(self, addr: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = self.shared();
        let accepting = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        serve_connection(&accepting, stream);
                    }
                    Err(e) => tracing::warn!("grpc-chaos proxy: accept failed: {e}"),
                }
            }
        });
        Ok(Proxy {
            shared,
            addr: Some(addr),
            accept: Some(accept.abort_handle()),
        })
    }
}

/// A running proxy. Dropping it stops it.
pub struct Proxy {
    shared: Arc<Shared>,
    addr: Option<SocketAddr>,
    accept: Option<AbortHandle>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("upstream", &self.shared.upstream)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Proxy {
    /// Starts building a proxy in front of `upstream`.
    pub fn builder(upstream: Upstream) -> ProxyBuilder {
        ProxyBuilder {
            upstream,
            max_active_faults: None,
            recorder: None,
            journal: JournalLimits::default(),
            services: Services::default(),
            fault_headers: false,
            rules: Vec::new(),
            seed: 0,
        }
    }

    /// Where it listens, on TCP.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// How many calls are in flight (their responses not yet done).
    pub fn live_calls(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// How many downstream connections are open.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until no call is in flight and no downstream connection is open (the
    /// clients have gone), on the tokio clock.
    pub async fn wait_for_idle(&self) {
        loop {
            let ended = self.shared.ended.notified();
            tokio::pin!(ended);
            // Registered before the counts are read, so an end in between is not missed.
            ended.as_mut().enable();
            if self.live_calls() == 0 && self.open_connections() == 0 {
                return;
            }
            ended.await;
        }
    }

    /// Every call the journal keeps, oldest first (none when the journal is off).
    pub fn received_calls(&self) -> Vec<ProxiedCall> {
        self.shared
            .journal
            .as_ref()
            .map(|j| j.snapshot())
            .unwrap_or_default()
    }

    /// Each call as it ends, from now on (a receiver that never yields when the journal
    /// is off). A receiver more than 256 calls behind misses the oldest.
    pub fn watch_calls(&self) -> broadcast::Receiver<ProxiedCall> {
        match &self.shared.journal {
            Some(journal) => journal.watch(),
            None => broadcast::channel(1).1,
        }
    }

    /// Forgets the calls `forget` picks; the others stay, in order.
    pub fn clear_received_calls_where(&self, forget: impl Fn(&ProxiedCall) -> bool) {
        if let Some(journal) = &self.shared.journal {
            journal.clear_where(forget);
        }
    }

    /// The tokio instant the proxy was built: the journal's times are offsets from it.
    pub fn started_at(&self) -> Instant {
        self.shared.started_at
    }

    /// Waits until at least `n` calls have ended, and returns the journal.
    ///
    /// # Panics
    /// After [`DEFAULT_WAIT_LIMIT`] on the tokio clock, with the calls received by then
    /// (or at once, when the journal is off).
    pub async fn wait_for_ended_calls(&self, n: usize) -> Vec<ProxiedCall> {
        self.wait_for_ended_calls_within(n, DEFAULT_WAIT_LIMIT)
            .await
            .unwrap_or_else(|timeout| panic!("{timeout}"))
    }

    /// Waits up to `limit` on the tokio clock for at least `n` calls to end.
    ///
    /// # Errors
    /// A [`WaitTimeout`] with the calls received so far.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use grpc_chaos::proxy::{Proxy, Upstream};
    /// let proxy = Proxy::builder(Upstream::tcp("127.0.0.1:9".parse().unwrap())).in_memory();
    /// let limit = std::time::Duration::from_secs(1);
    /// assert!(proxy.wait_for_ended_calls_within(1, limit).await.is_err());
    /// # }
    /// ```
    pub async fn wait_for_ended_calls_within(
        &self,
        n: usize,
        limit: Duration,
    ) -> Result<Vec<ProxiedCall>, WaitTimeout> {
        let waited_for = format!("{n} ended call{}", if n == 1 { "" } else { "s" });
        let Some(journal) = &self.shared.journal else {
            return Err(WaitTimeout::new(
                waited_for,
                Duration::ZERO,
                Vec::new(),
                self.started_at(),
            ));
        };
        let ended = |calls: &[ProxiedCall]| {
            calls
                .iter()
                .filter(|c| !c.call.ending.is_in_progress())
                .count()
                >= n
        };
        journal.wait_until(limit, ended).await.map_err(|calls| {
            let calls = calls.into_iter().map(|c| c.call).collect();
            WaitTimeout::new(waited_for, limit, calls, journal.origin())
        })
    }

    /// A channel to the proxy: in memory, or to its TCP address.
    pub fn channel(&self) -> Channel {
        match self.addr {
            Some(addr) => Endpoint::from_shared(format!("http://{addr}"))
                .map(|e| e.connect_lazy())
                .unwrap_or_else(|_| unreachable!("a socket address makes a valid URI")),
            None => {
                let shared = Arc::clone(&self.shared);
                crate::memory::channel(move |server_end| serve_connection(&shared, server_end))
            }
        }
    }

    /// Stops accepting, tells every connection to finish (GOAWAY), and waits for the
    /// calls in flight to end.
    pub async fn shutdown(&self) {
        if let Some(accept) = &self.accept {
            accept.abort();
        }
        self.shared.draining.send_replace(true);
        loop {
            let task = self
                .shared
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            match task {
                // A connection that ends in error has been logged.
                Some(task) => drop(task.await),
                None => return,
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accept) = &self.accept {
            accept.abort();
        }
        for task in self
            .shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Counts a call as one with an active fault until dropped.
pub(crate) struct ActiveFault(Option<Arc<AtomicUsize>>);

impl Drop for ActiveFault {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Counts a downstream connection open until dropped.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

/// Serves HTTP/2 on one downstream connection, with its own link upstream.
fn serve_connection<I>(shared: &Arc<Shared>, io: I)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let link = Arc::new(Link::new(shared.upstream.clone()));
    let for_drop = Arc::clone(&link);
    let for_calls = Arc::clone(shared);
    let service = hyper::service::service_fn(move |request| {
        call::forward(Arc::clone(&for_calls), Arc::clone(&link), request)
    });
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    builder.max_header_list_size(RAISED_HEADER_LIST_LIMIT);
    let mut draining = shared.draining.subscribe();
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let open = Arc::clone(shared);
    let task = tokio::spawn(async move {
        let _open = Open(open);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let drain = async move {
            // The guard `wait_for` returns must not live across an await.
            let _ = draining.wait_for(|d| *d).await.is_ok();
        };
        // Biased, the connection first, as the fake's connection task (see there).
        let ended = tokio::select! {
            biased;
            ended = connection.as_mut() => ended,
            () = drain => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
            // Dropping the connection future closes the socket under every call on it.
            () = for_drop.dropped() => Ok(()),
        };
        if let Err(e) = ended {
            tracing::debug!("grpc-chaos proxy: connection ended: {e}");
        }
    });
    shared.track(task);
}
