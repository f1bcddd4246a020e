//! [`Logging`], the service [`LoggingLayer`](super::LoggingLayer) makes: it checks the
//! levels, starts the call's log and wraps the request body.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tower::Service;
use tracing::Level;

use super::body::LoggedBody;
use super::layer::Config;
use super::record::CallLog;
use super::{BoxError, ResponseFuture, TARGET};

/// The service [`LoggingLayer`](super::LoggingLayer) makes.
///
/// ```
/// use tonic_layers::intercept::{Logging, LoggingLayer};
/// use tower::Layer;
/// let svc: Logging<()> = LoggingLayer::new().layer(());
/// ```
#[derive(Clone)]
pub struct Logging<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Logging<S> {
    pub(super) fn new(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }
}

impl<S: fmt::Debug> fmt::Debug for Logging<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logging")
            .field("inner", &self.inner)
            .field("side", &self.config.side)
            .finish()
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for Logging<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
    S::Error: fmt::Display,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Checked once per call: disabled, the layer only converts the body type (a
        // no-op for tonic's own body) and allocates nothing.
        // DEBUG first: where it is on, the log starts without asking about INFO (each
        // event still asks for itself); where no subscriber enables DEBUG, tracing's
        // maximum level answers that check without a lookup.
        let messages = tracing::enabled!(target: TARGET, Level::DEBUG);
        if !messages && !tracing::enabled!(target: TARGET, Level::INFO) {
            return ResponseFuture::new(self.inner.call(request.map(tonic::body::Body::new)), None);
        }
        let config = &self.config;
        let path = request.uri().path();
        let info = if config.methods.is_empty() {
            None
        } else {
            config.methods.get(path)
        };
        let shape = info.and_then(|i| i.shape);
        let log = CallLog::start(config, &request, shape, messages);
        let request = if messages {
            let decode = info.and_then(|i| i.decode_request.clone());
            request.map(|body| LoggedBody::new(body, log.clone(), false, Some(decode)).into_body())
        } else {
            request.map(tonic::body::Body::new)
        };
        let decode_response = info.and_then(|i| i.decode_response.clone());
        ResponseFuture::new(
            self.inner.call(request),
            Some((log, messages.then_some(decode_response))),
        )
    }
}
