//! The retry loop both forms share: the function form and the tower layer.

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};
use tonic::{Code, Status};

use super::{Attempt, RetryPolicy, RetryThrottle, PUSHBACK};
use crate::deadline::Deadline;

/// How one attempt went, as the loops see it.
pub(crate) enum Verdict<R> {
    /// Success: `R` is the call's result.
    Success(R),
    /// The call is this attempt's (response headers arrived): `R` is its result, and
    /// its final status, still to come, settles the throttle.
    Committed(R),
    /// A failure with `status`; `result` is the call's result if nothing follows.
    /// A `committed` attempt (response headers seen, or the replay buffer overflowed)
    /// is never followed by another.
    Failed {
        status: Status,
        result: R,
        committed: bool,
    },
    /// Another attempt was committed while this one ran: it no longer counts.
    Superseded,
}

impl<T> Verdict<Result<T, Status>> {
    /// The function forms' view: any error is a plain, uncommitted failure.
    pub(crate) fn of(result: Result<T, Status>) -> Self {
        match result {
            Ok(value) => Self::Success(Ok(value)),
            Err(status) => Self::Failed {
                status: status.clone(),
                result: Err(status),
                committed: false,
            },
        }
    }
}

/// What a loop does after an attempt.
pub(crate) enum Next<R> {
    /// End the call with this.
    Return(R),
    /// A failure another attempt may follow; `R` ends the call if none does.
    Failed(Status, R),
    /// Nothing: the attempt no longer counts.
    Ignore,
}

impl<R> Verdict<R> {
    /// Settles an attempt: a success gives a token back and ends the call; a committed
    /// failure, or one whose code `follows` rejects, ends it; any other failure takes a
    /// token and may be followed.
    pub(crate) fn settle(
        self,
        throttle: Option<&RetryThrottle>,
        follows: impl Fn(Code) -> bool,
    ) -> Next<R> {
        match self {
            Self::Success(result) => {
                if let Some(t) = throttle {
                    t.on_success();
                }
                Next::Return(result)
            }
            Self::Committed(result) => Next::Return(result),
            Self::Failed {
                status,
                result,
                committed,
            } => {
                if committed || !follows(status.code()) {
                    return Next::Return(result);
                }
                if let Some(t) = throttle {
                    t.on_failure();
                }
                Next::Failed(status, result)
            }
            Self::Superseded => Next::Ignore,
        }
    }
}

/// What a call ends with when its budget runs out.
pub(crate) trait FromStatus {
    fn from_status(status: Status) -> Self;
}

impl<T> FromStatus for Result<T, Status> {
    fn from_status(status: Status) -> Self {
        Err(status)
    }
}

/// What the server's pushback says: wait this long, or (`Err`) stop.
pub(crate) fn pushback(status: &Status) -> Option<Result<Duration, ()>> {
    let value = status.metadata().get(PUSHBACK)?;
    // A6: a non-negative integer, in ASCII digits; anything else stops the retries.
    let text = value.to_str().ok().filter(|t| !t.is_empty());
    let ms = text
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok());
    Some(ms.map(Duration::from_millis).ok_or(()))
}

/// DEADLINE_EXCEEDED, naming the last attempt's status.
pub(crate) fn out_of_time(last: Option<&Status>) -> Status {
    match last {
        Some(s) => Status::deadline_exceeded(format!(
            "deadline exceeded while retrying; last attempt: {:?} {:?}",
            s.code(),
            s.message()
        )),
        None => Status::deadline_exceeded("deadline exceeded before the first attempt"),
    }
}

/// The attempt `number`, with what is left of `deadline`.
pub(crate) fn attempt(number: u32, deadline: Option<Deadline>) -> Attempt {
    Attempt {
        number,
        timeout: deadline.map(|d| d.remaining()),
    }
}

/// Runs attempts one after another as `policy` says, within `deadline`.
pub(crate) async fn retry_loop<R, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Deadline>,
    run: F,
) -> R
where
    R: FromStatus,
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Verdict<R>>,
{
    retry_after(policy, deadline, run, None).await
}

/// [`retry_loop`], when attempt 1 ran elsewhere and failed with `(status, result)`
/// (settled already): from the decision whether a second attempt follows. `None`:
/// from attempt 1.
pub(crate) async fn retry_after<R, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Deadline>,
    mut run: F,
    first_failure: Option<(Status, R)>,
) -> R
where
    R: FromStatus,
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Verdict<R>>,
{
    let mut schedule = policy.schedule();
    let mut last: Option<Status> = None;
    let throttle = policy.throttle();
    let mut number = u32::from(first_failure.is_some());
    let mut failed = first_failure;
    loop {
        if let Some((status, result)) = failed.take() {
            if number >= policy.max_attempts() || throttle.is_some_and(|t| !t.allows_retry()) {
                return result;
            }
            let wait = match pushback(&status) {
                Some(Ok(wait)) => {
                    schedule.reset();
                    wait
                }
                Some(Err(())) => return result,
                None => schedule.next_backoff(),
            };
            if let Some(d) = deadline
                && Instant::now() + wait >= d.instant()
            {
                sleep_until(d.instant()).await;
                return R::from_status(out_of_time(Some(&status)));
            }
            last = Some(status);
            sleep(wait).await;
        }
        number += 1;
        if deadline.is_some_and(|d| d.is_expired()) {
            return R::from_status(out_of_time(last.as_ref()));
        }
        let this = attempt(number, deadline);
        let verdict = match deadline {
            None => run(this).await,
            Some(d) => tokio::select! {
                biased;
                () = sleep_until(d.instant()) => return R::from_status(out_of_time(last.as_ref())),
                verdict = run(this) => verdict,
            },
        };
        match verdict.settle(throttle, |code| policy.retries(code)) {
            Next::Return(result) => return result,
            Next::Failed(status, result) => failed = Some((status, result)),
            // One attempt at a time: nothing else can have been committed.
            Next::Ignore => return R::from_status(Status::cancelled("attempt superseded")),
        }
    }
}
