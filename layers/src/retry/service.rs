//! The service a [`RetryLayer`](super::RetryLayer) makes: each call's request kept as a
//! template and a replay buffer, and its attempts run by the retry or hedging loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue};
use tonic::body::Body;
use tower::{Service, ServiceExt};

use super::hedging::hedge_loop;
use super::layer::Plan;
use super::replay::Replay;
use super::run::retry_loop;
use super::verdict::{timed_out, verdict, GrpcResponse};
use super::{Attempt, PREVIOUS_ATTEMPTS};
use crate::connection::{status_from_error, LostAsUnavailable};
use crate::deadline::parse_grpc_timeout_bytes;
use crate::deadline::{current, earlier, Deadline, GRPC_TIMEOUT};

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

/// The future of [`Retry`].
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<GrpcResponse, E>> + Send>>;

/// `grpc-timeout`, and `grpc-previous-rpc-attempts`, as header names made once.
const TIMEOUT_HEADER: HeaderName = HeaderName::from_static(GRPC_TIMEOUT);
const PREVIOUS_HEADER: HeaderName = HeaderName::from_static(PREVIOUS_ATTEMPTS);

/// What every attempt's request is made from: the call's request head, without the
/// two headers each attempt sets for itself.
struct Template {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
    /// The caller's own `grpc-timeout`, while the first attempt can send it as it is
    /// (it is the call's deadline, and nothing earlier applies).
    first_timeout: Option<HeaderValue>,
}

impl Template {
    fn new(mut parts: http::request::Parts, own_is_the_deadline: bool) -> Self {
        let first_timeout = parts
            .headers
            .remove(TIMEOUT_HEADER)
            .filter(|_| own_is_the_deadline);
        parts.headers.remove(PREVIOUS_HEADER);
        Self {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            extensions: parts.extensions,
            first_timeout,
        }
    }

    fn request(&mut self, attempt: Attempt, body: Body) -> http::Request<Body> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        let headers = request.headers_mut();
        let unchanged = if attempt.number == 1 {
            self.first_timeout.take()
        } else {
            None
        };
        if let Some(value) = unchanged {
            headers.insert(TIMEOUT_HEADER, value);
        } else if let Some(timeout) = attempt.timeout {
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
            .get(&TIMEOUT_HEADER)
            .and_then(|v| parse_grpc_timeout_bytes(v.as_bytes()).ok())
            .map(Deadline::after);
        let deadline = earlier(own, current());
        let mut template = Template::new(parts, own.is_some() && deadline == own);
        let replay = Replay::new(
            body,
            self.buffer_limit,
            matches!(*self.plan, Plan::Hedge(_)),
        );
        // The first attempt goes to the service `poll_ready` readied; a later one to a
        // clone of it, readied by `oneshot`. A call that succeeds first time clones the
        // service once.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let plan = self.plan.clone();
        let committed = replay.clone();
        let attempts_plan = plan.clone();
        Box::pin(async move {
            let run = move |attempt: Attempt| {
                let plan = attempts_plan.clone();
                let request = template.request(attempt, Body::new(replay.body(attempt.number)));
                let call = if attempt.number == 1 {
                    Ok(service.call(request))
                } else {
                    Err((service.clone(), request))
                };
                let replay = replay.clone();
                async move {
                    let outcome = match call {
                        Ok(first) => first.await,
                        Err((later, request)) => later.oneshot(request).await,
                    };
                    let outcome = outcome.map(|r| r.map(LostAsUnavailable::body));
                    let outcome = outcome.map_err(|e| e.into());
                    if let (Err(e), Some(deadline)) = (&outcome, deadline) {
                        // tonic's channel times the attempt's `grpc-timeout`, rounded down
                        // to its unit, so it can fire just before the call's deadline:
                        // wait the rest, so the deadline (not CANCELLED) ends the call.
                        if timed_out(e.as_ref()) {
                            tokio::time::sleep_until(deadline.instant()).await;
                        }
                    }
                    let outcome = outcome.map_err(status_from_error);
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
