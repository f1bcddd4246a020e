//! gRFC A6 retry throttling: one token bucket per server.

use std::fmt;
use std::sync::Mutex;

/// Why a [`RetryThrottle`] is invalid (gRFC A6's `retryThrottling` rules), naming the
/// value out of range.
///
/// ```
/// use tonic_layers::retry::{RetryThrottle, ThrottleError};
/// let err = RetryThrottle::new(0, 0.1).unwrap_err();
/// assert_eq!(err, ThrottleError::MaxTokens(0));
/// assert_eq!(err.to_string(), "maxTokens is 0; it must be in 1..=1000");
/// assert!(matches!(RetryThrottle::new(10, -1.0), Err(ThrottleError::TokenRatio(r)) if r == -1.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ThrottleError {
    /// `maxTokens` must be in 1..=1000.
    MaxTokens(u32),
    /// `tokenRatio` must be greater than zero (and finite).
    TokenRatio(f64),
}

impl fmt::Display for ThrottleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxTokens(n) => write!(f, "maxTokens is {n}; it must be in 1..=1000"),
            Self::TokenRatio(r) => write!(f, "tokenRatio is {r}; it must be greater than zero"),
        }
    }
}

impl std::error::Error for ThrottleError {}

/// A token bucket shared by every call to one server. It starts full; each retryable
/// failure takes a token, each success gives back `token_ratio`; while tokens are at
/// or below half of `max_tokens`, nothing is retried.
///
/// ```
/// use tonic_layers::retry::RetryThrottle;
/// let throttle = RetryThrottle::new(10, 0.5).unwrap();
/// for _ in 0..5 { throttle.on_failure(); }
/// assert!(!throttle.allows_retry()); // 5 tokens left: not above half of 10
/// for _ in 0..2 { throttle.on_success(); }
/// assert!(throttle.allows_retry()); // 6
/// ```
#[derive(Debug)]
pub struct RetryThrottle {
    max_tokens: f64,
    token_ratio: f64,
    tokens: Mutex<f64>,
}

impl RetryThrottle {
    /// A full bucket. A6 asks for `max_tokens` in 1..=1000 and a positive `token_ratio`
    /// (only 3 decimals count: it is rounded to them).
    ///
    /// # Errors
    /// [`ThrottleError`], naming the value out of range.
    ///
    /// ```
    /// use tonic_layers::retry::{RetryThrottle, ThrottleError};
    /// assert_eq!(RetryThrottle::new(0, 0.1).unwrap_err(), ThrottleError::MaxTokens(0));
    /// ```
    pub fn new(max_tokens: u32, token_ratio: f64) -> Result<Self, ThrottleError> {
        if !(1..=1000).contains(&max_tokens) {
            return Err(ThrottleError::MaxTokens(max_tokens));
        }
        if !(token_ratio > 0.0 && token_ratio.is_finite()) {
            return Err(ThrottleError::TokenRatio(token_ratio));
        }
        let max_tokens = f64::from(max_tokens);
        let token_ratio = (token_ratio * 1000.0).round() / 1000.0;
        Ok(Self {
            max_tokens,
            token_ratio,
            tokens: Mutex::new(max_tokens),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut f64) -> R) -> R {
        f(&mut self.tokens.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether a retry may go out now.
    ///
    /// ```
    /// assert!(tonic_layers::retry::RetryThrottle::new(10, 0.1).unwrap().allows_retry());
    /// ```
    pub fn allows_retry(&self) -> bool {
        self.with(|t| *t > self.max_tokens / 2.0)
    }

    /// A retryable failure (or a pushback) took a token.
    ///
    /// ```
    /// tonic_layers::retry::RetryThrottle::new(10, 0.1).unwrap().on_failure();
    /// ```
    pub fn on_failure(&self) {
        self.with(|t| *t = (*t - 1.0).max(0.0));
    }

    /// A success gave back `token_ratio`.
    ///
    /// ```
    /// tonic_layers::retry::RetryThrottle::new(10, 0.1).unwrap().on_success();
    /// ```
    pub fn on_success(&self) {
        self.with(|t| *t = (*t + self.token_ratio).min(self.max_tokens));
    }

    /// The tokens now.
    ///
    /// ```
    /// assert_eq!(tonic_layers::retry::RetryThrottle::new(10, 0.1).unwrap().tokens(), 10.0);
    /// ```
    pub fn tokens(&self) -> f64 {
        self.with(|t| *t)
    }
}
