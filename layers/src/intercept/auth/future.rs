//! [`ResponseFuture`]: the inner service's response, its body boxed as tonic's, or the
//! refusal as a Trailers-Only response.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use pin_project_lite::pin_project;
use tonic::Status;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The future of [`Auth`](super::Auth): the inner service's response, or the refusal.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<Status>,
    }
}

impl<F> ResponseFuture<F> {
    /// The call was admitted: wait for `inner`.
    pub(super) fn new(inner: F) -> Self {
        Self {
            inner: Some(inner),
            refused: None,
        }
    }

    /// The call was refused with `status`: the inner service never sees it.
    pub(super) fn refused(status: Status) -> Self {
        Self {
            inner: None,
            refused: Some(status),
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let response = ready!(inner.poll(cx))?;
                Poll::Ready(Ok(response.map(tonic::body::Body::new)))
            }
            None => {
                let status = this
                    .refused
                    .take()
                    .unwrap_or_else(|| Status::internal("auth future polled after completion"));
                Poll::Ready(Ok(status.into_http()))
            }
        }
    }
}
