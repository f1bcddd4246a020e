//! Interceptors as tower layers: trace ids and logging.
//!
//! | layer | side | what it does |
//! |---|---|---|
//! | [`TraceIdLayer`] | server | reads `trace-id` or generates one; [`current_trace_id`] in the handler's task, [`TraceIdValue`] in the extensions, a `tracing` span around the call |
//! | [`PropagateTraceIdLayer`] | client | adds the current trace id to outbound calls |
//! | [`LoggingLayer`] | both | logs the start (method, shape, redacted metadata), every message each way (index, size, optionally decoded), and the end (status, duration) |

mod logging;
mod trace_id;

pub use logging::{Logging, LoggingLayer, ResponseFuture as LoggingResponseFuture};
pub use trace_id::{
    current_trace_id, with_trace_id, PropagateTraceId, PropagateTraceIdLayer, TraceId,
    TraceIdLayer, TraceIdValue, DEFAULT_TRACE_HEADER,
};
