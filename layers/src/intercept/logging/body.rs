//! [`LoggedBody`]: a request or response body that counts (and logs) the gRPC messages in
//! its frames as they pass and, for a response, ends the call's log.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Frame;
use pin_project_lite::pin_project;
use tonic::Status;

use super::layer::DecodeFn;
use super::record::{log_message, CallLog};
use super::BoxError;
use crate::framing::FrameReader;
use crate::headers::status_of;

pin_project! {
    /// A body that logs the messages in it and, for a response, the call's end.
    pub(super) struct LoggedBody<B> {
        #[pin]
        inner: B,
        log: Arc<CallLog>,
        is_response: bool,
        // `None` when messages are not logged (DEBUG disabled).
        reader: Option<FrameReader>,
        decode: Option<DecodeFn>,
    }
}

impl<B> LoggedBody<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// `decode` is `None` when messages are not logged, `Some(None)` when they are but
    /// without content.
    pub(super) fn new(
        inner: B,
        log: Arc<CallLog>,
        is_response: bool,
        decode: Option<Option<DecodeFn>>,
    ) -> Self {
        let (reader, decode) = match decode {
            None => (None, None),
            Some(None) => (Some(FrameReader::new()), None),
            Some(decode) => (Some(FrameReader::capturing()), decode),
        };
        Self {
            inner,
            log,
            is_response,
            reader,
            decode,
        }
    }

    /// As tonic's body: its errors are already a `Status`, so it is boxed as it is.
    pub(super) fn into_body(self) -> tonic::body::Body {
        crate::body::boxed(self)
    }
}

impl<B> http_body::Body for LoggedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        // tonic's own bodies fail with a `Status`, which this gives back as it was.
        let frame =
            ready!(this.inner.poll_frame(cx)).map(|f| f.map_err(|e| Status::from_error(e.into())));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(reader) = this.reader.as_mut() {
                        let log = &**this.log;
                        let direction = if *this.is_response {
                            log.side.response_direction()
                        } else {
                            log.side.request_direction()
                        };
                        let decode = this.decode.as_deref();
                        let total = if *this.is_response {
                            &log.responses
                        } else {
                            &log.requests
                        };
                        let mut chunk = data.chunk();
                        while let Some(m) = reader.next_message(&mut chunk) {
                            total.store(m.index(), Ordering::Relaxed);
                            log_message(log, direction, &m, decode);
                        }
                    }
                } else if let Some(trailers) = frame.trailers_ref()
                    && *this.is_response
                {
                    let (code, message) = status_of(trailers);
                    this.log.end(code, message);
                }
            }
            Some(Err(_)) => {
                if *this.is_response {
                    this.log.fail(&"the response body failed");
                }
            }
            None => {
                if this.reader.as_ref().is_some_and(|r| r.pending() > 0) {
                    this.log.ended_inside_a_message();
                }
                if *this.is_response {
                    this.log.end(None, None);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
