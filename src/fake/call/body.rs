//! The response side of a call as hyper sees it: the call function polled for its
//! events, and the body that turns them into HTTP/2 frames.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body::Frame;
use tokio::sync::mpsc;

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

/// Polls the call function and hands out what it emits.
pub(super) struct Driver {
    pub(super) run: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    pub(super) rx: mpsc::Receiver<Event>,
}

impl Driver {
    pub(super) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Poll::Ready(event) = self.rx.poll_recv(cx) {
            return Poll::Ready(event);
        }
        if let Some(run) = self.run.as_mut()
            && run.as_mut().poll(cx).is_ready()
        {
            // Dropping the finished function drops its sender, so `rx` ends after the
            // last event.
            self.run = None;
        }
        self.rx.poll_recv(cx)
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
