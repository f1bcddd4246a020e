//! What can be wrong with a gRFC A6 policy, by the names A6's service config uses.

use std::fmt;

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
