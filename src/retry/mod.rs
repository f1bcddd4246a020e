//! gRFC A6 retries with one deadline budget across attempts.
//!
//! This first piece is the policy and a plain async function form, for code that does
//! not use tower: [`call_with_retry`] replaces the walkthrough's `CallWithRetry`, which
//! gave every attempt a fresh timeout and so could blow its caller's deadline. All
//! attempts and backoffs share one [`Deadline`]; no sleep runs past it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use grpc_chaos::deadline::Deadline;
//! use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
//! use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
//! use grpc_chaos::retry::{call_with_retry, RetryPolicy};
//! use tonic::Code;
//!
//! let flaky = FakeServer::in_memory();
//! Stub::given(method("/pb.Greeter/SayHello"))
//!     .respond_with(Reply::sequence([
//!         Reply::error(Code::Unavailable, "warming up"),
//!         Reply::message(&HelloReply { message: "hi".into() }),
//!     ]))
//!     .mount(&flaky);
//! let policy = RetryPolicy::new(4, Duration::from_millis(100), Duration::from_secs(1), 2.0, [Code::Unavailable])
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

mod policy;
mod throttle;

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};
use tonic::Status;

use crate::deadline::Deadline;

pub use policy::{PolicyError, RetryPolicy, MAX_ATTEMPTS_CAP};
pub use throttle::RetryThrottle;

/// The header that tells a server how many attempts came before (absent on the first).
pub const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";
/// The trailer a server sends to say when to retry, or not to.
pub const PUSHBACK: &str = "grpc-retry-pushback-ms";

/// One attempt: its number, and the time it has.
///
/// ```
/// # use grpc_chaos::retry::Attempt;
/// # fn f(attempt: Attempt) {
/// let mut request = tonic::Request::new(());
/// attempt.apply(&mut request); // timeout = the budget left, and grpc-previous-rpc-attempts
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// What is left of the deadline when the attempt starts.
    pub timeout: Option<Duration>,
}

impl Attempt {
    /// Sets the request's timeout to the budget left, and `grpc-previous-rpc-attempts`
    /// on every attempt after the first.
    ///
    /// ```
    /// let attempt = grpc_chaos::retry::Attempt { number: 2, timeout: None };
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

/// What the server's pushback says.
fn pushback(status: &Status) -> Option<Result<Duration, ()>> {
    let value = status.metadata().get(PUSHBACK)?;
    let ms = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok());
    Some(match ms {
        Some(ms) if ms >= 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(()),
    })
}

fn out_of_time(last: Option<&Status>) -> Status {
    match last {
        Some(s) => Status::deadline_exceeded(format!(
            "deadline exceeded while retrying; last attempt: {:?} {:?}",
            s.code(),
            s.message()
        )),
        None => Status::deadline_exceeded("deadline exceeded before the first attempt"),
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
/// use grpc_chaos::retry::{call_with_retry, RetryPolicy};
/// use tonic::{Code, Status};
/// let policy = RetryPolicy::new(3, Duration::from_millis(10), Duration::from_millis(10), 1.0, [Code::Unavailable]).unwrap();
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
    let mut schedule = policy.schedule();
    let mut last: Option<Status> = None;
    for number in 1.. {
        if deadline.is_some_and(|d| d.is_expired()) {
            return Err(out_of_time(last.as_ref()));
        }
        let this = Attempt {
            number,
            timeout: deadline.map(|d| d.remaining()),
        };
        let result = match deadline {
            None => attempt(this).await,
            Some(d) => tokio::select! {
                biased;
                () = sleep_until(d.instant()) => return Err(out_of_time(last.as_ref())),
                result = attempt(this) => result,
            },
        };
        let throttle = policy.throttle();
        let status = match result {
            Ok(value) => {
                if let Some(t) = throttle {
                    t.on_success();
                }
                return Ok(value);
            }
            Err(status) => status,
        };
        if !policy.retries(status.code()) {
            return Err(status);
        }
        if let Some(t) = throttle {
            t.on_failure();
        }
        if number >= policy.max_attempts() || throttle.is_some_and(|t| !t.allows_retry()) {
            return Err(status);
        }
        let wait = match pushback(&status) {
            Some(Ok(wait)) => {
                schedule.reset();
                wait
            }
            Some(Err(())) => return Err(status),
            None => schedule.next_backoff(),
        };
        if let Some(d) = deadline {
            if Instant::now() + wait >= d.instant() {
                sleep_until(d.instant()).await;
                return Err(out_of_time(Some(&status)));
            }
        }
        last = Some(status);
        sleep(wait).await;
    }
    unreachable!("the loop returns")
}
