//! The request body on its way upstream: the frames read ahead for a rule that matches
//! on the first message, then the client's own, tapped for the recording and the
//! journal, and held message by message when a fault delays them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use super::journal::MessageTap;
use super::record::FirstMessage;
use crate::framing::{split_message, FrameReader, Step};

/// Frames read from the client before the call was forwarded, to pass on first.
#[derive(Default)]
pub(crate) struct Prefetched {
    frames: VecDeque<Frame<Bytes>>,
    /// Whether the client's body ended while reading ahead.
    ended: bool,
}

impl Prefetched {
    /// Reads the client's body up to the end of its first message (kept to pass on, and
    /// journaled now, since a fault may answer without forwarding it) and returns that
    /// message without its prefix; `None` when the body ends first.
    ///
    /// # Errors
    /// The client's stream failed (it went away).
    pub(crate) async fn first_message(
        &mut self,
        body: &mut Incoming,
        mut journal: Option<&mut MessageTap>,
    ) -> Result<Option<Bytes>, hyper::Error> {
        let mut reader = FrameReader::capturing();
        loop {
            let Some(frame) = body.frame().await.transpose()? else {
                self.ended = true;
                return Ok(None);
            };
            let mut found = None;
            if let Some(data) = frame.data_ref() {
                if let Some(journal) = journal.as_deref_mut() {
                    journal.feed(data);
                }
                let mut rest = &data[..];
                while let Some(step) = reader.read(&mut rest) {
                    if let Step::Message(message) = step {
                        found = Some(message.take().unwrap_or_default());
                        break;
                    }
                }
            } else {
                // Trailers end the body.
                self.ended = true;
            }
            self.frames.push_back(frame);
            if found.is_some() || self.ended {
                return Ok(found);
            }
        }
    }
}

/// The request body on its way upstream: passed through, tapped for its first message
/// when the proxy records, journaled when it keeps a journal, and held message by
/// message when a fault delays them.
pub(crate) struct RequestBody {
    pub(crate) inner: Incoming,
    pub(crate) prefetched: Prefetched,
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
        while let Some(message) = split_message(&mut self.buffer) {
            self.ready.push_back(message);
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
            // Frames read ahead were journaled as they were read.
            let (polled, fresh) = match this.prefetched.frames.pop_front() {
                Some(frame) => (Poll::Ready(Some(Ok(frame))), false),
                None if this.prefetched.ended => (Poll::Ready(None), false),
                None => (Pin::new(&mut this.inner).poll_frame(cx), true),
            };
            if let Poll::Ready(Some(Ok(frame))) = &polled
                && let Some(data) = frame.data_ref()
            {
                if let Some(tap) = &this.tap {
                    tap.lock().unwrap_or_else(|p| p.into_inner()).feed(data);
                }
                if let (Some(journal), true) = (this.journal.as_mut(), fresh) {
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
        let prefetched = &self.prefetched;
        self.delay.is_none()
            && prefetched.frames.is_empty()
            && (prefetched.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.delay.is_some() || !self.prefetched.frames.is_empty() || self.prefetched.ended {
            return http_body::SizeHint::default();
        }
        self.inner.size_hint()
    }
}
