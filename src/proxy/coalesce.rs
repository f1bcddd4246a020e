//! The upstream's response body passed through untouched, with the DATA frames that are
//! already there handed on as one: each frame costs both HTTP/2 hops (and the client)
//! per frame, not per byte, and a stream of small messages arrives one frame each.
//! Only what is ready now is joined, so nothing waits for more to come; message
//! boundaries mean nothing to HTTP/2 framing, so the client reads the same messages.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use hyper::body::Incoming;

/// At most this much is joined into one frame: h2's default largest frame.
const JOINED: usize = 16 * 1024;

type Polled = Option<Result<Frame<Bytes>, hyper::Error>>;

/// The upstream body, with ready DATA frames joined.
pub(crate) struct Coalesced {
    body: Incoming,
    /// A frame (or the end) read while joining, handed on next.
    held: Option<Polled>,
}

impl Coalesced {
    pub(crate) fn new(body: Incoming) -> Self {
        Self { body, held: None }
    }

    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Polled> {
        if let Some(held) = self.held.take() {
            return Poll::Ready(held);
        }
        let first = match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let first = match first.into_data() {
            Ok(data) => data,
            Err(frame) => return Poll::Ready(Some(Ok(frame))),
        };
        let mut joined: Option<BytesMut> = None;
        while joined.as_ref().map_or(first.len(), BytesMut::len) < JOINED {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(more) => joined
                        .get_or_insert_with(|| BytesMut::from(&first[..]))
                        .extend_from_slice(&more),
                    Err(trailers) => {
                        self.held = Some(Some(Ok(trailers)));
                        break;
                    }
                },
                Poll::Ready(end) => {
                    self.held = Some(end);
                    break;
                }
                Poll::Pending => break,
            }
        }
        let data = joined.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}
