#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! # tonic-layers
//!
//! The tower layers a tonic 0.14 service needs in production and tonic lacks, each tested
//! through real tonic calls:
//!
//! | module | what |
//! |---|---|
//! | [`deadline`] | the strict `grpc-timeout` codec, a deadline a handler can read, enforcement on the whole call (streams too) with DEADLINE_EXCEEDED, propagation to outbound calls |
//! | [`metadata`] | key normalisation and validation, ASCII and `-bin` values, size limits, never a panic |
//! | [`retry`] | gRFC A6 retries and hedging with one deadline budget and request replay |
//! | [`cancel`] | a signal a handler's spawned work can wait on when the client goes away |
//! | [`connection`] | a connection lost under a call as UNAVAILABLE, as the spec maps it (tonic says UNKNOWN) |
//! | [`intercept`] | logging (every stream message), bearer-token auth, trace ids |
//!
//! and the primitives they share, at the bottom: [`rng`] (seeded, replayable) and
//! [`framing`] (gRPC length-prefixed messages), and [`method`] (what a `.proto` says of a
//! method's shape).
//!
//! Its normal dependencies are all crates that a tonic service already builds (tonic,
//! tonic-prost and prost pull each one in), so adding it adds no crate to a build.
//!
//! ```
//! use std::time::Duration;
//! use tonic_layers::deadline::{format_grpc_timeout, parse_grpc_timeout};
//! assert_eq!(parse_grpc_timeout("1500m").unwrap(), Duration::from_millis(1500));
//! assert_eq!(format_grpc_timeout(Duration::from_secs(1)), "1000000u");
//! ```

pub mod framing;
pub mod method;
pub mod rng;

pub mod cancel;
pub mod connection;
pub mod deadline;
pub mod intercept;
pub mod metadata;
pub mod retry;

mod body;
mod headers;
