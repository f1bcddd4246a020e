//! gRFC A6 retry policies and their backoff schedule.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use super::RetryThrottle;
use crate::rng::SplitMix64;

/// A6 caps `maxAttempts` at 5: larger values are treated as 5.
pub const MAX_ATTEMPTS_CAP: u32 = 5;

/// Why a retry policy is invalid (gRFC A6's validation rules).
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::retry::{PolicyError, RetryPolicy};
/// let err = RetryPolicy::new(1, Duration::from_millis(1), Duration::from_millis(1), 2.0, [tonic::Code::Unavailable]);
/// assert_eq!(err.unwrap_err(), PolicyError::MaxAttempts(1));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyError {
    /// `maxAttempts` must be at least 2 (it counts the first attempt).
    MaxAttempts(u32),
    /// `initialBackoff` must be greater than zero.
    InitialBackoff,
    /// `maxBackoff` must be greater than zero.
    MaxBackoff,
    /// `backoffMultiplier` must be greater than zero (and finite).
    Multiplier(f64),
    /// `retryableStatusCodes` must not be empty.
    NoRetryableCodes,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxAttempts(n) => write!(f, "maxAttempts is {n}; it must be at least 2"),
            Self::InitialBackoff => write!(f, "initialBackoff must be greater than zero"),
            Self::MaxBackoff => write!(f, "maxBackoff must be greater than zero"),
            Self::Multiplier(m) => {
                write!(f, "backoffMultiplier is {m}; it must be greater than zero")
            }
            Self::NoRetryableCodes => write!(f, "retryableStatusCodes must not be empty"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// A validated gRFC A6 retry policy, with seeded jitter (or none).
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::retry::RetryPolicy;
/// let policy = RetryPolicy::new(9, Duration::from_millis(100), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable])
///     .unwrap()
///     .without_jitter();
/// assert_eq!(policy.max_attempts(), 5); // capped
/// assert_eq!(policy.backoffs(4), [100, 200, 400, 800].map(Duration::from_millis));
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    multiplier: f64,
    retryable: Vec<Code>,
    /// `None`: no jitter, every backoff is its upper bound.
    seed: Option<u64>,
    /// How many calls have drawn a schedule: call `k` draws from its own stream.
    calls: Arc<AtomicU64>,
    /// The target's token bucket, shared with every other call to it.
    throttle: Option<Arc<RetryThrottle>>,
}

impl RetryPolicy {
    /// Validates a policy as A6 says. Jitter is random (seeded once per process) until
    /// [`RetryPolicy::seed`] fixes it.
    ///
    /// # Errors
    /// The first rule the values break.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 1.5, [tonic::Code::Unavailable]);
    /// assert!(p.is_ok());
    /// ```
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        backoff_multiplier: f64,
        retryable_status_codes: impl IntoIterator<Item = Code>,
    ) -> Result<Self, PolicyError> {
        if max_attempts < 2 {
            return Err(PolicyError::MaxAttempts(max_attempts));
        }
        if initial_backoff.is_zero() {
            return Err(PolicyError::InitialBackoff);
        }
        if max_backoff.is_zero() {
            return Err(PolicyError::MaxBackoff);
        }
        if !(backoff_multiplier > 0.0 && backoff_multiplier.is_finite()) {
            return Err(PolicyError::Multiplier(backoff_multiplier));
        }
        let retryable: Vec<Code> = retryable_status_codes.into_iter().collect();
        if retryable.is_empty() {
            return Err(PolicyError::NoRetryableCodes);
        }
        Ok(Self {
            max_attempts: max_attempts.min(MAX_ATTEMPTS_CAP),
            initial_backoff,
            max_backoff,
            multiplier: backoff_multiplier,
            retryable,
            seed: Some(SplitMix64::process_seed()),
            calls: Arc::new(AtomicU64::new(0)),
            throttle: None,
        })
    }

    /// Seeds the jitter, so that runs replay: each call draws its backoffs from its own
    /// stream (calls spread out, as A6 wants), and the `k`-th call of this policy and its
    /// clones draws the same ones in every run.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// let p = p.seed(42);
    /// assert_eq!(p.backoffs(2), p.clone().backoffs(2));
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.calls = Arc::new(AtomicU64::new(0));
        self
    }

    /// No jitter: each backoff is its upper bound, for exact schedules in tests.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// assert_eq!(p.without_jitter().backoffs(2), [Duration::from_millis(50), Duration::from_millis(100)]);
    /// ```
    pub fn without_jitter(mut self) -> Self {
        self.seed = None;
        self
    }

    /// Shares a server's token bucket: retries stop while it is at or below half.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// let bucket = Arc::new(tonic_layers::retry::RetryThrottle::new(10, 0.1).unwrap());
    /// let p = p.throttled_by(bucket);
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
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// assert_eq!(p.max_attempts(), 3);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a failure with `code` is retried.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// assert!(!p.retries(tonic::Code::InvalidArgument));
    /// ```
    pub fn retries(&self, code: Code) -> bool {
        self.retryable.contains(&code)
    }

    /// The upper bound of backoff `n` (1 for the wait before the second attempt):
    /// `min(initialBackoff × multiplier^(n−1), maxBackoff)`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_millis(80), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// assert_eq!(p.backoff_bound(2), Duration::from_millis(80));
    /// ```
    pub fn backoff_bound(&self, n: u32) -> Duration {
        let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let scaled = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        if !scaled.is_finite() || scaled >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(scaled)
        }
    }

    /// The first `count` backoffs the first call of this policy would wait, with its
    /// jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::new(3, Duration::from_millis(50), Duration::from_secs(1), 2.0, [tonic::Code::Unavailable]).unwrap();
    /// assert_eq!(p.backoffs(3).len(), 3);
    /// ```
    pub fn backoffs(&self, count: usize) -> Vec<Duration> {
        let mut schedule = self.schedule_of(0);
        (0..count).map(|_| schedule.next_backoff()).collect()
    }

    /// The schedule of the next call.
    pub(crate) fn schedule(&self) -> Schedule<'_> {
        self.schedule_of(self.calls.fetch_add(1, Ordering::Relaxed))
    }

    fn schedule_of(&self, call: u64) -> Schedule<'_> {
        Schedule {
            policy: self,
            n: 1,
            rng: self.seed.map(|seed| {
                SplitMix64::new(seed.wrapping_add(call.wrapping_mul(0xD1B5_4A32_D192_ED03)))
            }),
        }
    }
}

/// The backoffs of one call, in order.
pub(crate) struct Schedule<'a> {
    policy: &'a RetryPolicy,
    n: u32,
    rng: Option<SplitMix64>,
}

impl Schedule<'_> {
    pub(crate) fn next_backoff(&mut self) -> Duration {
        let bound = self.policy.backoff_bound(self.n);
        self.n = self.n.saturating_add(1);
        match &mut self.rng {
            None => bound,
            Some(rng) => bound.mul_f64(rng.next_f64()),
        }
    }

    /// After a pushback, backoff starts again from `initialBackoff`.
    pub(crate) fn reset(&mut self) {
        self.n = 1;
    }
}
