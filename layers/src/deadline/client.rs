//! The client layer: outbound calls carry what is left of the incoming deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderValue;
use tokio::time::sleep_until;
use tonic::Status;
use tower::{Layer, Service};

use super::body::{deadline_exceeded, status_response, CancelAtDeadline, DeadlineBody};
use super::parse_grpc_timeout_bytes;
use super::{current, earlier, Deadline, GRPC_TIMEOUT};
use crate::connection::{status_from_error, LostAsUnavailable};

type GrpcResponse = http::Response<tonic::body::Body>;

/// Propagates deadlines to outbound calls, for a tonic client's channel.
///
/// A call made while serving a request (inside [`EnforceDeadlineLayer`](super::EnforceDeadlineLayer),
/// or any [`scope`](super::scope)) carries `min(its own timeout, the incoming deadline's
/// time left - margin)`. A call whose budget is already spent fails here with
/// DEADLINE_EXCEEDED and is never sent. The deadline is enforced on the response,
/// streams included, and a passed deadline reads as DEADLINE_EXCEEDED, not tonic's
/// CANCELLED "Timeout expired". A connection lost under the call, before or after the
/// response headers, reads as UNAVAILABLE, as the spec maps it, not tonic's UNKNOWN
/// (see [`crate::connection`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use tonic_layers::deadline::PropagateDeadlineLayer;
/// use grpc_chaos::fake::FakeServer;
/// use grpc_chaos::pb::greeter_client::GreeterClient;
///
/// let downstream = FakeServer::in_memory();
/// let channel = tower::ServiceBuilder::new()
///     .layer(PropagateDeadlineLayer::new().margin(Duration::from_millis(10)))
///     .service(downstream.channel());
/// let client = GreeterClient::new(channel);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct PropagateDeadlineLayer {
    margin: Duration,
}

impl PropagateDeadlineLayer {
    /// No margin: outbound calls get exactly the time left.
    ///
    /// ```
    /// let layer = tonic_layers::deadline::PropagateDeadlineLayer::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `margin` of the incoming budget for this hop's own work after the call.
    ///
    /// With no margin (the default) the outbound call's deadline is the caller's, to the
    /// instant, so when the downstream is too slow this hop's DEADLINE_EXCEEDED and the
    /// caller's own timer fire together: a caller that times the call itself (a plain
    /// tonic client) reads its own CANCELLED, never this hop's answer. A margin of a few
    /// milliseconds lets the answer reach it first.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let layer = tonic_layers::deadline::PropagateDeadlineLayer::new().margin(Duration::from_millis(20));
    /// ```
    pub fn margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }
}

impl<S> Layer<S> for PropagateDeadlineLayer {
    type Service = PropagateDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateDeadline {
            inner,
            margin: self.margin,
        }
    }
}

/// The service [`PropagateDeadlineLayer`] makes.
///
/// ```
/// use tonic_layers::deadline::{PropagateDeadline, PropagateDeadlineLayer};
/// use tower::Layer;
/// let svc: PropagateDeadline<()> = PropagateDeadlineLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct PropagateDeadline<S> {
    inner: S,
    margin: Duration,
}

/// The future of [`PropagateDeadline`].
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<GrpcResponse, E>> + Send>>;

impl<S> Service<http::Request<tonic::body::Body>> for PropagateDeadline<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = GrpcResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError> + Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let own = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(|v| parse_grpc_timeout_bytes(v.as_bytes()).ok())
            .map(Deadline::after);
        let inherited = current()
            .map(|d| Deadline::at(d.instant().checked_sub(self.margin).unwrap_or(d.instant())));
        let deadline = earlier(own, inherited);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(deadline) = deadline else {
            let response = inner.call(request);
            return Box::pin(async move {
                match response.await {
                    Ok(r) => Ok(r.map(LostAsUnavailable::body)),
                    Err(e) => Ok(status_response(status_from_error(e.into()))),
                }
            });
        };
        if deadline.is_expired() {
            let status = Status::deadline_exceeded("deadline exceeded before the call was sent");
            return Box::pin(std::future::ready(Ok(status_response(status))));
        }
        if let Ok(value) = HeaderValue::from_str(&deadline.to_grpc_timeout()) {
            request.headers_mut().insert(GRPC_TIMEOUT, value);
        }
        let request =
            request.map(|body| tonic::body::Body::new(CancelAtDeadline::new(body, deadline)));
        let response = inner.call(request);
        Box::pin(async move {
            tokio::select! {
                biased;
                () = sleep_until(deadline.instant()) => Ok(status_response(deadline_exceeded())),
                response = response => match response {
                    Ok(r) => Ok(r.map(|body| {
                        crate::body::boxed(DeadlineBody::new(LostAsUnavailable::body(body), deadline))
                    })),
                    // tonic's channel times the same deadline and fails with its own error.
                    Err(_) if deadline.is_expired() => Ok(status_response(deadline_exceeded())),
                    Err(e) => Ok(status_response(status_from_error(e.into()))),
                },
            }
        })
    }
}
