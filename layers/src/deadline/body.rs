//! A response body that ends with DEADLINE_EXCEEDED when the deadline passes mid-stream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use tokio::time::{sleep_until, Sleep};
use tonic::Status;

use super::{sync_scope, Deadline};

/// The status a passed deadline ends a call with.
///
/// ```
/// assert_eq!(tonic_layers::deadline::deadline_exceeded().code(), tonic::Code::DeadlineExceeded);
/// ```
pub fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

/// A Trailers-Only response carrying `status`.
pub(crate) fn status_response(status: Status) -> http::Response<tonic::body::Body> {
    status.into_http()
}

/// Wraps a response body: frames pass through until the deadline; then the inner body
/// is dropped (cancelling the stream that feeds it) and the trailers say status 4.
pub(crate) struct DeadlineBody {
    inner: Option<tonic::body::Body>,
    sleep: Pin<Box<Sleep>>,
    deadline: Deadline,
}

impl DeadlineBody {
    pub(crate) fn new(inner: tonic::body::Body, deadline: Deadline) -> Self {
        Self {
            inner: Some(inner),
            sleep: Box::pin(sleep_until(deadline.instant())),
            deadline,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // The deadline is checked first: a frame due at the deadline is already late.
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.inner = None;
            let mut trailers = HeaderMap::new();
            // A fixed code and ASCII message always encode.
            let _ = deadline_exceeded().add_header(&mut trailers);
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let frame = sync_scope(Some(this.deadline), || Pin::new(inner).poll_frame(cx));
        if let Poll::Ready(None) = frame {
            this.inner = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }
}

/// Wraps a client's request body: at the deadline it fails with an HTTP/2 CANCEL, so
/// the stream is reset even while the request half is still sending. (Dropping only the
/// response leaves a streaming request going, and the server never hears of the end.)
pub(crate) struct CancelAtDeadline {
    inner: tonic::body::Body,
    sleep: Pin<Box<Sleep>>,
}

impl CancelAtDeadline {
    pub(crate) fn new(inner: tonic::body::Body, deadline: Deadline) -> Self {
        Self {
            inner,
            sleep: Box::pin(sleep_until(deadline.instant())),
        }
    }
}

impl http_body::Body for CancelAtDeadline {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            // hyper resets the stream with the h2 reason it finds in the error.
            return Poll::Ready(Some(Err(h2::Error::from(h2::Reason::CANCEL))));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|_| h2::Error::from(h2::Reason::CANCEL))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
