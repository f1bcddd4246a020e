//! [`ResponseFuture`], the future of [`Retry`](super::Retry). A retried call's first
//! attempt is polled in place, beside its deadline's timer, and the loop is boxed only
//! once that attempt has failed and another may follow. A call that succeeds first time
//! allocates no future of its own. Hedged calls run their loop from the start.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::time::{sleep_until, Sleep};
use tonic::body::Body;
use tower::Service;

use super::run::out_of_time;
use super::service::{Call, First};
use super::verdict::GrpcResponse;

/// A call's boxed loop.
pub(super) type Looping<E> = Pin<Box<dyn Future<Output = Result<GrpcResponse, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`Retry`](super::Retry).
    pub struct ResponseFuture<S>
    where
        S: Service<http::Request<Body>>,
    {
        #[pin]
        state: State<S>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<S>
    where
        S: Service<http::Request<Body>>,
    {
        /// A call the layer does not cover.
        Direct {
            #[pin]
            inner: S::Future,
        },
        /// A retried call's first attempt.
        First {
            #[pin]
            attempt: S::Future,
            // The deadline's timer, set when first polled (a call may be made outside
            // a runtime and polled inside one).
            #[pin]
            timer: Option<Sleep>,
            // The attempt ended early (tonic's own timer): only the deadline is left.
            waiting: bool,
            call: Option<Call<S>>,
        },
        /// The loop.
        Looping { inner: Looping<S::Error> },
    }
}

impl<S> ResponseFuture<S>
where
    S: Service<http::Request<Body>>,
{
    pub(super) fn direct(inner: S::Future) -> Self {
        Self {
            state: State::Direct { inner },
        }
    }

    pub(super) fn first(attempt: S::Future, call: Call<S>) -> Self {
        Self {
            state: State::First {
                attempt,
                timer: None,
                waiting: false,
                call: Some(call),
            },
        }
    }

    pub(super) fn looping(inner: Looping<S::Error>) -> Self {
        Self {
            state: State::Looping { inner },
        }
    }
}

impl<S> Future for ResponseFuture<S>
where
    S: Service<http::Request<Body>, Response = GrpcResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tower::BoxError> + Send + 'static,
{
    type Output = Result<GrpcResponse, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (call, failure) = match self.as_mut().project().state.project() {
            StateProj::Direct { inner } => return inner.poll(cx),
            StateProj::Looping { inner } => return inner.as_mut().poll(cx),
            StateProj::First {
                attempt,
                mut timer,
                waiting,
                call,
            } => {
                let Some(deadline) = call.as_ref().map(Call::deadline) else {
                    panic!("a retry ResponseFuture polled after it completed");
                };
                // The deadline first, as the retry loop's `select!` has it.
                if let Some(deadline) = deadline {
                    if timer.is_none() {
                        timer.set(Some(sleep_until(deadline.instant())));
                    }
                    if let Some(timer) = timer.as_pin_mut()
                        && timer.poll(cx).is_ready()
                    {
                        *call = None;
                        return Poll::Ready(Ok(out_of_time(None).into_http()));
                    }
                }
                if *waiting {
                    return Poll::Pending;
                }
                let outcome = ready!(attempt.poll(cx));
                // Taken: whatever the verdict, the first attempt is over.
                let Some(held) = call.take() else {
                    panic!("a retry ResponseFuture polled after it completed");
                };
                match held.judge_first(outcome) {
                    First::Return(response) => return Poll::Ready(Ok(response)),
                    First::WaitForDeadline => {
                        // The timer was polled above, so it will wake this.
                        *call = Some(held);
                        *waiting = true;
                        return Poll::Pending;
                    }
                    First::Failed(status, response) => (held, (status, response)),
                }
            }
        };
        let mut inner = call.looping(None, Some(failure));
        let polled = inner.as_mut().poll(cx);
        self.project().state.set(State::Looping { inner });
        polled
    }
}

impl<S> std::fmt::Debug for ResponseFuture<S>
where
    S: Service<http::Request<Body>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
