//! Recording: each call the proxy completes, as the upstream answered it, for a
//! scenario stub that `grpc-chaos serve` replays
//! ([`Scenario::recorded_stub`](crate::scenario::Scenario::recorded_stub) writes one).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame};
use hyper::body::Incoming;

use super::journal::MessageTap;

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
    fn feed(&mut self, data: &[u8]) {
        if self.message.is_some() {
            return;
        }
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= 5 {
            let len = u32::from_be_bytes([
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
                self.buffer[4],
            ]) as usize;
            if self.buffer.len() >= 5 + len {
                self.message = Some(Bytes::copy_from_slice(&self.buffer[5..5 + len]));
                self.buffer = BytesMut::new();
            }
        }
    }

    pub(crate) fn take(&mut self) -> Option<Bytes> {
        self.message.take()
    }
}

/// The request body on its way upstream: passed through, tapped for its first message
/// when the proxy records, journaled when it keeps a journal, and held message by
/// message when a fault delays them.
pub(crate) struct RequestBody {
    pub(crate) inner: Incoming,
    pub(crate) tap: Option<Arc<Mutex<FirstMessage>>>,
    pub(crate) journal: Option<MessageTap>,
    pub(crate) delay: Option<RequestDelay>,
}

/// Request messages held back: every one, or message `nth` (1-based).
pub(crate) struct RequestDelay {
    delay: Duration,
    nth: Option<u64>,
    buffer: BytesMut,
    ready: VecDeque<Bytes>,
    /// Messages passed on (or being held).
    seen: u64,
    held: Option<(Pin<Box<tokio::time::Sleep>>, Bytes)>,
    /// How long the message just let go was held, until the journal is told.
    released: Option<Duration>,
    /// The frame that ended the body (trailers), or `None` for its end, once read.
    end: Option<Option<Frame<Bytes>>>,
}

impl RequestDelay {
    pub(crate) fn new(delay: Duration, nth: Option<u64>) -> Self {
        Self {
            delay,
            nth,
            buffer: BytesMut::new(),
            ready: VecDeque::new(),
            seen: 0,
            held: None,
            released: None,
            end: None,
        }
    }

    /// The next frame to pass on from what has been read, if one is due.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Option<Frame<Bytes>>>> {
        if let Some((sleep, _)) = self.held.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let (_, message) = self
                .held
                .take()
                .unwrap_or_else(|| unreachable!("held just now"));
            self.released = Some(self.delay);
            return Poll::Ready(Some(Some(Frame::data(message))));
        }
        if let Some(message) = self.ready.pop_front() {
            self.seen += 1;
            if self.nth.is_none_or(|n| n == self.seen) {
                self.held = Some((Box::pin(tokio::time::sleep(self.delay)), message));
                return self.poll_next(cx);
            }
            return Poll::Ready(Some(Some(Frame::data(message))));
        }
        match self.end.take() {
            Some(end) => Poll::Ready(Some(end)),
            None => Poll::Ready(None),
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
        while self.buffer.len() >= 5 {
            let len = u32::from_be_bytes([
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
                self.buffer[4],
            ]) as usize;
            if self.buffer.len() < 5 + len {
                break;
            }
            self.ready.push_back(self.buffer.split_to(5 + len).freeze());
        }
    }

    /// The body ended with `last` (trailers, or nothing): a partial message left over
    /// goes on as it is, for the upstream to refuse.
    fn finish(&mut self, last: Option<Frame<Bytes>>) {
        if !self.buffer.is_empty() {
            self.ready.push_back(self.buffer.split().freeze());
        }
        self.end = Some(last);
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(delay) = this.delay.as_mut() {
                let next = delay.poll_next(cx);
                if let (Some(held), Some(journal)) = (delay.released.take(), &this.journal) {
                    journal.log().request_held(held);
                }
                match next {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(frame)) => return Poll::Ready(frame.map(Ok)),
                    // Nothing due, and the body not ended: read on.
                    Poll::Ready(None) => {}
                }
            }
            let polled = Pin::new(&mut this.inner).poll_frame(cx);
            if let Poll::Ready(Some(Ok(frame))) = &polled
                && let Some(data) = frame.data_ref()
            {
                if let Some(tap) = &this.tap {
                    tap.lock().unwrap_or_else(|p| p.into_inner()).feed(data);
                }
                if let Some(journal) = this.journal.as_mut() {
                    journal.feed(data);
                }
            }
            let Some(delay) = this.delay.as_mut() else {
                return polled;
            };
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => delay.feed(&data),
                    Err(trailers) => delay.finish(Some(trailers)),
                },
                Poll::Ready(None) => delay.finish(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.delay.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.delay.is_some() {
            return http_body::SizeHint::default();
        }
        self.inner.size_hint()
    }
}
