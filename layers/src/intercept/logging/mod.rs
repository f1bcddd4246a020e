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
//! Here: the header scan the future and the body share to read `grpc-status`.
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

/// The `grpc-status` and `grpc-message` values in `headers`, found in one scan when the
/// map is small: a response's headers and trailers hold a handful of entries, and
/// comparing a few names costs less than hashing a custom one twice (measured with
/// callgrind: ~350 instructions a call for the hashing, ~70 for a second scan).
fn status_of(headers: &http::HeaderMap) -> (Option<&[u8]>, Option<&[u8]>) {
    if headers.len() > 8 {
        let get = |name| headers.get(name).map(http::HeaderValue::as_bytes);
        return (get(&GRPC_STATUS), get(&GRPC_MESSAGE));
    }
    let (mut code, mut message) = (None, None);
    for (name, value) in headers {
        // The first of each, as `get` gives.
        if *name == GRPC_STATUS {
            code = code.or(Some(value.as_bytes()));
        } else if *name == GRPC_MESSAGE {
            message = message.or(Some(value.as_bytes()));
        }
    }
    (code, message)
}
