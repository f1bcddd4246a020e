//! Where the proxy forwards to: one HTTP/2 connection upstream for each connection
//! downstream, opened at its first call and opened again after it fails.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::sync::Mutex;

use super::request::RequestBody;

/// A byte stream to the upstream server.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

type Connecting = Pin<Box<dyn Future<Output = io::Result<Box<dyn Io>>> + Send>>;

/// The server a proxy forwards to: over TCP, or in memory (a [`FakeServer`](crate::fake::FakeServer)
/// or a tonic server served with [`memory::incoming`](crate::memory::incoming)).
///
/// ```
/// let upstream = grpc_chaos::proxy::Upstream::tcp("127.0.0.1:50051".parse().unwrap());
/// ```
#[derive(Clone)]
pub struct Upstream {
    connect: Arc<dyn Fn() -> Connecting + Send + Sync>,
    name: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Upstream").field(&self.name).finish()
    }
}

impl Upstream {
    /// A server on TCP at `addr`.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            connect: Arc::new(move || {
                Box::pin(async move {
                    let stream = tokio::net::TcpStream::connect(addr).await?;
                    let _ = stream.set_nodelay(true);
                    Ok(Box::new(stream) as Box<dyn Io>)
                })
            }),
            name: addr.to_string(),
        }
    }

    /// A server in memory: `connect` hands out the client end of a new connection (see
    /// [`memory::Connector::connect`](crate::memory::Connector::connect) and
    /// [`FakeServer::dialer`](crate::fake::FakeServer::dialer)).
    ///
    /// ```
    /// let (_incoming, connector) = grpc_chaos::memory::incoming();
    /// let upstream = grpc_chaos::proxy::Upstream::in_memory(move || connector.connect());
    /// ```
    pub fn in_memory(connect: impl Fn() -> DuplexStream + Send + Sync + 'static) -> Self {
        Self {
            connect: Arc::new(move || {
                let io = connect();
                Box::pin(async move { Ok(Box::new(io) as Box<dyn Io>) })
            }),
            name: "in memory".to_string(),
        }
    }

    /// A fake server, wherever it listens.
    ///
    /// ```
    /// let server = grpc_chaos::fake::FakeServer::in_memory();
    /// let upstream = grpc_chaos::proxy::Upstream::fake(&server);
    /// ```
    pub fn fake(server: &crate::fake::FakeServer) -> Self {
        match server.addr() {
            Some(addr) => Self::tcp(addr),
            None => Self::in_memory(server.dialer()),
        }
    }
}

/// One downstream connection's link upstream, and the switch that drops the
/// downstream connection.
pub(crate) struct Link {
    upstream: Upstream,
    sender: Mutex<Option<SendRequest<RequestBody>>>,
    dropped: tokio::sync::watch::Sender<bool>,
}

impl Link {
    pub(crate) fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            sender: Mutex::new(None),
            dropped: tokio::sync::watch::channel(false).0,
        }
    }

    /// Drops the downstream connection this link serves.
    pub(crate) fn drop_connection(&self) {
        self.dropped.send_replace(true);
    }

    /// Resolves once [`drop_connection`](Self::drop_connection) is called.
    pub(crate) async fn dropped(&self) {
        let mut dropped = self.dropped.subscribe();
        // The guard `wait_for` returns must not live across an await.
        let _ = dropped.wait_for(|d| *d).await.is_ok();
    }

    /// A sender ready for the next request, connecting (again) when needed.
    pub(crate) async fn sender(&self) -> io::Result<SendRequest<RequestBody>> {
        let mut sender = self.sender.lock().await;
        if let Some(ready) = sender.as_mut()
            && ready.ready().await.is_ok()
        {
            return Ok(ready.clone());
        }
        *sender = None;
        let io = (self.upstream.connect)().await?;
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        let (send, connection) = builder
            .handshake(TokioIo::new(io))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("grpc-chaos proxy: upstream connection ended: {e}");
            }
        });
        *sender = Some(send.clone());
        Ok(send)
    }
}
