//! The retry and hedging policies the retry benches measure.

use std::time::Duration;

use grpc_chaos::retry::{HedgingPolicy, RetryPolicy};
use tonic::Code;

/// Three attempts, backing off from 100 ms, retrying UNAVAILABLE.
pub fn retry() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(1))
        .backoff_multiplier(2.0)
        .retryable_status_codes([Code::Unavailable])
        .build()
        .expect("a valid retry policy")
}

/// Three attempts, 100 ms apart, UNAVAILABLE non-fatal.
pub fn hedge() -> HedgingPolicy {
    HedgingPolicy::builder()
        .max_attempts(3)
        .hedging_delay(Duration::from_millis(100))
        .non_fatal_status_codes([Code::Unavailable])
        .build()
        .expect("a valid hedging policy")
}
