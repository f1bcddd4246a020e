//! The server layer: reads `grpc-timeout`, makes the deadline readable in the handler,
//! enforces it on the whole call (stream bodies included), and guards minimum budgets.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::sleep_until;
use tonic::Status;
use tower::{Layer, Service};

use super::body::{deadline_exceeded, status_response, DeadlineBody};
use super::parse_grpc_timeout_bytes;
use super::{Deadline, CURRENT, GRPC_TIMEOUT};

/// What a layered service answers with.
type GrpcResponse = http::Response<tonic::body::Body>;

/// Enforces `grpc-timeout` on a tonic server with the spec's DEADLINE_EXCEEDED.
///
/// - The [`Deadline`] goes into the request extensions and is [`current`](super::current)
///   while the handler and its response stream are polled.
/// - When it passes, the handler (or its stream) is dropped and the server sends status
///   4 at that instant: Trailers-Only before headers, in the trailers after them.
/// - A malformed `grpc-timeout` gets INTERNAL naming it;
///   [`lenient_timeouts(true)`](EnforceDeadlineLayer::lenient_timeouts) ignores it instead, as
///   tonic does.
/// - [`EnforceDeadlineLayer::min_budget`] refuses calls with less time left than needed (the
///   walkthrough's 100 ms rule), per method with [`EnforceDeadlineLayer::min_budget_for`].
///
/// tonic's own server also times the call until its response headers and answers
/// CANCELLED; this layer's timer fires at the same instant and is polled first, so the
/// server sends 4.
///
/// What the client reads (pinned by `tests/it/deadline_layers.rs`):
/// - **A plain tonic client** times the call itself until the response headers (its
///   channel times any `grpc-timeout` it sends, from `Request::set_timeout` or written
///   by hand), and its timer fires at the same instant. For a unary call, or a stream
///   still waiting for headers, it reads its own CANCELLED `"Timeout expired"`; after the
///   headers it reads this layer's 4.
/// - **Through [`PropagateDeadlineLayer`](super::PropagateDeadlineLayer)** it reads
///   DEADLINE_EXCEEDED at that instant, before the headers and after them.
/// - Clients of other gRPC libraries, whose own timers report DEADLINE_EXCEEDED as the
///   spec says, read 4 either way.
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::deadline::EnforceDeadlineLayer;
/// let layer = EnforceDeadlineLayer::new()
///     .min_budget(Duration::from_millis(100))
///     .min_budget_for("/pb.Greeter/SayHelloStream", Duration::from_millis(500));
/// // tonic::transport::Server::builder().layer(layer).add_service(...)
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct EnforceDeadlineLayer {
    lenient_timeouts: bool,
    min_budget: Option<Duration>,
    per_method: Arc<HashMap<String, Duration>>,
}

impl EnforceDeadlineLayer {
    /// Strict parsing, no minimum budget.
    ///
    /// ```
    /// let layer = tonic_layers::deadline::EnforceDeadlineLayer::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// With `true`, ignores a malformed `grpc-timeout` (the call has no deadline), as
    /// tonic does, instead of answering INTERNAL (the default). The same setting is
    /// `FakeServerBuilder::lenient_timeouts` on the harness's fake server and
    /// `--lenient-timeouts` on `grpc-chaos serve`.
    ///
    /// ```
    /// let layer = tonic_layers::deadline::EnforceDeadlineLayer::new().lenient_timeouts(true);
    /// ```
    pub fn lenient_timeouts(mut self, on: bool) -> Self {
        self.lenient_timeouts = on;
        self
    }

    /// Refuses, with DEADLINE_EXCEEDED "not enough time to process", any call that
    /// arrives with less than `budget` left.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let layer = tonic_layers::deadline::EnforceDeadlineLayer::new().min_budget(Duration::from_millis(100));
    /// ```
    pub fn min_budget(mut self, budget: Duration) -> Self {
        self.min_budget = Some(budget);
        self
    }

    /// The same guard for one method path, overriding [`EnforceDeadlineLayer::min_budget`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// let layer = tonic_layers::deadline::EnforceDeadlineLayer::new()
    ///     .min_budget_for("/pb.Greeter/SayHello", Duration::from_millis(50));
    /// ```
    pub fn min_budget_for(mut self, path: impl Into<String>, budget: Duration) -> Self {
        Arc::make_mut(&mut self.per_method).insert(path.into(), budget);
        self
    }

    /// Decides a request by its path and headers, as the layer does before calling the
    /// service: its deadline (none without a `grpc-timeout`, or with a malformed one when
    /// lenient), or the status it gets at once (INTERNAL for a malformed timeout,
    /// DEADLINE_EXCEEDED under the minimum budget). Servers that read requests
    /// themselves, such as the harness's fake, call it to apply the same rules.
    ///
    /// # Errors
    /// The status the call is refused with.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use std::time::Duration;
    /// use tonic_layers::deadline::{Deadline, EnforceDeadlineLayer};
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("grpc-timeout", "2S".parse().unwrap());
    /// let layer = EnforceDeadlineLayer::new();
    /// assert_eq!(layer.admit("/a.B/C", &headers).unwrap(), Some(Deadline::after(Duration::from_secs(2))));
    /// headers.insert("grpc-timeout", "2 S".parse().unwrap());
    /// assert_eq!(layer.admit("/a.B/C", &headers).unwrap_err().code(), tonic::Code::Internal);
    /// assert_eq!(layer.lenient_timeouts(true).admit("/a.B/C", &headers).unwrap(), None);
    /// # }
    /// ```
    pub fn admit(&self, path: &str, headers: &http::HeaderMap) -> Result<Option<Deadline>, Status> {
        let deadline = match headers.get(GRPC_TIMEOUT) {
            None => None,
            Some(value) => match parse_grpc_timeout_bytes(value.as_bytes()) {
                Ok(timeout) => Some(Deadline::after(timeout)),
                Err(_) if self.lenient_timeouts => None,
                Err(e) => {
                    let raw = String::from_utf8_lossy(value.as_bytes());
                    return Err(Status::internal(format!(
                        "malformed grpc-timeout {raw:?}: {e}"
                    )));
                }
            },
        };
        let budget = self.per_method.get(path).copied().or(self.min_budget);
        if let (Some(budget), Some(deadline)) = (budget, deadline)
            && deadline.remaining() < budget
        {
            return Err(Status::deadline_exceeded(format!(
                "not enough time to process: {:?} left, {budget:?} needed",
                deadline.remaining()
            )));
        }
        Ok(deadline)
    }
}

impl<S> Layer<S> for EnforceDeadlineLayer {
    type Service = EnforceDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EnforceDeadline {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`EnforceDeadlineLayer`] makes.
///
/// ```
/// use tonic_layers::deadline::{EnforceDeadlineLayer, EnforceDeadline};
/// use tower::Layer;
/// let svc: EnforceDeadline<()> = EnforceDeadlineLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct EnforceDeadline<S> {
    inner: S,
    layer: EnforceDeadlineLayer,
}

/// The future of [`EnforceDeadline`].
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<GrpcResponse, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for EnforceDeadline<S>
where
    S: Service<http::Request<B>, Response = GrpcResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let deadline = match self.layer.admit(request.uri().path(), request.headers()) {
            Ok(deadline) => deadline,
            Err(status) => return Box::pin(std::future::ready(Ok(status_response(status)))),
        };
        // The clone that was made ready serves this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(deadline) = deadline else {
            return Box::pin(inner.call(request));
        };
        request.extensions_mut().insert(deadline);
        let response = CURRENT.scope(deadline, inner.call(request));
        Box::pin(async move {
            tokio::select! {
                biased;
                () = sleep_until(deadline.instant()) => Ok(status_response(deadline_exceeded())),
                response = response => {
                    response.map(|r| r.map(|body| crate::body::boxed(DeadlineBody::new(body, deadline))))
                }
            }
        })
    }
}
