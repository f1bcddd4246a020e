//! Interceptors as tower layers. This first piece: trace ids.
//!
//! [`TraceIdLayer`] (server) reads the `trace-id` header (the name is configurable),
//! generates one when it is missing, makes it readable in the handler's task
//! ([`current_trace_id`]) and in the request extensions, and records it on a `tracing`
//! span around the call. [`PropagateTraceIdLayer`] (client) adds it to outbound calls.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use grpc_chaos::intercept::{current_trace_id, with_trace_id};
//! let seen = with_trace_id("abc123".into(), async { current_trace_id() }).await;
//! assert_eq!(seen.as_deref(), Some("abc123"));
//! # }
//! ```

mod trace_id;

pub use trace_id::{
    current_trace_id, with_trace_id, PropagateTraceId, PropagateTraceIdLayer, TraceId,
    TraceIdLayer, TraceIdValue, DEFAULT_TRACE_HEADER,
};
