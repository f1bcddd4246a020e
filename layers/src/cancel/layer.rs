//! The tower layer that gives each call on a tonic server its [`CallSignal`](super::CallSignal).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tower::{Layer, Service};

use super::{guard, CancelGuard};

type GrpcResponse = http::Response<tonic::body::Body>;

/// Puts a [`CallSignal`](super::CallSignal) in every request's extensions; it fires when the call goes
/// away before its response ends (client cancel, deadline, connection loss), and never
/// after the response has been sent in full.
///
/// ```
/// use tonic_layers::cancel::{CallSignal, CancelOnDisconnectLayer};
/// // tonic::transport::Server::builder().layer(CancelOnDisconnectLayer::new()) …
/// // and in a handler:
/// fn handler(request: &tonic::Request<()>) {
///     if let Some(signal) = request.extensions().get::<CallSignal>() {
///         let work = signal.spawn(async { /* cancelled with the call */ });
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct CancelOnDisconnectLayer;

impl CancelOnDisconnectLayer {
    /// The layer.
    ///
    /// ```
    /// let layer = tonic_layers::cancel::CancelOnDisconnectLayer::new();
    /// ```
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for CancelOnDisconnectLayer {
    type Service = CancelOnDisconnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CancelOnDisconnect { inner }
    }
}

/// The service [`CancelOnDisconnectLayer`] makes.
///
/// ```
/// use tonic_layers::cancel::{CancelOnDisconnect, CancelOnDisconnectLayer};
/// use tower::Layer;
/// let svc: CancelOnDisconnect<()> = CancelOnDisconnectLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct CancelOnDisconnect<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for CancelOnDisconnect<S>
where
    S: Service<http::Request<B>, Response = GrpcResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<GrpcResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let (guard, signal) = guard();
        request.extensions_mut().insert(signal);
        let response = self.inner.call(request);
        Box::pin(async move {
            // Dropped with this future if the client goes away before the headers.
            let response = response.await?;
            if http_body::Body::is_end_stream(response.body()) {
                // Trailers-Only: the call is complete as it stands.
                guard.disarm();
                return Ok(response);
            }
            Ok(response.map(|body| {
                crate::body::boxed(GuardedBody {
                    inner: body,
                    guard: Some(guard),
                })
            }))
        })
    }
}

/// Holds the guard until the response body ends; disarms it then.
struct GuardedBody {
    inner: tonic::body::Body,
    guard: Option<CancelGuard>,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        // Trailers or the end: the call completed, so going away now is no cancel.
        let done = match &frame {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(f))) => f.is_trailers(),
            _ => false,
        };
        if done && let Some(guard) = self.guard.take() {
            guard.disarm();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
