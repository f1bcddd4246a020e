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

/// A field of a gRFC A6 policy, by the name A6's service config gives it.
///
/// ```
/// use tonic_layers::retry::PolicyField;
/// assert_eq!(PolicyField::InitialBackoff.to_string(), "initialBackoff");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyField {
    /// `maxAttempts` (retry and hedging policies).
    MaxAttempts,
    /// `initialBackoff` (retry policy).
    InitialBackoff,
    /// `maxBackoff` (retry policy).
    MaxBackoff,
    /// `backoffMultiplier` (retry policy).
    BackoffMultiplier,
    /// `retryableStatusCodes` (retry policy).
    RetryableStatusCodes,
}

impl PolicyField {
    /// The field's name in A6's service config (JSON), e.g. `maxBackoff`.
    ///
    /// ```
    /// use tonic_layers::retry::PolicyField;
    /// assert_eq!(PolicyField::RetryableStatusCodes.a6_name(), "retryableStatusCodes");
    /// ```
    pub fn a6_name(self) -> &'static str {
        match self {
            Self::MaxAttempts => "maxAttempts",
            Self::InitialBackoff => "initialBackoff",
            Self::MaxBackoff => "maxBackoff",
            Self::BackoffMultiplier => "backoffMultiplier",
            Self::RetryableStatusCodes => "retryableStatusCodes",
        }
    }
}

impl fmt::Display for PolicyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.a6_name())
    }
}

/// Why a retry policy is invalid (gRFC A6's validation rules).
///
/// ```
/// use std::time::Duration;
/// use tonic_layers::retry::{PolicyError, PolicyField, RetryPolicy};
/// let err = RetryPolicy::builder()
///     .max_attempts(1)
///     .initial_backoff(Duration::from_millis(1))
///     .max_backoff(Duration::from_millis(1))
///     .backoff_multiplier(2.0)
///     .retryable_status_codes([tonic::Code::Unavailable])
///     .build();
/// assert_eq!(err.unwrap_err(), PolicyError::MaxAttempts(1));
///
/// let err = RetryPolicy::builder().max_attempts(3).build().unwrap_err();
/// assert_eq!(err, PolicyError::Missing(PolicyField::InitialBackoff));
/// assert_eq!(err.to_string(), "initialBackoff is missing; A6 requires it");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A field A6 requires was never set on the builder.
    Missing(PolicyField),
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
            Self::Missing(field) => write!(f, "{field} is missing; A6 requires it"),
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

/// Builds a [`RetryPolicy`] from A6's `retryPolicy` fields, each set by name.
///
/// A6 requires all five fields; [`build`](Self::build) returns
/// [`PolicyError::Missing`] naming the first one left unset (no field has a default).
/// Setting a field again replaces its value. `build` checks the fields in A6's order
/// (`maxAttempts`, `initialBackoff`, `maxBackoff`, `backoffMultiplier`,
/// `retryableStatusCodes`) and returns the first that is missing or breaks a rule.
///
/// ```
/// use std::time::Duration;
/// use tonic::Code;
/// use tonic_layers::retry::{PolicyError, PolicyField, RetryPolicy};
/// let builder = RetryPolicy::builder()
///     .max_attempts(4)
///     .initial_backoff(Duration::from_millis(100))
///     .max_backoff(Duration::from_secs(1))
///     .backoff_multiplier(2.0);
/// assert_eq!(
///     builder.clone().build().unwrap_err(),
///     PolicyError::Missing(PolicyField::RetryableStatusCodes)
/// );
/// let policy = builder.retryable_status_codes([Code::Unavailable]).build().unwrap();
/// assert!(policy.retries(Code::Unavailable));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `.build()` is called"]
pub struct RetryPolicyBuilder {
    max_attempts: Option<u32>,
    initial_backoff: Option<Duration>,
    max_backoff: Option<Duration>,
    backoff_multiplier: Option<f64>,
    retryable_status_codes: Option<Vec<Code>>,
}

impl RetryPolicyBuilder {
    /// `maxAttempts`: attempts in all, the first included. It must be at least 2;
    /// values above [`MAX_ATTEMPTS_CAP`] count as 5.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = tonic_layers::retry::RetryPolicy::builder()
    ///     .max_attempts(9)
    ///     .initial_backoff(Duration::from_millis(1))
    ///     .max_backoff(Duration::from_millis(1))
    ///     .backoff_multiplier(1.0)
    ///     .retryable_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.max_attempts(), 5);
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// `initialBackoff`: the upper bound of the first backoff. It must be greater than
    /// zero.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = tonic_layers::retry::RetryPolicy::builder()
    ///     .max_attempts(2)
    ///     .initial_backoff(Duration::from_millis(30))
    ///     .max_backoff(Duration::from_secs(1))
    ///     .backoff_multiplier(2.0)
    ///     .retryable_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.backoff_bound(1), Duration::from_millis(30));
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = Some(initial_backoff);
        self
    }

    /// `maxBackoff`: no backoff's upper bound exceeds it. It must be greater than zero.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = tonic_layers::retry::RetryPolicy::builder()
    ///     .max_attempts(5)
    ///     .initial_backoff(Duration::from_millis(30))
    ///     .max_backoff(Duration::from_millis(50))
    ///     .backoff_multiplier(2.0)
    ///     .retryable_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.backoff_bound(2), Duration::from_millis(50));
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = Some(max_backoff);
        self
    }

    /// `backoffMultiplier`: each backoff's upper bound is the previous one's times this.
    /// It must be greater than zero and finite.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let p = tonic_layers::retry::RetryPolicy::builder()
    ///     .max_attempts(5)
    ///     .initial_backoff(Duration::from_millis(10))
    ///     .max_backoff(Duration::from_secs(1))
    ///     .backoff_multiplier(3.0)
    ///     .retryable_status_codes([tonic::Code::Unavailable])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.backoff_bound(3), Duration::from_millis(90));
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn backoff_multiplier(mut self, backoff_multiplier: f64) -> Self {
        self.backoff_multiplier = Some(backoff_multiplier);
        self
    }

    /// `retryableStatusCodes`: the codes whose failures are retried. It must not be
    /// empty.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tonic::Code;
    /// let p = tonic_layers::retry::RetryPolicy::builder()
    ///     .max_attempts(2)
    ///     .initial_backoff(Duration::from_millis(10))
    ///     .max_backoff(Duration::from_secs(1))
    ///     .backoff_multiplier(2.0)
    ///     .retryable_status_codes([Code::Unavailable, Code::ResourceExhausted])
    ///     .build()
    ///     .unwrap();
    /// assert!(p.retries(Code::ResourceExhausted) && !p.retries(Code::Internal));
    /// ```
    #[must_use = "a builder does nothing until `.build()` is called"]
    pub fn retryable_status_codes(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.retryable_status_codes = Some(codes.into_iter().collect());
        self
    }

    /// Validates the policy as A6 says.
    ///
    /// # Errors
    /// [`PolicyError::Missing`] for a field never set, or the rule a value breaks: the
    /// first such field in A6's order.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tonic_layers::retry::{PolicyError, RetryPolicy};
    /// let err = RetryPolicy::builder()
    ///     .max_attempts(3)
    ///     .initial_backoff(Duration::ZERO)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err, PolicyError::InitialBackoff);
    /// ```
    #[must_use = "the policy is in the returned `Result`"]
    pub fn build(self) -> Result<RetryPolicy, PolicyError> {
        let max_attempts = self
            .max_attempts
            .ok_or(PolicyError::Missing(PolicyField::MaxAttempts))?;
        if max_attempts < 2 {
            return Err(PolicyError::MaxAttempts(max_attempts));
        }
        let initial_backoff = self
            .initial_backoff
            .ok_or(PolicyError::Missing(PolicyField::InitialBackoff))?;
        if initial_backoff.is_zero() {
            return Err(PolicyError::InitialBackoff);
        }
        let max_backoff = self
            .max_backoff
            .ok_or(PolicyError::Missing(PolicyField::MaxBackoff))?;
        if max_backoff.is_zero() {
            return Err(PolicyError::MaxBackoff);
        }
        let multiplier = self
            .backoff_multiplier
            .ok_or(PolicyError::Missing(PolicyField::BackoffMultiplier))?;
        if !(multiplier > 0.0 && multiplier.is_finite()) {
            return Err(PolicyError::Multiplier(multiplier));
        }
        let retryable = self
            .retryable_status_codes
            .ok_or(PolicyError::Missing(PolicyField::RetryableStatusCodes))?;
        if retryable.is_empty() {
            return Err(PolicyError::NoRetryableCodes);
        }
        Ok(RetryPolicy {
            max_attempts: max_attempts.min(MAX_ATTEMPTS_CAP),
            initial_backoff,
            max_backoff,
            multiplier,
            retryable,
            seed: Some(SplitMix64::process_seed()),
            calls: Arc::new(AtomicU64::new(0)),
            throttle: None,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// All five fields, with the values the removed positional constructor was given
    /// in the docs: (4, 100 ms, 1 s, 2.0, [UNAVAILABLE]).
    fn full() -> RetryPolicyBuilder {
        RetryPolicy::builder()
            .max_attempts(4)
            .initial_backoff(ms(100))
            .max_backoff(ms(1000))
            .backoff_multiplier(2.0)
            .retryable_status_codes([Code::Unavailable])
    }

    #[test]
    fn each_missing_field_is_named_in_its_error() {
        use PolicyError::Missing;
        // The other four fields set, this one not.
        let without = |unset: fn(&mut RetryPolicyBuilder)| {
            let mut builder = full();
            unset(&mut builder);
            builder.build().unwrap_err()
        };
        assert_eq!(
            without(|b| b.max_attempts = None),
            Missing(PolicyField::MaxAttempts)
        );
        assert_eq!(
            without(|b| b.initial_backoff = None),
            Missing(PolicyField::InitialBackoff)
        );
        assert_eq!(
            without(|b| b.max_backoff = None),
            Missing(PolicyField::MaxBackoff)
        );
        assert_eq!(
            without(|b| b.backoff_multiplier = None),
            Missing(PolicyField::BackoffMultiplier)
        );
        assert_eq!(
            without(|b| b.retryable_status_codes = None),
            Missing(PolicyField::RetryableStatusCodes)
        );
        assert_eq!(
            RetryPolicy::builder().build().unwrap_err(),
            Missing(PolicyField::MaxAttempts),
            "an empty builder names the first field in A6's order"
        );
        assert_eq!(
            Missing(PolicyField::MaxBackoff).to_string(),
            "maxBackoff is missing; A6 requires it"
        );
    }

    #[test]
    fn a_missing_field_is_told_apart_from_an_invalid_one() {
        assert_eq!(
            full().retryable_status_codes([]).build().unwrap_err(),
            PolicyError::NoRetryableCodes
        );
        assert_eq!(
            full().max_attempts(1).build().unwrap_err(),
            PolicyError::MaxAttempts(1)
        );
        // The first field in A6's order that is missing or invalid decides.
        assert_eq!(
            RetryPolicy::builder()
                .max_attempts(3)
                .max_backoff(Duration::ZERO)
                .build()
                .unwrap_err(),
            PolicyError::Missing(PolicyField::InitialBackoff)
        );
    }

    #[test]
    fn the_builder_gives_the_old_constructors_schedule() {
        let policy = full().max_attempts(9).build().unwrap().without_jitter();
        assert_eq!(policy.max_attempts(), MAX_ATTEMPTS_CAP);
        assert_eq!(policy.backoffs(4), [100, 200, 400, 800].map(ms));
        assert_eq!(policy.backoffs(6)[4..], [ms(1000), ms(1000)]);
        assert!(policy.retries(Code::Unavailable));
        assert!(!policy.retries(Code::Internal));
    }

    #[test]
    fn the_order_fields_are_set_in_does_not_matter_and_the_last_value_wins() {
        let reordered = RetryPolicy::builder()
            .retryable_status_codes([Code::Unavailable])
            .backoff_multiplier(2.0)
            .max_backoff(ms(1000))
            .initial_backoff(ms(7))
            .initial_backoff(ms(100))
            .max_attempts(4)
            .build()
            .unwrap()
            .seed(42);
        let in_order = full().build().unwrap().seed(42);
        assert_eq!(reordered.max_attempts(), in_order.max_attempts());
        assert_eq!(reordered.backoffs(4), in_order.backoffs(4));
        assert_eq!(
            reordered.without_jitter().backoffs(4),
            [100, 200, 400, 800].map(ms)
        );
    }
}
