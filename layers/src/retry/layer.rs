//! Retries and hedging as a tower layer for a tonic channel.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderValue;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service, ServiceExt};

use super::hedging::hedge_loop;
use super::replay::Replay;
use super::run::{retry_loop, FromStatus, Verdict};
use super::{Attempt, HedgingPolicy, RetryPolicy, PREVIOUS_ATTEMPTS};
use crate::deadline::parse_grpc_timeout_bytes;
use crate::deadline::{current, earlier, Deadline, GRPC_TIMEOUT};

type GrpcResponse = http::Response<Body>;

/// How many request bytes a call keeps for replay unless told otherwise: 256 KiB.
pub const DEFAULT_BUFFER_LIMIT: usize = 256 * 1024;

impl FromStatus for GrpcResponse {
    fn from_status(status: Status) -> Self {
        status.into_http()
    }
}

#[derive(Debug)]
enum Plan {
    Retry(RetryPolicy),
    Hedge(HedgingPolicy),
}

impl Plan {
    fn throttle(&self) -> Option<&super::RetryThrottle> {
        match self {
            Self::Retry(p) => p.throttle(),
            Self::Hedge(p) => p.throttle(),
        }
    }

    /// Settles the throttle with a committed call's final status.
    fn settle_final(&self, code: Code) {
        let Some(throttle) = self.throttle() else {
            return;
        };
        let counts = match self {
            Self::Retry(p) => p.retries(code),
            Self::Hedge(p) => p.is_non_fatal(code),
        };
        if code == Code::Ok {
            throttle.on_success();
        } else if counts {
            throttle.on_failure();
        }
    }
}

/// Retries (or hedges) the calls of a tonic channel as gRFC A6 says, within one
/// deadline budget.
///
/// - The request body is kept as it is sent, so that unary and client-streaming calls
///   can be sent again, up to [`buffer_limit`](RetryLayer::buffer_limit) bytes. A call
///   that sends more is committed to the attempt sending it: it is not retried, and
///   other hedged attempts are cancelled.
/// - A call is also committed once response headers arrive (a response that is not
///   Trailers-Only): its stream and final status go to the caller as they are.
/// - The budget is the call's own timeout (its `grpc-timeout`), or the deadline of the
///   call being served ([`deadline::current`](crate::deadline::current)), whichever is
///   earlier. Each attempt carries what is left of it; no backoff sleeps past it; when
///   it runs out the call ends with DEADLINE_EXCEEDED naming the last attempt's status.
/// - Attempts after the first carry `grpc-previous-rpc-attempts`; a
///   `grpc-retry-pushback-ms` trailer is obeyed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
/// use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
/// use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
/// use tonic_layers::retry::{RetryLayer, RetryPolicy};
/// use tonic::Code;
///
/// let flaky = FakeServer::in_memory();
/// Stub::given(method("/pb.Greeter/SayHello"))
///     .respond_with(Reply::sequence([
///         Reply::error(Code::Unavailable, "warming up"),
///         Reply::message(&HelloReply { message: "hi".into() }),
///     ]))
///     .mount(&flaky);
/// let policy = RetryPolicy::builder()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(100))
///     .max_backoff(Duration::from_secs(1))
///     .backoff_multiplier(2.0)
///     .retryable_status_codes([Code::Unavailable])
///     .build()
///     .unwrap();
/// let channel = tower::ServiceBuilder::new()
///     .layer(RetryLayer::new(policy))
///     .service(flaky.channel());
/// let mut client = GreeterClient::new(channel);
/// let reply = client.say_hello(HelloRequest { name: "Ada".into() }).await.unwrap();
/// assert_eq!(reply.into_inner().message, "hi");
/// assert_eq!(flaky.received_calls().len(), 2);
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct RetryLayer {
    plan: Arc<Plan>,
    buffer_limit: usize,
    only: Option<Arc<[String]>>,
}

impl RetryLayer {
    /// Retries failed attempts as `policy` says.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tonic_layers::retry::{RetryLayer, RetryPolicy};
    /// let policy = RetryPolicy::builder()
    ///     .max_attempts(3)
    ///     .initial_backoff(Duration::from_millis(50))
    ///     .max_backoff(Duration::from_secs(1))
    ///     .backoff_multiplier(2.0)
    ///     .retryable_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// let layer = RetryLayer::new(policy);
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            plan: Arc::new(Plan::Retry(policy)),
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            only: None,
        }
    }

    /// Hedges calls as `policy` says: the first attempt to succeed (or fail fatally)
    /// wins and the others are cancelled.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tonic_layers::retry::{HedgingPolicy, RetryLayer};
    /// let policy = HedgingPolicy::builder()
    ///     .max_attempts(3)
    ///     .hedging_delay(Duration::from_millis(20))
    ///     .non_fatal_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// let layer = RetryLayer::hedging(policy);
    /// ```
    pub fn hedging(policy: HedgingPolicy) -> Self {
        Self {
            plan: Arc::new(Plan::Hedge(policy)),
            buffer_limit: DEFAULT_BUFFER_LIMIT,
            only: None,
        }
    }

    /// Keeps at most `bytes` of each request body (gRPC framing included) for replay;
    /// a call that sends more is committed to the attempt sending it.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tonic_layers::retry::{RetryLayer, RetryPolicy};
    /// # let policy = RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
    /// let layer = RetryLayer::new(policy).buffer_limit(64 * 1024);
    /// ```
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.buffer_limit = bytes;
        self
    }

    /// Applies the policy only to these methods, as A6's service config names them: a
    /// whole service (`/pkg.Service/`) or one method (`/pkg.Service/Method`). Other
    /// calls pass through untouched, with nothing buffered. By default every call is
    /// covered.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tonic_layers::retry::{RetryLayer, RetryPolicy};
    /// # let policy = RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
    /// // Only the idempotent reads.
    /// let layer = RetryLayer::new(policy).only(["/shop.Catalog/", "/shop.Orders/GetOrder"]);
    /// ```
    pub fn only<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.only = Some(paths.into_iter().map(Into::into).collect());
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            plan: self.plan.clone(),
            buffer_limit: self.buffer_limit,
            only: self.only.clone(),
        }
    }
}

/// The service [`RetryLayer`] makes.
///
/// ```
/// # use std::time::Duration;
/// use tonic_layers::retry::{Retry, RetryLayer, RetryPolicy};
/// use tower::Layer;
/// # let policy = RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
/// let svc: Retry<()> = RetryLayer::new(policy).layer(());
/// ```
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    plan: Arc<Plan>,
    buffer_limit: usize,
    only: Option<Arc<[String]>>,
}

impl<S> Retry<S> {
    fn covers(&self, path: &str) -> bool {
        let Some(only) = &self.only else {
            return true;
        };
        only.iter().any(|p| {
            if p.ends_with('/') {
                path.starts_with(p.as_str())
            } else {
                path == p
            }
        })
    }
}

/// The future of [`Retry`].
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<GrpcResponse, E>> + Send>>;

/// What every attempt's request is made from.
struct Template {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
}

impl Template {
    fn request(&self, attempt: Attempt, body: Body) -> http::Request<Body> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        let headers = request.headers_mut();
        if let Some(timeout) = attempt.timeout {
            let text = crate::deadline::format_grpc_timeout(timeout);
            if let Ok(value) = HeaderValue::from_str(&text) {
                headers.insert(GRPC_TIMEOUT, value);
            }
        }
        if attempt.number > 1 {
            headers.insert(PREVIOUS_ATTEMPTS, HeaderValue::from(attempt.number - 1));
        } else {
            headers.remove(PREVIOUS_ATTEMPTS);
        }
        request
    }
}

/// The status of a Trailers-Only response, read without trusting its details.
fn trailers_only_status(headers: &http::HeaderMap) -> Option<Status> {
    headers.get("grpc-status")?;
    let mut headers = headers.clone();
    // tonic panics on a `grpc-status-details-bin` that is not base64; the decision to
    // retry needs only the code and the metadata.
    headers.remove("grpc-status-details-bin");
    Status::from_header_map(&headers)
}

/// Whether tonic's own timer ended the attempt.
fn timed_out(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        match error.source() {
            Some(source) => error = source,
            None => return false,
        }
    }
}

/// The status the gRPC HTTP mapping gives a response with no `grpc-status` and an HTTP
/// status other than 200 (from a proxy, say), if that is what it is.
fn http_status(response: &GrpcResponse) -> Option<Status> {
    let http = response.status();
    if http == http::StatusCode::OK {
        return None;
    }
    let code = match http.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Some(Status::new(
        code,
        format!("HTTP status {http} with no grpc-status"),
    ))
}

/// Sorts one attempt's outcome.
fn verdict(
    plan: &Arc<Plan>,
    replay: &Replay,
    number: u32,
    outcome: Result<GrpcResponse, Status>,
) -> Verdict<GrpcResponse> {
    let committed = replay.committed();
    if committed.is_some_and(|n| n != number) {
        return Verdict::Superseded;
    }
    let (status, result) = match outcome {
        Err(status) => (status.clone(), status.into_http()),
        Ok(response) => match trailers_only_status(response.headers()) {
            Some(status) if status.code() == Code::Ok => {
                if !replay.commit(number) {
                    return Verdict::Superseded;
                }
                return Verdict::Success(response);
            }
            Some(status) => (status, response),
            None => match http_status(&response) {
                Some(status) => (status, response),
                None => {
                    // Response headers: the call is this attempt's, and its status comes
                    // at the end of the stream.
                    if !replay.commit(number) {
                        return Verdict::Superseded;
                    }
                    let response = match plan.throttle() {
                        Some(_) => response.map(|body| {
                            Body::new(SettleAtEnd {
                                inner: body,
                                plan: Some(plan.clone()),
                            })
                        }),
                        None => response,
                    };
                    return Verdict::Committed(response);
                }
            },
        },
    };
    let committed = committed == Some(number);
    if !committed {
        replay.abandon(number);
    }
    Verdict::Failed {
        status,
        result,
        committed,
    }
}

pin_project_lite::pin_project! {
    /// A committed call's response body: its final status settles the throttle, as A6
    /// counts it (a retryable or non-fatal code takes a token, OK gives some back).
    struct SettleAtEnd {
        #[pin]
        inner: Body,
        plan: Option<Arc<Plan>>,
    }
}

impl http_body::Body for SettleAtEnd {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(Ok(trailers)) = frame.as_ref().map(|f| f.as_ref().map(|f| f.trailers_ref())) {
            if let Some(status) = trailers.and_then(trailers_only_status) {
                if let Some(plan) = this.plan.take() {
                    plan.settle_final(status.code());
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S> Service<http::Request<Body>> for Retry<S>
where
    S: Service<http::Request<Body>, Response = GrpcResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError> + Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if !self.covers(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let (parts, body) = request.into_parts();
        let own = parts
            .headers
            .get(GRPC_TIMEOUT)
            .and_then(|v| parse_grpc_timeout_bytes(v.as_bytes()).ok())
            .map(Deadline::after);
        let deadline = earlier(own, current());
        let template = Arc::new(Template {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            extensions: parts.extensions,
        });
        let replay = Replay::new(body, self.buffer_limit);
        let clone = self.inner.clone();
        // The first attempt goes to the service `poll_ready` readied; later ones to
        // clones, readied in turn.
        let mut ready = Some(std::mem::replace(&mut self.inner, clone.clone()));
        let plan = self.plan.clone();
        let committed = replay.clone();
        let attempts_plan = plan.clone();
        Box::pin(async move {
            let run = move |attempt: Attempt| {
                let plan = attempts_plan.clone();
                let request = template.request(attempt, Body::new(replay.body(attempt.number)));
                let service = ready.take();
                let clone = clone.clone();
                let replay = replay.clone();
                async move {
                    let outcome = match service {
                        Some(mut service) => service.call(request).await,
                        None => clone.oneshot(request).await,
                    };
                    let outcome = outcome.map_err(|e| e.into());
                    if let (Err(e), Some(deadline)) = (&outcome, deadline) {
                        // tonic's channel times the attempt's `grpc-timeout`, rounded down
                        // to its unit, so it can fire just before the call's deadline:
                        // wait the rest, so the deadline (not CANCELLED) ends the call.
                        if timed_out(e.as_ref()) {
                            tokio::time::sleep_until(deadline.instant()).await;
                        }
                    }
                    let outcome = outcome.map_err(Status::from_error);
                    verdict(&plan, &replay, attempt.number, outcome)
                }
            };
            let response = match &*plan {
                Plan::Retry(policy) => retry_loop(policy, deadline, run).await,
                Plan::Hedge(policy) => {
                    hedge_loop(policy, deadline, run, || committed.committed().is_some()).await
                }
            };
            Ok(response)
        })
    }
}
