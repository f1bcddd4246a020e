//! gRFC A6 retry policies and their backoff schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use super::builder::RetryPolicyBuilder;
use super::RetryThrottle;
use crate::rng::SplitMix64;

/// A validated gRFC A6 retry policy, with seeded jitter (or none).
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::retry::RetryPolicy;
/// let policy = RetryPolicy::builder()
///     .max_attempts(9)
///     .initial_backoff(Duration::from_millis(100))
///     .max_backoff(Duration::from_secs(1))
///     .backoff_multiplier(2.0)
///     .retryable_status_codes([tonic::Code::Unavailable])
///     .build()
///     .unwrap()
///     .without_jitter();
/// assert_eq!(policy.max_attempts(), 5); // capped
/// assert_eq!(policy.backoffs(4), [100, 200, 400, 800].map(Duration::from_millis));
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub(super) max_attempts: u32,
    pub(super) initial_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) multiplier: f64,
    pub(super) retryable: Vec<Code>,
    /// `None`: no jitter, every backoff is its upper bound.
    pub(super) seed: Option<u64>,
    /// How many calls have drawn a schedule: call `k` draws from its own stream.
    pub(super) calls: Arc<AtomicU64>,
    /// The target's token bucket, shared with every other call to it.
    pub(super) throttle: Option<Arc<RetryThrottle>>,
}

impl RetryPolicy {
    /// A builder with no field set; [`RetryPolicyBuilder::build`] validates the policy.
    /// Jitter is random (seeded once per process) until [`RetryPolicy::seed`] fixes it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = tonic_layers::retry::RetryPolicy::builder()
    ///     .max_attempts(3)
    ///     .initial_backoff(Duration::from_millis(50))
    ///     .max_backoff(Duration::from_secs(1))
    ///     .backoff_multiplier(1.5)
    ///     .retryable_status_codes([tonic::Code::Unavailable])
    ///     .build();
    /// assert_eq!(p.unwrap().max_attempts(), 3);
    /// ```
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::default()
    }

    /// Seeds the jitter, so that runs replay: each call draws its backoffs from its own
    /// stream (calls spread out, as A6 wants), and the `k`-th call of this policy and its
    /// clones draws the same ones in every run.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
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
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
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
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
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
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
    /// assert_eq!(p.max_attempts(), 3);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a failure with `code` is retried.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
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
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_millis(80)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
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
    /// # let p = tonic_layers::retry::RetryPolicy::builder().max_attempts(3).initial_backoff(Duration::from_millis(50)).max_backoff(Duration::from_secs(1)).backoff_multiplier(2.0).retryable_status_codes([tonic::Code::Unavailable]).build().unwrap();
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
