//! The response side of a call as hyper sees it: the call function polled for its
//! events, and the body that turns them into HTTP/2 frames.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body::Frame;

use super::{BoxError, Event};

pub(super) fn grpc_response(mut headers: HeaderMap, body: CallBody) -> Response<CallBody> {
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// The one-event slot between the call function and its [`Driver`].
///
/// Only the driver polls the call function, and it takes the slot's event before and
/// after every poll: a `send` that finds the slot full can wait without a waker, since
/// the driver hands that event out at once and polls the function again on its next
/// turn. Cheaper than a channel: no semaphore, no wake-up per event.
#[derive(Clone, Default)]
pub(super) struct Outbox(Arc<Mutex<Option<Event>>>);

impl Outbox {
    fn slot(&self) -> MutexGuard<'_, Option<Event>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `event` in the slot once the event before it was taken.
    pub(super) async fn send(&self, event: Event) {
        let mut event = Some(event);
        poll_fn(|_| {
            let mut slot = self.slot();
            if slot.is_some() {
                return Poll::Pending;
            }
            *slot = event.take();
            Poll::Ready(())
        })
        .await;
    }

    fn take(&self) -> Option<Event> {
        self.slot().take()
    }
}

/// Polls the call function and hands out what it emits.
pub(super) struct Driver {
    pub(super) run: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    pub(super) outbox: Outbox,
}

impl Driver {
    pub(super) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Some(event) = self.outbox.take() {
            return Poll::Ready(Some(event));
        }
        let Some(run) = self.run.as_mut() else {
            return Poll::Ready(None);
        };
        if run.as_mut().poll(cx).is_ready() {
            self.run = None;
        }
        match self.outbox.take() {
            Some(event) => Poll::Ready(Some(event)),
            // The function ended after its last event.
            None if self.run.is_none() => Poll::Ready(None),
            // Waiting on something else (a timer, the request): that wakes this task.
            None => Poll::Pending,
        }
    }
}

/// The response body: the rest of the call's events as HTTP/2 frames.
pub(crate) struct CallBody(pub(super) Option<Driver>);

impl http_body::Body for CallBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(driver) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            return match driver.poll_event(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Event::Message(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(Some(Event::Trailers(map))) => {
                    Poll::Ready(Some(Ok(Frame::trailers(map))))
                }
                // hyper resets the stream with the h2 reason it finds in the error.
                Poll::Ready(Some(Event::Reset(reason))) => {
                    Poll::Ready(Some(Err(Box::new(h2::Error::from(reason.to_h2())))))
                }
                Poll::Ready(Some(Event::Headers(_) | Event::TrailersOnly(_))) => continue,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}
