//! gRFC A6 retries and hedging with one deadline budget across attempts.
//!
//! Two forms share one loop:
//! - [`RetryLayer`], a tower layer for a tonic channel. It keeps each request body as it
//!   is sent (up to a byte limit) so that unary and client-streaming calls can be sent
//!   again, commits a call once response headers arrive, and retries
//!   ([`RetryPolicy`]) or hedges ([`HedgingPolicy`]) it.
//! - [`call_with_retry`] and [`call_with_hedging`], plain async functions for code that
//!   does not use tower. They replace the walkthrough's `CallWithRetry`, which gave
//!   every attempt a fresh timeout and so could blow its caller's deadline.
//!
//! All attempts and backoffs share one [`Deadline`]; no sleep runs past it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use tonic_layers::deadline::Deadline;
//! use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
//! use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
//! use tonic_layers::retry::{call_with_retry, RetryPolicy};
//! use tonic::Code;
//!
//! let flaky = FakeServer::in_memory();
//! Stub::given(method("/pb.Greeter/SayHello"))
//!     .respond_with(Reply::sequence([
//!         Reply::error(Code::Unavailable, "warming up"),
//!         Reply::message(&HelloReply { message: "hi".into() }),
//!     ]))
//!     .mount(&flaky);
//! let policy = RetryPolicy::builder()
//!     .max_attempts(4)
//!     .initial_backoff(Duration::from_millis(100))
//!     .max_backoff(Duration::from_secs(1))
//!     .backoff_multiplier(2.0)
//!     .retryable_status_codes([Code::Unavailable])
//!     .build()
//!     .unwrap()
//!     .seed(7);
//! let client = GreeterClient::new(flaky.channel());
//! let reply = call_with_retry(&policy, Some(Deadline::after(Duration::from_secs(2))), |attempt| {
//!     let mut client = client.clone();
//!     async move {
//!         let mut request = tonic::Request::new(HelloRequest { name: "Ada".into() });
//!         attempt.apply(&mut request);
//!         client.say_hello(request).await
//!     }
//! })
//! .await
//! .unwrap();
//! assert_eq!(reply.into_inner().message, "hi");
//! # }
//! ```

mod builder;
mod error;
mod future;
mod hedging;
mod layer;
mod policy;
mod replay;
mod run;
mod service;
mod throttle;
mod verdict;

use std::future::Future;
use std::time::Duration;

use tonic::Status;

use crate::deadline::Deadline;
use run::Verdict;

pub use future::ResponseFuture;
pub use hedging::{call_with_hedging, HedgingPolicy, HedgingPolicyBuilder};
pub use layer::{RetryLayer, DEFAULT_BUFFER_LIMIT};
pub use service::Retry;

pub use builder::RetryPolicyBuilder;
pub use error::{PolicyError, PolicyField, MAX_ATTEMPTS_CAP};
pub use policy::RetryPolicy;
pub use throttle::{RetryThrottle, ThrottleError};

/// The header that tells a server how many attempts came before (absent on the first).
pub const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";
/// The trailer a server sends to say when to retry, or not to.
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// One attempt: its number, and the time it has.
///
/// ```
/// # use tonic_layers::retry::Attempt;
/// # fn f(attempt: Attempt) {
/// let mut request = tonic::Request::new(());
/// attempt.apply(&mut request); // timeout = the budget left, and grpc-previous-rpc-attempts
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// What is left of the deadline when the attempt starts.
    pub timeout: Option<Duration>,
}

impl Attempt {
    /// Attempt `number` (1 for the first) with `timeout` left, as the retry loop makes
    /// them; for unit tests of an attempt function.
    ///
    /// ```
    /// let attempt = tonic_layers::retry::Attempt::new(1, None);
    /// assert_eq!((attempt.number, attempt.timeout), (1, None));
    /// ```
    pub fn new(number: u32, timeout: Option<Duration>) -> Self {
        Self { number, timeout }
    }

    /// Sets the request's timeout to the budget left, and `grpc-previous-rpc-attempts`
    /// on every attempt after the first.
    ///
    /// ```
    /// let attempt = tonic_layers::retry::Attempt::new(2, None);
    /// let mut request = tonic::Request::new(());
    /// attempt.apply(&mut request);
    /// assert_eq!(request.metadata().get("grpc-previous-rpc-attempts").unwrap(), "1");
    /// ```
    pub fn apply<M>(&self, request: &mut tonic::Request<M>) {
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        if self.number > 1 {
            request
                .metadata_mut()
                .insert(PREVIOUS_ATTEMPTS, (self.number - 1).into());
        }
    }
}

/// Calls `attempt` until it succeeds, fails with a code the policy does not retry, runs
/// out of attempts, or runs out of `deadline`: then DEADLINE_EXCEEDED, at the deadline,
/// naming the last attempt's status. A pushback trailer of 0 or more is waited exactly,
/// and resets the backoff; a negative or unreadable one stops the retries.
///
/// # Errors
/// The last attempt's status, or DEADLINE_EXCEEDED as above.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
/// use tonic_layers::retry::{call_with_retry, RetryPolicy};
/// use tonic::{Code, Status};
/// let policy = RetryPolicy::builder()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(10))
///     .max_backoff(Duration::from_millis(10))
///     .backoff_multiplier(1.0)
///     .retryable_status_codes([Code::Unavailable])
///     .build()
///     .unwrap();
/// let err = call_with_retry(&policy, None, |_| async { Err::<(), _>(Status::unavailable("down")) }).await.unwrap_err();
/// assert_eq!(err.code(), Code::Unavailable); // after 3 attempts
/// # }
/// ```
pub async fn call_with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Deadline>,
    mut attempt: F,
) -> Result<T, Status>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    run::retry_loop(policy, deadline, |this| {
        let fut = attempt(this);
        async move { Verdict::of(fut.await) }
    })
    .await
}
