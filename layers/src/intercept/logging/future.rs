//! [`ResponseFuture`]: waits for the inner service's response, then wraps its body, or
//! ends the call's log when there is no body to wait for.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use pin_project_lite::pin_project;

use super::body::LoggedBody;
use super::layer::DecodeFn;
use super::record::CallLog;
use super::BoxError;
use crate::headers::status_of;

pin_project! {
    /// The future of [`Logging`](super::Logging): the inner service's response, its body
    /// wrapped to log the messages and the end.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        log: Option<(Arc<CallLog>, Option<Option<DecodeFn>>)>,
    }
}

impl<F> ResponseFuture<F> {
    /// `log` is `None` when the call is not logged; its decoder is as
    /// [`LoggedBody::new`] takes it.
    pub(super) fn new(inner: F, log: Option<(Arc<CallLog>, Option<Option<DecodeFn>>)>) -> Self {
        Self { inner, log }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: fmt::Display,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some((log, decode)) = this.log.take() else {
            return Poll::Ready(result.map(|r| r.map(tonic::body::Body::new)));
        };
        match result {
            Ok(response) => {
                if let (Some(code), message) = status_of(response.headers()) {
                    // Trailers-Only: the status is in the headers and there is no body.
                    log.end(Some(code), message);
                    return Poll::Ready(Ok(response.map(tonic::body::Body::new)));
                }
                Poll::Ready(Ok(
                    response.map(|body| LoggedBody::new(body, log, true, decode).into_body())
                ))
            }
            Err(e) => {
                log.fail(&e);
                Poll::Ready(Err(e))
            }
        }
    }
}
