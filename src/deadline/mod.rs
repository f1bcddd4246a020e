//! Deadlines: the `grpc-timeout` header codec.
//!
//! gRPC sends a deadline as a relative timeout, `grpc-timeout: 1-8 ASCII digits + unit`.
//! tonic 0.14 ignores malformed values silently and accepts `+1S`; [`parse_grpc_timeout`]
//! follows the spec to the letter and says what is wrong with a bad value.
//!
//! ```
//! use std::time::Duration;
//! use grpc_chaos::deadline::{format_grpc_timeout, parse_grpc_timeout};
//!
//! assert_eq!(parse_grpc_timeout("1500m").unwrap(), Duration::from_millis(1500));
//! assert!(parse_grpc_timeout("+1S").is_err());
//! assert_eq!(format_grpc_timeout(Duration::from_secs(1)), "1000000u");
//! ```

pub(crate) mod timeout;

pub use timeout::{format_grpc_timeout, parse_grpc_timeout, GrpcTimeoutError, TimeoutUnit};
