//! [`Auth`], the service [`AuthLayer`](super::AuthLayer) makes: it checks each call's
//! token, then passes the call on with the identity in its extensions, or refuses it.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tower::Service;

use super::bearer::authenticate;
use super::future::BoxError;
use super::{ResponseFuture, TokenValidator};

/// The service [`AuthLayer`](super::AuthLayer) makes.
///
/// ```
/// use tonic_layers::intercept::{Auth, AuthLayer, StaticTokens};
/// use tower::Layer;
/// let svc: Auth<(), StaticTokens> = AuthLayer::new(StaticTokens::new()).layer(());
/// ```
pub struct Auth<S, V> {
    inner: S,
    validator: Arc<V>,
}

impl<S, V> Auth<S, V> {
    pub(super) fn new(inner: S, validator: Arc<V>) -> Self {
        Self { inner, validator }
    }
}

impl<S: Clone, V> Clone for Auth<S, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            validator: self.validator.clone(),
        }
    }
}

impl<S: fmt::Debug, V: fmt::Debug> fmt::Debug for Auth<S, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("validator", &self.validator)
            .finish()
    }
}

impl<S, V, B, ResBody> Service<http::Request<B>> for Auth<S, V>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    V: TokenValidator,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match authenticate(&*self.validator, authorization, request.uri().path()) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                ResponseFuture::new(self.inner.call(request))
            }
            Err(status) => ResponseFuture::refused(status),
        }
    }
}
