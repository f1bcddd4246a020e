//! gRFC A6 hedging: several attempts in flight, the first to finish decides.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};
use tonic::{Code, Status};

use super::run::{attempt, out_of_time, pushback, FromStatus, Next, Verdict};
use super::{Attempt, PolicyError, PolicyField, RetryThrottle, MAX_ATTEMPTS_CAP};
use crate::deadline::Deadline;

/// A validated gRFC A6 hedging policy: up to `max_attempts` attempts, one every
/// `hedging_delay`, until one succeeds or fails with a code not in
/// `non_fatal_status_codes`; then the others are cancelled.
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::retry::HedgingPolicy;
/// let policy = HedgingPolicy::builder()
///     .max_attempts(3)
///     .hedging_delay(Duration::from_millis(50))
///     .non_fatal_status_codes([tonic::Code::Unavailable])
///     .build()
///     .unwrap();
/// assert_eq!(policy.max_attempts(), 3);
/// assert_eq!(policy.hedging_delay(), Duration::from_millis(50));
/// ```
#[derive(Clone, Debug)]
pub struct HedgingPolicy {
    max_attempts: u32,
    delay: Duration,
    non_fatal: Vec<Code>,
    throttle: Option<Arc<RetryThrottle>>,
}

impl HedgingPolicy {
    /// A builder with no field set; [`HedgingPolicyBuilder::build`] validates the
    /// policy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tonic_layers::retry::HedgingPolicy;
    /// let policy = HedgingPolicy::builder().max_attempts(2).build().unwrap();
    /// assert_eq!(policy.hedging_delay(), Duration::ZERO);
    /// ```
    pub fn builder() -> HedgingPolicyBuilder {
        HedgingPolicyBuilder::default()
    }

    /// Shares a server's token bucket: no further hedges go out while it is at or below
    /// half.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use tonic_layers::retry::{HedgingPolicy, RetryThrottle};
    /// let bucket = Arc::new(RetryThrottle::new(10, 0.1).unwrap());
    /// let policy = HedgingPolicy::builder()
    ///     .max_attempts(3)
    ///     .build()
    ///     .unwrap()
    ///     .throttled_by(bucket);
    /// ```
    pub fn throttled_by(mut self, throttle: Arc<RetryThrottle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    pub(crate) fn throttle(&self) -> Option<&RetryThrottle> {
        self.throttle.as_deref()
    }

    /// Attempts in all, the first included (at most 5).
    ///
    /// ```
    /// let p = tonic_layers::retry::HedgingPolicy::builder().max_attempts(7).build().unwrap();
    /// assert_eq!(p.max_attempts(), 5);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time between one attempt and the next.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = tonic_layers::retry::HedgingPolicy::builder()
    ///     .max_attempts(2)
    ///     .hedging_delay(Duration::from_millis(5))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.hedging_delay(), Duration::from_millis(5));
    /// ```
    pub fn hedging_delay(&self) -> Duration {
        self.delay
    }

    /// Whether a failure with `code` lets the other attempts go on (and sends the next
    /// one at once).
    ///
    /// ```
    /// let p = tonic_layers::retry::HedgingPolicy::builder()
    ///     .max_attempts(2)
    ///     .non_fatal_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// assert!(p.is_non_fatal(tonic::Code::Unavailable));
    /// assert!(!p.is_non_fatal(tonic::Code::Internal));
    /// ```
    pub fn is_non_fatal(&self, code: Code) -> bool {
        self.non_fatal.contains(&code)
    }
}

/// Builds a [`HedgingPolicy`] from A6's `hedgingPolicy` fields, each set by name.
///
/// A6 requires only `maxAttempts`: [`build`](Self::build) returns
/// [`PolicyError::Missing`]`(`[`PolicyField::MaxAttempts`]`)` when it is unset. The
/// other two are optional in A6 and default as it says: `hedgingDelay` to zero (every
/// attempt is sent at once) and `nonFatalStatusCodes` to none (any failure ends the
/// call). Setting a field again replaces its value.
///
/// ```
/// use std::time::Duration;
/// use tonic::Code;
/// use tonic_layers::retry::{HedgingPolicy, PolicyError, PolicyField};
/// assert_eq!(
///     HedgingPolicy::builder().hedging_delay(Duration::from_millis(10)).build().unwrap_err(),
///     PolicyError::Missing(PolicyField::MaxAttempts)
/// );
/// let defaults = HedgingPolicy::builder().max_attempts(3).build().unwrap();
/// assert_eq!(defaults.hedging_delay(), Duration::ZERO);
/// assert!(!defaults.is_non_fatal(Code::Unavailable));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `.build()` is called"]
pub struct HedgingPolicyBuilder {
    max_attempts: Option<u32>,
    hedging_delay: Option<Duration>,
    non_fatal_status_codes: Option<Vec<Code>>,
}

impl HedgingPolicyBuilder {
    /// `maxAttempts` (required): attempts in all, the first included. It must be at
    /// least 2; values above [`MAX_ATTEMPTS_CAP`] count as 5.
    ///
    /// ```
    /// let p = tonic_layers::retry::HedgingPolicy::builder().max_attempts(4).build().unwrap();
    /// assert_eq!(p.max_attempts(), 4);
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// `hedgingDelay` (optional, default zero): the time between one attempt and the
    /// next. Zero sends every attempt at once.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = tonic_layers::retry::HedgingPolicy::builder()
    ///     .max_attempts(2)
    ///     .hedging_delay(Duration::from_millis(25))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.hedging_delay(), Duration::from_millis(25));
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn hedging_delay(mut self, hedging_delay: Duration) -> Self {
        self.hedging_delay = Some(hedging_delay);
        self
    }

    /// `nonFatalStatusCodes` (optional, default none): the codes whose failures let the
    /// other attempts go on. It may be empty.
    ///
    /// ```
    /// use tonic::Code;
    /// let p = tonic_layers::retry::HedgingPolicy::builder()
    ///     .max_attempts(2)
    ///     .non_fatal_status_codes([Code::Unavailable, Code::Aborted])
    ///     .build()
    ///     .unwrap();
    /// assert!(p.is_non_fatal(Code::Aborted) && !p.is_non_fatal(Code::Internal));
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn non_fatal_status_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.non_fatal_status_codes = Some(codes.into_iter().collect());
        self
    }

    /// Validates the policy as A6 says.
    ///
    /// # Errors
    /// [`PolicyError::Missing`] when `maxAttempts` is unset, [`PolicyError::MaxAttempts`]
    /// when it is below 2.
    ///
    /// ```
    /// use tonic_layers::retry::{HedgingPolicy, PolicyError};
    /// let err = HedgingPolicy::builder().max_attempts(1).build().unwrap_err();
    /// assert_eq!(err, PolicyError::MaxAttempts(1));
    /// ```
    #[must_use = "the policy is in the returned `Result`"]
    pub fn build(self) -> Result<HedgingPolicy, PolicyError> {
        let max_attempts = self
            .max_attempts
            .ok_or(PolicyError::Missing(PolicyField::MaxAttempts))?;
        if max_attempts < 2 {
            return Err(PolicyError::MaxAttempts(max_attempts));
        }
        Ok(HedgingPolicy {
            max_attempts: max_attempts.min(MAX_ATTEMPTS_CAP),
            delay: self.hedging_delay.unwrap_or(Duration::ZERO),
            non_fatal: self.non_fatal_status_codes.unwrap_or_default(),
            throttle: None,
        })
    }
}

enum Event<R> {
    Deadline,
    Done(usize, Verdict<R>),
    NextDue,
}

/// Runs hedged attempts as `policy` says, within `deadline`. `stopped` says that an
/// attempt has been committed, so no new one may start.
pub(crate) async fn hedge_loop<R, F, Fut>(
    policy: &HedgingPolicy,
    deadline: Option<Deadline>,
    mut run: F,
    stopped: impl Fn() -> bool,
) -> R
where
    R: FromStatus,
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Verdict<R>>,
{
    let throttle = policy.throttle.as_deref();
    let mut running: Vec<Pin<Box<Fut>>> = Vec::new();
    let mut sent = 0;
    // When the next attempt is due; `None` once no more will be sent.
    let mut next_due = Some(Instant::now());
    let mut last: Option<(Status, R)> = None;
    let mut deadline_sleep = std::pin::pin!(deadline.map(|d| sleep_until(d.instant())));
    // The timer for `next_due`, reset only when that changes; `armed` is what it is set
    // to (`None`: not armed, whatever its instant).
    let mut timer = std::pin::pin!(sleep_until(Instant::now()));
    let mut armed: Option<Instant> = None;
    loop {
        while let Some(due) = next_due.filter(|due| *due <= Instant::now()) {
            let throttled = sent > 0 && throttle.is_some_and(|t| !t.allows_retry());
            if sent >= policy.max_attempts
                || stopped()
                || throttled
                || deadline.is_some_and(|d| d.is_expired())
            {
                next_due = None;
                break;
            }
            sent += 1;
            running.push(Box::pin(run(attempt(sent, deadline))));
            next_due = Some(due.max(Instant::now()) + policy.delay);
        }
        if running.is_empty() && next_due.is_none() {
            return match last {
                Some((_, result)) => result,
                None => R::from_status(out_of_time(None)),
            };
        }
        if armed != next_due {
            armed = next_due;
            if let Some(due) = next_due {
                timer.as_mut().reset(due);
            }
        }
        let event = poll_fn(|cx| {
            if let Some(sleep) = deadline_sleep.as_mut().as_pin_mut()
                && sleep.poll(cx).is_ready()
            {
                return Poll::Ready(Event::Deadline);
            }
            for (i, attempt) in running.iter_mut().enumerate() {
                if let Poll::Ready(verdict) = attempt.as_mut().poll(cx) {
                    return Poll::Ready(Event::Done(i, verdict));
                }
            }
            match armed.map(|_| timer.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Event::NextDue),
                _ => Poll::Pending,
            }
        })
        .await;
        let (i, verdict) = match event {
            Event::Deadline => {
                return R::from_status(out_of_time(last.as_ref().map(|(s, _)| s)));
            }
            Event::NextDue => continue,
            Event::Done(i, verdict) => (i, verdict),
        };
        drop(running.swap_remove(i));
        let (status, result) = match verdict.settle(throttle, |code| policy.is_non_fatal(code)) {
            Next::Return(result) => return result,
            Next::Failed(status, result) => (status, result),
            Next::Ignore => continue,
        };
        if next_due.is_some() {
            next_due = match pushback(&status) {
                Some(Ok(wait)) => Some(Instant::now() + wait),
                Some(Err(())) => None,
                // A non-fatal failure sends the next attempt now.
                None => Some(Instant::now()),
            };
        }
        last = Some((status, result));
    }
}

/// Hedges a call: attempt 1 now, then one more every `hedging_delay` (and at once after
/// a non-fatal failure) up to `max_attempts`, all within `deadline`. The first success
/// or fatal failure ends the call, and the attempts still running are dropped, which
/// cancels them. A pushback trailer delays the next attempt, or (negative) stops them.
///
/// # Errors
/// A fatal failure; the last non-fatal one when every attempt has failed; or
/// DEADLINE_EXCEEDED at the deadline, naming the last failure.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
/// use tonic_layers::retry::{call_with_hedging, HedgingPolicy};
/// use tokio::time::{sleep, Instant};
///
/// let policy = HedgingPolicy::builder()
///     .max_attempts(3)
///     .hedging_delay(Duration::from_millis(100))
///     .non_fatal_status_codes([tonic::Code::Unavailable])
///     .build()
///     .unwrap();
/// let t0 = Instant::now();
/// // Attempt 1 would take 1 s; attempt 2, sent at 100 ms, takes 50 ms and wins.
/// let winner = call_with_hedging(&policy, None, |attempt| async move {
///     sleep(Duration::from_millis(if attempt.number == 1 { 1000 } else { 50 })).await;
///     Ok::<_, tonic::Status>(attempt.number)
/// })
/// .await
/// .unwrap();
/// assert_eq!((winner, t0.elapsed()), (2, Duration::from_millis(150)));
/// # }
/// ```
pub async fn call_with_hedging<T, F, Fut>(
    policy: &HedgingPolicy,
    deadline: Option<Deadline>,
    mut attempt: F,
) -> Result<T, Status>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    hedge_loop(
        policy,
        deadline,
        |this| {
            let fut = attempt(this);
            async move { Verdict::of(fut.await) }
        },
        || false,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_attempts_is_required_and_the_rest_default_as_a6_says() {
        assert_eq!(
            HedgingPolicy::builder()
                .hedging_delay(Duration::from_millis(5))
                .non_fatal_status_codes([Code::Unavailable])
                .build()
                .unwrap_err(),
            PolicyError::Missing(PolicyField::MaxAttempts)
        );
        let p = HedgingPolicy::builder().max_attempts(3).build().unwrap();
        assert_eq!(p.hedging_delay(), Duration::ZERO);
        assert!(p.non_fatal.is_empty());
    }

    #[test]
    fn the_builder_keeps_the_old_constructors_rules() {
        assert_eq!(
            HedgingPolicy::builder()
                .max_attempts(1)
                .build()
                .unwrap_err(),
            PolicyError::MaxAttempts(1)
        );
        let p = HedgingPolicy::builder()
            .max_attempts(7)
            .hedging_delay(Duration::from_millis(100))
            .non_fatal_status_codes([Code::Unavailable])
            .build()
            .unwrap();
        assert_eq!(p.max_attempts(), MAX_ATTEMPTS_CAP);
        assert_eq!(p.hedging_delay(), Duration::from_millis(100));
        assert!(p.is_non_fatal(Code::Unavailable));
        assert!(!p.is_non_fatal(Code::Internal));
    }
}
