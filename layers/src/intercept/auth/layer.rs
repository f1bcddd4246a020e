//! [`AuthLayer`], the server layer: it holds the validator and wraps a service in [`Auth`].

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::{Auth, TokenValidator};

/// Checks the bearer token of every call on a server.
///
/// A missing, malformed, invalid or expired token gets UNAUTHENTICATED, a valid token that
/// may not call the method PERMISSION_DENIED, as a Trailers-Only response; the inner
/// service never sees the call. A valid one puts the validator's identity in the request
/// extensions.
///
/// ```
/// use tonic_layers::intercept::{AuthLayer, StaticTokens};
/// let layer = AuthLayer::new(StaticTokens::new().token("s3cret", "alice"));
/// // tonic::transport::Server::builder().layer(layer).add_service(…)
/// // In the handler: request.extensions().get::<tonic_layers::intercept::Identity>()
/// ```
#[must_use = "a layer does nothing until it wraps a service"]
pub struct AuthLayer<V> {
    validator: Arc<V>,
}

impl<V> Clone for AuthLayer<V> {
    fn clone(&self) -> Self {
        Self {
            validator: self.validator.clone(),
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for AuthLayer<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("validator", &self.validator)
            .finish()
    }
}

impl<V: TokenValidator> AuthLayer<V> {
    /// Checks tokens with `validator`.
    ///
    /// ```
    /// use tonic_layers::intercept::{AuthError, AuthLayer};
    /// let layer = AuthLayer::new(|token: &str, _path: &str| {
    ///     if token == "t0k3n" { Ok("alice".to_string()) } else { Err(AuthError::Invalid) }
    /// });
    /// ```
    pub fn new(validator: V) -> Self {
        Self {
            validator: Arc::new(validator),
        }
    }
}

impl<S, V> Layer<S> for AuthLayer<V> {
    type Service = Auth<S, V>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth::new(inner, self.validator.clone())
    }
}
