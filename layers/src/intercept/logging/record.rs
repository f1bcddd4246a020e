//! What one call's log records and how it is written: [`CallLog`], shared by the request
//! and response bodies, and every event the layer writes (start, messages, end), with
//! the helpers that format their fields.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use http::HeaderMap;
use tokio::time::Instant;

use super::layer::{Config, Decoder, Side};
use super::TARGET;
use crate::framing::Message;
use crate::intercept::TraceId;

/// What one call's log shares between its request and response bodies.
pub(super) struct CallLog {
    pub(super) side: Side,
    uri: http::Uri,
    trace_id: Option<Arc<str>>,
    start: Instant,
    messages: bool,
    pub(super) requests: AtomicU64,
    pub(super) responses: AtomicU64,
    ended: AtomicBool,
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallLog")
            .field("method", &self.uri.path())
            .finish_non_exhaustive()
    }
}

impl CallLog {
    /// Starts the log of `request`'s call and logs its start. `messages` says whether
    /// its messages are logged (and counted for the end).
    pub(super) fn start<B>(
        config: &Config,
        request: &http::Request<B>,
        shape: Option<(bool, bool)>,
        messages: bool,
    ) -> Arc<Self> {
        let log = Arc::new(CallLog {
            side: config.side,
            uri: request.uri().clone(),
            trace_id: request.extensions().get::<TraceId>().map(|t| t.0.clone()),
            start: Instant::now(),
            messages,
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        });
        tracing::info!(
            target: TARGET,
            side = config.side.as_str(),
            method = %log.uri.path(),
            trace_id = %Opt(log.trace_id.as_deref()),
            client_streaming = %Known(shape.map(|s| s.0)),
            server_streaming = %Known(shape.map(|s| s.1)),
            metadata = %Redacted { headers: request.headers(), config },
            "call started"
        );
        log
    }

    /// Logs the end once, with a status code read from `grpc-status`.
    pub(super) fn end(&self, code: Option<&[u8]>, message: Option<&[u8]>) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let duration = self.start.elapsed();
        let code_number = code
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<i32>().ok());
        let status = Status(code_number);
        let message = message
            .map(crate::metadata::decode_grpc_message)
            .unwrap_or_default();
        // The message counts are known (and logged) only when messages are counted.
        let count = |n: &AtomicU64| self.messages.then(|| n.load(Ordering::Relaxed));
        tracing::info!(
            target: TARGET,
            side = self.side.as_str(),
            method = %self.uri.path(),
            trace_id = %Opt(self.trace_id.as_deref()),
            grpc_status = %status,
            grpc_message = %message,
            requests = count(&self.requests),
            responses = count(&self.responses),
            duration = ?duration,
            "call ended: {status} after {duration:?}"
        );
    }

    /// Logs an end without a status: the call failed below gRPC.
    pub(super) fn fail(&self, error: &dyn fmt::Display) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let duration = self.start.elapsed();
        tracing::info!(
            target: TARGET,
            side = self.side.as_str(),
            method = %self.uri.path(),
            trace_id = %Opt(self.trace_id.as_deref()),
            error = %error,
            duration = ?duration,
            "call failed without a status after {duration:?}: {error}"
        );
    }

    /// Logs that a body ended with part of a message still unread.
    pub(super) fn ended_inside_a_message(&self) {
        tracing::debug!(target: TARGET, method = %self.uri.path(), "the body ended inside a message");
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        if !*self.ended.get_mut() {
            let duration = self.start.elapsed();
            tracing::info!(
                target: TARGET,
                side = self.side.as_str(),
                method = %self.uri.path(),
                trace_id = %Opt(self.trace_id.as_deref()),
                duration = ?duration,
                "call dropped before its status (cancelled or reset) after {duration:?}"
            );
        }
    }
}

/// Logs one message: its direction, index, size, compressed flag and, with a decoder
/// and the message's bytes, its content.
pub(super) fn log_message(
    log: &CallLog,
    direction: &str,
    m: &Message<'_>,
    decode: Option<&Decoder>,
) {
    let content = match (decode, m.bytes()) {
        (Some(decode), Some(bytes)) if !m.compressed() => Some(decode(bytes)),
        _ => None,
    };
    let content = content.map_or_else(String::new, |c| format!(": {c}"));
    tracing::debug!(
        target: TARGET,
        method = %log.uri.path(),
        trace_id = %Opt(log.trace_id.as_deref()),
        direction,
        index = m.index(),
        size = m.len(),
        compressed = m.compressed(),
        "{direction} message {} ({} bytes){content}",
        m.index(),
        m.len()
    );
}

/// A status code for the log: its name, or what the header held.
struct Status(Option<i32>);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{:?} ({n})", tonic::Code::from_i32(n)),
            None => f.write_str("no grpc-status"),
        }
    }
}

/// A value, or `-`.
struct Opt<'a>(Option<&'a str>);

impl fmt::Display for Opt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.unwrap_or("-"))
    }
}

/// `true`, `false` or `unknown`.
struct Known(Option<bool>);

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(b) => write!(f, "{b}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Metadata for the log, with redacted values replaced. Formatted only when an event is
/// recorded.
struct Redacted<'a> {
    headers: &'a HeaderMap,
    config: &'a Config,
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: ")?;
            let redacted = self.config.redact.contains(name)
                || (self.config.redact_binary && name.as_str().ends_with("-bin"));
            if redacted {
                f.write_str("[redacted]")?;
            } else {
                match value.to_str() {
                    Ok(text) => write!(f, "{text:?}")?,
                    Err(_) => write!(f, "[{} bytes, not ASCII]", value.len())?,
                }
            }
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intercept::LoggingLayer;

    #[test]
    fn redaction_hides_authorization_and_binary_values() {
        let layer = LoggingLayer::new().redact("X-Api-Key");
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        headers.insert("x-api-key", "k3y".parse().unwrap());
        headers.insert("trace-bin", "AAEC".parse().unwrap());
        headers.insert("x-tenant", "blue".parse().unwrap());
        let text = Redacted {
            headers: &headers,
            config: &layer.config,
        }
        .to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("k3y") && !text.contains("AAEC"),
            "{text}"
        );
        assert!(text.contains("x-tenant: \"blue\""), "{text}");
        let open = LoggingLayer::new().redact_only([]).redact_binary(false);
        let text = Redacted {
            headers: &headers,
            config: &open.config,
        }
        .to_string();
        assert!(text.contains("s3cret") && text.contains("AAEC"), "{text}");
    }
}
