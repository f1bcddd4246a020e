//! Retries and hedging as a tower layer for a tonic channel: the layer and its plan.

use std::sync::Arc;

use tonic::Code;
use tower::Layer;

use super::service::Retry;
use super::{HedgingPolicy, RetryPolicy, RetryThrottle};

/// How many request bytes a call keeps for replay unless told otherwise: 256 KiB.
pub const DEFAULT_BUFFER_LIMIT: usize = 256 * 1024;

#[derive(Debug)]
pub(super) enum Plan {
    Retry(RetryPolicy),
    Hedge(HedgingPolicy),
}

impl Plan {
    pub(super) fn throttle(&self) -> Option<&RetryThrottle> {
        match self {
            Self::Retry(p) => p.throttle(),
            Self::Hedge(p) => p.throttle(),
        }
    }

    /// Settles the throttle with a committed call's final status.
    pub(super) fn settle_final(&self, code: Code) {
        let Some(throttle) = self.throttle() else {
            return;
        };
        if code == Code::Ok {
            throttle.on_success();
        } else if self.follows(code) {
            throttle.on_failure();
        }
    }

    /// Whether a failure with `code` may be followed by another attempt: a retryable
    /// code, or a hedging policy's non-fatal one.
    pub(super) fn follows(&self, code: Code) -> bool {
        match self {
            Self::Retry(p) => p.retries(code),
            Self::Hedge(p) => p.is_non_fatal(code),
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
/// - A connection lost under an attempt counts as UNAVAILABLE, as the spec maps it
///   (tonic says UNKNOWN), so a policy listing UNAVAILABLE retries it; see
///   [`crate::connection`].
///
/// **With [`PropagateDeadlineLayer`](crate::deadline::PropagateDeadlineLayer)**, put the
/// deadline layer outside (first in a `tower::ServiceBuilder`): its margin then comes off
/// the whole retried call, backoffs included, and the retry layer's budget is what it
/// leaves. The other order also ends the call at its deadline (both are tested), but
/// takes the margin off each attempt only, so a retry may start inside it.
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
        Retry::new(
            inner,
            self.plan.clone(),
            self.buffer_limit,
            self.only.clone(),
        )
    }
}
