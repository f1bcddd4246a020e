//! The service a [`RetryLayer`](super::RetryLayer) makes: each call's request kept as a
//! template and a replay buffer, its first attempt sent at once, and any others run by
//! the retry or hedging loop.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::Status;
use tower::{Service, ServiceExt};

use super::future::{Looping, ResponseFuture};
use super::hedging::hedge_loop;
use super::layer::Plan;
use super::replay::Replay;
use super::run::{out_of_time, retry_after, Next, Verdict};
use super::verdict::{timed_out, verdict, GrpcResponse};
use super::{Attempt, PREVIOUS_ATTEMPTS};
use crate::connection::{status_from_error, LostAsUnavailable};
use crate::deadline::parse_grpc_timeout_bytes;
use crate::deadline::{current, earlier, Deadline, GRPC_TIMEOUT};
use crate::headers::find_two;

/// The service [`RetryLayer`](super::RetryLayer) makes.
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
    pub(super) fn new(
        inner: S,
        plan: Arc<Plan>,
        buffer_limit: usize,
        only: Option<Arc<[String]>>,
    ) -> Self {
        Self {
            inner,
            plan,
            buffer_limit,
            only,
        }
    }

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

/// `grpc-timeout`, and `grpc-previous-rpc-attempts`, as header names made once.
const TIMEOUT_HEADER: HeaderName = HeaderName::from_static(GRPC_TIMEOUT);
const PREVIOUS_HEADER: HeaderName = HeaderName::from_static(PREVIOUS_ATTEMPTS);

/// What every attempt's request is made from: the call's request head.
struct Template {
    /// The head as the caller sent it, for the first attempt, when it can go as it is:
    /// its own `grpc-timeout` is the call's deadline (or there is none), and it sent no
    /// `grpc-previous-rpc-attempts`.
    first: Option<http::request::Parts>,
    /// The copy every other attempt is made from. The two headers each attempt sets for
    /// itself are taken off it when the first of those attempts is made.
    later: http::request::Parts,
    cleared: bool,
}

impl Template {
    fn new(parts: http::request::Parts, as_sent: bool) -> Self {
        // The clone is the one kept for later attempts: its header map takes only the
        // room it needs, and the first attempt takes the roomier original.
        let (first, later) = if as_sent {
            let later = parts.clone();
            (Some(parts), later)
        } else {
            (None, parts)
        };
        Self {
            first,
            later,
            cleared: false,
        }
    }

    fn request(&mut self, attempt: Attempt, body: Body) -> http::Request<Body> {
        if attempt.number == 1
            && let Some(head) = self.first.take()
        {
            return http::Request::from_parts(head, body);
        }
        if !self.cleared {
            self.later.headers.remove(TIMEOUT_HEADER);
            self.later.headers.remove(PREVIOUS_HEADER);
            self.cleared = true;
        }
        let mut request = http::Request::from_parts(self.later.clone(), body);
        let headers = request.headers_mut();
        if let Some(timeout) = attempt.timeout {
            let text = crate::deadline::format_grpc_timeout(timeout);
            if let Ok(value) = HeaderValue::from_str(&text) {
                headers.insert(TIMEOUT_HEADER, value);
            }
        }
        if attempt.number > 1 {
            headers.insert(PREVIOUS_HEADER, HeaderValue::from(attempt.number - 1));
        }
        request
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
    type Future = ResponseFuture<S>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if !self.covers(request.uri().path()) {
            return ResponseFuture::direct(self.inner.call(request));
        }
        let (parts, body) = request.into_parts();
        let (sent, previous) = find_two(&parts.headers, &TIMEOUT_HEADER, &PREVIOUS_HEADER);
        let now = Instant::now();
        let own = sent
            .and_then(|v| parse_grpc_timeout_bytes(v.as_bytes()).ok())
            .map(|timeout| Deadline::at(now + timeout));
        let deadline = earlier(own, current());
        // A `grpc-timeout` that does not parse is not sent on.
        let as_sent = previous.is_none() && sent.is_some() == own.is_some() && deadline == own;
        if deadline.is_some_and(|d| d.instant() <= now) {
            return ResponseFuture::looping(Box::pin(std::future::ready(Ok(
                out_of_time(None).into_http()
            ))));
        }
        let hedged = matches!(*self.plan, Plan::Hedge(_));
        let mut template = Template::new(parts, as_sent);
        let replay = Replay::new(body, self.buffer_limit, hedged);
        // The first attempt goes out now, to the service `poll_ready` readied. Later
        // ones go to a clone, readied by `oneshot` only if they are made.
        let timeout = deadline.map(|d| d.instant().saturating_duration_since(now));
        let body = crate::body::boxed(replay.body(1));
        let first = self
            .inner
            .call(template.request(Attempt { number: 1, timeout }, body));
        let call = Call {
            template,
            replay,
            service: self.inner.clone(),
            plan: self.plan.clone(),
            deadline,
        };
        if hedged {
            ResponseFuture::looping(call.looping(Some(first), None))
        } else {
            ResponseFuture::first(first, call)
        }
    }
}

/// One call's state for its attempts after the first (and, hedged, its first too).
pub(super) struct Call<S> {
    template: Template,
    replay: Replay,
    /// A clone of the layer's service, for attempts after the first.
    service: S,
    plan: Arc<Plan>,
    deadline: Option<Deadline>,
}

/// How the first attempt of a retried call went.
pub(super) enum First {
    /// The call ends with this response.
    Return(GrpcResponse),
    /// tonic's own timer ended it just before the deadline: wait for the deadline.
    WaitForDeadline,
    /// It failed and was settled; another attempt may follow.
    Failed(Status, GrpcResponse),
}

impl<S> Call<S>
where
    S: Service<http::Request<Body>, Response = GrpcResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError> + Send + 'static,
{
    pub(super) fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    /// The first attempt's outcome, judged and settled as the retry loop would.
    pub(super) fn judge_first(&self, outcome: Result<GrpcResponse, S::Error>) -> First {
        let judged = Outcome::of(outcome, self.deadline);
        if judged.wait_for.is_some() {
            return First::WaitForDeadline;
        }
        let verdict = verdict(&self.plan, &self.replay, 1, judged.result);
        match verdict.settle(self.plan.throttle(), |code| self.plan.follows(code)) {
            Next::Return(response) => First::Return(response),
            Next::Failed(status, response) => First::Failed(status, response),
            Next::Ignore => First::Return(Status::cancelled("attempt superseded").into_http()),
        }
    }

    /// The call's loop, boxed: from attempt 1 (`first`, already sent), or from the
    /// decision on a second attempt after the first failed with `failure` (settled).
    /// Hedging always starts from attempt 1.
    pub(super) fn looping(
        mut self,
        first: Option<S::Future>,
        failure: Option<(Status, GrpcResponse)>,
    ) -> Looping<S::Error> {
        Box::pin(async move {
            let (plan, deadline, replay) = (self.plan.clone(), self.deadline, self.replay.clone());
            let mut first = first;
            let run = |attempt: Attempt| {
                let first = first.take().filter(|_| attempt.number == 1);
                self.attempt(attempt, first)
            };
            Ok(match &*plan {
                Plan::Retry(policy) => retry_after(policy, deadline, run, failure).await,
                Plan::Hedge(policy) => {
                    hedge_loop(policy, deadline, run, || replay.committed().is_some()).await
                }
            })
        })
    }

    /// Attempt `attempt.number`: `first` if it is given (already sent), else a new
    /// request to a clone of the service.
    fn attempt(
        &mut self,
        attempt: Attempt,
        first: Option<S::Future>,
    ) -> impl Future<Output = Verdict<GrpcResponse>> + Send + use<S> {
        let call = match first {
            Some(first) => Ok(first),
            None => {
                let body = crate::body::boxed(self.replay.body(attempt.number));
                Err((self.service.clone(), self.template.request(attempt, body)))
            }
        };
        let (plan, replay, deadline) = (self.plan.clone(), self.replay.clone(), self.deadline);
        async move {
            let outcome = match call {
                Ok(first) => first.await,
                Err((later, request)) => later.oneshot(request).await,
            };
            let judged = Outcome::of(outcome, deadline);
            if let Some(deadline) = judged.wait_for {
                // tonic's channel times the attempt's `grpc-timeout`, rounded down to
                // its unit, so it can fire just before the call's deadline: wait the
                // rest, so the deadline (not CANCELLED) ends the call.
                tokio::time::sleep_until(deadline.instant()).await;
            }
            verdict(&plan, &replay, attempt.number, judged.result)
        }
    }
}

/// An attempt's outcome as its verdict reads it.
struct Outcome {
    /// A lost connection (even in the response body) as UNAVAILABLE, any error as a
    /// status.
    result: Result<GrpcResponse, Status>,
    /// tonic's own timer ended the attempt before this deadline.
    wait_for: Option<Deadline>,
}

impl Outcome {
    fn of<E: Into<tower::BoxError>>(
        outcome: Result<GrpcResponse, E>,
        deadline: Option<Deadline>,
    ) -> Self {
        match outcome {
            Ok(response) => Self {
                result: Ok(response.map(LostAsUnavailable::body)),
                wait_for: None,
            },
            Err(e) => {
                let e = e.into();
                let wait_for = deadline.filter(|_| timed_out(e.as_ref()));
                Self {
                    result: Err(status_from_error(e)),
                    wait_for,
                }
            }
        }
    }
}
