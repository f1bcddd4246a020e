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
//! Here: the header lookups the future and the body share to read `grpc-status`.
//!
//! Every event uses the target `tonic_layers::intercept::logging` (`TARGET`), whichever
//! file writes it.

mod body;
mod future;
mod layer;
mod record;
mod service;

use http::HeaderName;

pub use future::ResponseFuture;
pub use layer::LoggingLayer;
pub use service::Logging;

/// The target of every event and level check, set explicitly so that it stays the
/// module's path, not that of the file writing the event.
const TARGET: &str = "tonic_layers::intercept::logging";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Parsed once: looking a header up by `&str` parses the name on every call.
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `headers.get(name)`, by a scan when the map is small: a response's headers and
/// trailers hold a handful of entries, and comparing a few names costs less than
/// hashing a custom one (measured with callgrind: ~350 instructions a call).
fn lookup<'a>(headers: &'a http::HeaderMap, name: &HeaderName) -> Option<&'a http::HeaderValue> {
    if headers.len() > 8 {
        return headers.get(name);
    }
    headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}
