//! Handlers: replies written as async functions that read the request stream as it
//! arrives and answer message by message (echo servers, aggregators, interop services).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::request::CallRequest;

/// What a handler sends out, in order.
#[derive(Debug)]
pub(crate) enum HandlerOut {
    Headers(MetadataMap),
    Message(Bytes),
}

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;
pub(crate) type HandlerFn = dyn Fn(CallHandle) -> HandlerFuture + Send + Sync;

/// A stored handler: cheap to clone with the reply that holds it.
#[derive(Clone)]
pub(crate) struct Handler(Arc<HandlerFn>);

impl Handler {
    /// Wraps a user's async function.
    pub(crate) fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(CallHandle) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        Self(Arc::new(move |call| Box::pin(handler(call))))
    }

    pub(crate) fn start(&self, call: CallHandle) -> HandlerFuture {
        (self.0)(call)
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

/// One call as a handler sees it: the request so far, the request stream, and a way to
/// answer. Built by [`Reply::handler`](super::Reply::handler).
///
/// The handler runs on the call's own task, so under paused time its sleeps are virtual
/// and exact. When the client goes away the handler is dropped at its current `.await`.
///
/// ```
/// use grpc_chaos::fake::{CallHandle, Reply};
/// use grpc_chaos::pb::{HelloReply, HelloRequest};
/// use tonic::Status;
///
/// // Answers every request of a bidi stream as it arrives.
/// let echo = Reply::handler(|mut call: CallHandle| async move {
///     while let Some(req) = call.next::<HelloRequest>().await? {
///         call.send(&HelloReply { message: format!("Hello, {}!", req.name) }).await;
///     }
///     Ok(())
/// });
/// ```
#[derive(Debug)]
pub struct CallHandle {
    request: CallRequest,
    requests: mpsc::UnboundedReceiver<Bytes>,
    out: mpsc::Sender<HandlerOut>,
}

impl CallHandle {
    pub(crate) fn new(
        request: CallRequest,
        requests: mpsc::UnboundedReceiver<Bytes>,
        out: mpsc::Sender<HandlerOut>,
    ) -> Self {
        Self {
            request,
            requests,
            out,
        }
    }

    /// The call's method, metadata and timeout (and first message, when it was read for
    /// matching; it is also the first item of the request stream).
    ///
    /// ```
    /// # use grpc_chaos::fake::CallHandle;
    /// # fn f(call: &CallHandle) {
    /// let tenant = call.request().ascii_values("x-tenant");
    /// # }
    /// ```
    pub fn request(&self) -> &CallRequest {
        &self.request
    }

    /// The next request message as raw bytes; `None` once the client half-closed.
    ///
    /// ```
    /// # async fn f(mut call: grpc_chaos::fake::CallHandle) {
    /// while let Some(bytes) = call.next_message().await {}
    /// # }
    /// ```
    pub async fn next_message(&mut self) -> Option<Bytes> {
        self.requests.recv().await
    }

    /// The next request message decoded as `T`; `Ok(None)` once the client half-closed.
    ///
    /// # Errors
    /// INTERNAL when the message does not decode as `T`, as tonic answers it.
    ///
    /// ```
    /// # async fn f(mut call: grpc_chaos::fake::CallHandle) -> Result<(), tonic::Status> {
    /// let first: Option<grpc_chaos::pb::HelloRequest> = call.next().await?;
    /// # Ok(()) }
    /// ```
    pub async fn next<T: prost::Message + Default>(&mut self) -> Result<Option<T>, Status> {
        match self.next_message().await {
            None => Ok(None),
            Some(bytes) => T::decode(bytes).map(Some).map_err(|e| {
                Status::internal(format!("failed to decode the request message: {e}"))
            }),
        }
    }

    /// Sends the response headers now, with this initial metadata (merged with the
    /// reply's own `header`s). Without it, headers go out with the first message.
    ///
    /// ```
    /// # async fn f(mut call: grpc_chaos::fake::CallHandle) {
    /// let mut md = tonic::metadata::MetadataMap::new();
    /// md.insert("x-ready", "1".parse().unwrap());
    /// call.send_headers(md).await;
    /// # }
    /// ```
    pub async fn send_headers(&mut self, metadata: MetadataMap) {
        let _ = self.out.send(HandlerOut::Headers(metadata)).await;
    }

    /// Sends one response message.
    ///
    /// ```
    /// # async fn f(mut call: grpc_chaos::fake::CallHandle) {
    /// call.send(&grpc_chaos::pb::HelloReply { message: "hi".into() }).await;
    /// # }
    /// ```
    pub async fn send<M: prost::Message>(&mut self, message: &M) {
        self.send_bytes(message.encode_to_vec()).await;
    }

    /// Sends one response message given as encoded bytes.
    ///
    /// ```
    /// # async fn f(mut call: grpc_chaos::fake::CallHandle) {
    /// call.send_bytes(vec![0x0a, 0x01, b'x']).await;
    /// # }
    /// ```
    pub async fn send_bytes(&mut self, message: impl Into<Bytes>) {
        // Fails only when the call is over, and then this handler is being dropped.
        let _ = self.out.send(HandlerOut::Message(message.into())).await;
    }
}
