//! How the fake server is reached: HTTP/2 served by hyper on each connection (a TCP
//! socket or an in-memory pipe), connection tasks tracked so the server can drain them
//! gracefully or drop them at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};
use tower::ServiceExt as _;

use super::call;
use super::hygiene::{read_preface, Counted, OpenStreams, Prefaced, StreamGuard};
use super::services::ResponseBody;
use super::state::State;

/// How long a draining connection may sit with no open stream before it is closed.
const DRAINED_AFTER: Duration = Duration::from_secs(1);

/// The HTTP/2 header-list limit when the server checks metadata size itself.
const RAISED_HEADER_LIST_LIMIT: u32 = 1024 * 1024;

/// The server's connection tasks.
#[derive(Debug)]
pub(crate) struct Connections {
    /// How many connections are open (counted from accept to close).
    open: Arc<AtomicUsize>,
    /// Connection tasks (and the accept loop), aborted when the server is dropped.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Tasks taken out of `tasks` by a graceful shutdown, still aborted on drop.
    awaited: Mutex<Vec<AbortHandle>>,
    /// Tells every connection to finish gracefully (GOAWAY, then let streams end).
    draining: watch::Sender<bool>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            open: Arc::new(AtomicUsize::new(0)),
            tasks: Mutex::new(Vec::new()),
            awaited: Mutex::new(Vec::new()),
            draining: watch::channel(false).0,
        }
    }
}

impl Connections {
    /// How many connections are open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Counts a connection as open, unless `cap` are already; the count drops with the
    /// guard.
    fn admit(&self, cap: Option<usize>) -> Option<OpenConnection> {
        let admitted = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                cap.is_none_or(|cap| n < cap).then_some(n + 1)
            });
        admitted
            .ok()
            .map(|_| OpenConnection(Arc::clone(&self.open)))
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Tells every connection to finish, and waits until each has.
    pub(crate) async fn drain(&self) {
        self.draining.send_replace(true);
        loop {
            let task = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match task {
                // A connection that ends in error has already been logged.
                Some(task) => {
                    // Should this wait be cut short, dropping the server still aborts it.
                    self.awaited
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(task.abort_handle());
                    let _ = task.await;
                }
                None => return,
            }
        }
    }

    /// Drops every open connection at once.
    pub(crate) fn drop_all(&self) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
        }
    }

    /// Aborts every task, awaited ones included.
    pub(crate) fn shut_down(&self) {
        for task in self
            .awaited
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        self.drop_all();
    }
}

/// One open connection, counted until dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves HTTP/2 on one connection, on the current runtime, within the server's
/// connection limits (see `hygiene`).
pub(crate) fn serve_connection<I>(state: &Arc<State>, io: I)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let hygiene = state.options.hygiene;
    let Some(open) = state.connections.admit(hygiene.max_connections) else {
        tracing::warn!(
            limit = hygiene.max_connections,
            "grpc-chaos fake server: at the connection limit; closing a new connection"
        );
        return;
    };
    let for_calls = Arc::clone(state);
    let streams = OpenStreams::new();
    let for_streams = streams.clone();
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        respond(Arc::clone(&for_calls), for_streams.open(), request)
    });
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    if state.options.metadata_limit.is_some() {
        builder.max_header_list_size(RAISED_HEADER_LIST_LIMIT);
    }
    if let Some((interval, timeout)) = hygiene.keepalive {
        builder
            .keep_alive_interval(interval)
            .keep_alive_timeout(timeout);
    }
    let mut draining = state.connections.draining.subscribe();
    let task = tokio::spawn(async move {
        let _open = open;
        let io = match hygiene.handshake_timeout {
            None => Prefaced::plain(io),
            Some(limit) => match tokio::time::timeout(limit, read_preface(io)).await {
                Ok(Ok(io)) => io,
                Ok(Err(e)) => {
                    tracing::debug!("grpc-chaos fake server: closed before its preface: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(
                        "grpc-chaos fake server: no HTTP/2 preface within {limit:?}; closing"
                    );
                    return;
                }
            },
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let drain = async move {
            // The guard `wait_for` returns must not live across an await.
            let _ = draining.wait_for(|d| *d).await.is_ok();
        };
        let idle = async {
            match hygiene.idle_timeout {
                Some(limit) => streams.idle_for(limit).await,
                None => std::future::pending().await,
            }
        };
        // Biased, the connection first: the task wakes a few times a call, and an
        // unbiased `select!` draws a random starting branch each time (~50
        // instructions, callgrind); draining and idleness are rare and lose nothing by
        // waiting for the connection's poll.
        let ended = tokio::select! {
            biased;
            ended = connection.as_mut() => ended,
            () = drain => {
                connection.as_mut().graceful_shutdown();
                // hyper finishes a graceful shutdown when the client acks its PING; some
                // (grpcio, seen here) never do once told GOAWAY. A connection with no
                // stream open for a moment is done either way.
                tokio::select! {
                    biased;
                    ended = connection.as_mut() => ended,
                    () = streams.idle_for(DRAINED_AFTER) => Ok(()),
                }
            }
            () = idle => {
                tracing::debug!("grpc-chaos fake server: idle connection; closing it");
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!("grpc-chaos fake server: connection ended: {e}");
        }
    });
    state.connections.track(task);
}

/// Answers one request: a call to an added service goes to it, any other to the stubs;
/// either way its stream counts as open until the body is dropped.
async fn respond(
    state: Arc<State>,
    stream: StreamGuard,
    request: http::Request<Incoming>,
) -> Result<http::Response<Counted<ResponseBody>>, call::BoxError> {
    let response = match state.options.services.route(request.uri().path()) {
        Some(routes) => {
            let Ok(response) = routes.oneshot(request).await;
            response.map(ResponseBody::Service)
        }
        None => call::serve(state, request).await?.map(ResponseBody::Call),
    };
    Ok(response.map(|body| Counted {
        body,
        _stream: stream,
    }))
}

/// Accepts TCP connections on `listener` until aborted, serving each.
pub(crate) fn accept_loop(state: Arc<State>, listener: TcpListener) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    serve_connection(&state, stream);
                }
                // Running out of file descriptors and the like pass; keep accepting.
                Err(e) => tracing::warn!("grpc-chaos fake server: accept failed: {e}"),
            }
        }
    })
    .abort_handle()
}
