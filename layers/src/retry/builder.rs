//! Building a [`RetryPolicy`] from A6's `retryPolicy` fields, set by name.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use super::error::{PolicyError, PolicyField, MAX_ATTEMPTS_CAP};
use super::policy::RetryPolicy;
use crate::rng::SplitMix64;

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
