//! Recording: each call the proxy completes, as the upstream answered it, for a
//! scenario stub that `grpc-chaos serve` replays
//! ([`Scenario::recorded_stub`](crate::scenario::Scenario::recorded_stub) writes one).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;

/// One completed call, as the upstream answered it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedCall {
    /// `/package.Service/Method`.
    pub method: String,
    /// The first request message, without its prefix (`None` when the client sent none).
    pub request: Option<Bytes>,
    /// How long the upstream took to send its response headers.
    pub headers_after: Duration,
    /// The response headers, without HTTP/2's and gRPC's own (`content-type`,
    /// `grpc-status`, …).
    pub headers: HeaderMap,
    /// Each response message, without its prefix, and how long after the one before it
    /// (or after the headers) it arrived.
    pub messages: Vec<(Duration, Bytes)>,
    /// The trailers, without `grpc-status` and `grpc-message`.
    pub trailers: HeaderMap,
    /// The status code and message the call ended with (from the trailers, or from the
    /// headers of a Trailers-Only response); `None` when the stream ended without one.
    pub status: Option<(i32, String)>,
}

impl RecordedCall {
    /// Splits gRPC's own headers (status, message, content type) off `headers`.
    pub(crate) fn take_status(headers: &mut HeaderMap) -> Option<(i32, String)> {
        let status = super::journal::status_in(headers);
        for own in [
            "grpc-status",
            "grpc-message",
            "content-type",
            "grpc-encoding",
            "grpc-accept-encoding",
            "date",
        ] {
            headers.remove(own);
        }
        status
    }
}

/// Where recorded calls go.
pub(crate) type Sink = Arc<dyn Fn(RecordedCall) + Send + Sync>;

/// The first request message, caught as the request body passes through.
#[derive(Default)]
pub(crate) struct FirstMessage {
    buffer: BytesMut,
    message: Option<Bytes>,
}

impl FirstMessage {
    pub(crate) fn feed(&mut self, data: &[u8]) {
        if self.message.is_some() {
            return;
        }
        self.buffer.extend_from_slice(data);
        if let Some(framed) = crate::framing::split_message(&mut self.buffer) {
            self.message = Some(framed.slice(crate::framing::PREFIX_LEN..));
            self.buffer = BytesMut::new();
        }
    }

    pub(crate) fn take(&mut self) -> Option<Bytes> {
        self.message.take()
    }
}
