//! Logging through `tracing`: the start of each call, every message each way, and the
//! end, for servers and clients alike.
//!
//! One idea a file, as in tower-http's `trace/`:
//! - `layer`: [`LoggingLayer`], its configuration (side, redaction, method hints and
//!   decoders) and builder methods;
//! - `service`: [`Logging`], the service it makes, which starts each call's log;
//! - `future`: [`ResponseFuture`], which wraps the response body, or ends the log of a
//!   Trailers-Only response or a failed call;
//! - `body`: the body wrapper that counts (and logs) the messages and sees the trailers;
//! - `record`: what one call's log records and how each event is written.
//!
//! Every event uses the target `tonic_layers::intercept::logging` (`TARGET`), whichever
//! file writes it.

mod body;
mod future;
mod layer;
mod record;
mod service;

pub use future::ResponseFuture;
pub use layer::LoggingLayer;
pub use service::Logging;

/// The target of every event and level check, set explicitly so that it stays the
/// module's path, not that of the file writing the event.
const TARGET: &str = "tonic_layers::intercept::logging";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
