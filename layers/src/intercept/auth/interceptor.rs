//! [`auth_interceptor`] and [`AuthInterceptor`]: bearer-token auth as a tonic
//! [`Interceptor`](tonic::service::Interceptor), for a single service.

use std::fmt;
use std::sync::Arc;

use tonic::Status;

use super::bearer::authenticate;
use super::TokenValidator;

/// The tonic [`Interceptor`](tonic::service::Interceptor) form of [`AuthLayer`](super::AuthLayer), made by
/// [`auth_interceptor`].
///
/// An interceptor does not see the request path on a server (tonic drops the URI before
/// calling it), so the validator gets the path only where tonic's `GrpcMethod` extension
/// is present (client side), and `""` otherwise. Use [`AuthLayer`](super::AuthLayer) for per-method rules.
///
/// ```
/// use tonic_layers::intercept::{auth_interceptor, AuthInterceptor, StaticTokens};
/// let interceptor: AuthInterceptor<StaticTokens> = auth_interceptor(StaticTokens::new().token("t", "alice"));
/// ```
pub struct AuthInterceptor<V> {
    validator: Arc<V>,
}

impl<V> Clone for AuthInterceptor<V> {
    fn clone(&self) -> Self {
        Self {
            validator: self.validator.clone(),
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for AuthInterceptor<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInterceptor")
            .field("validator", &self.validator)
            .finish()
    }
}

/// Bearer-token auth as a tonic interceptor: `GreeterServer::with_interceptor(svc,
/// auth_interceptor(validator))`. Same codes and identity as [`AuthLayer`](super::AuthLayer).
///
/// ```
/// use tonic_layers::intercept::{auth_interceptor, Identity, StaticTokens};
/// use tonic::service::Interceptor;
///
/// let mut interceptor = auth_interceptor(StaticTokens::new().token("s3cret", "alice"));
/// let mut request = tonic::Request::new(());
/// request.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
/// let request = interceptor.call(request).unwrap();
/// assert_eq!(request.extensions().get::<Identity>(), Some(&Identity::new("alice")));
///
/// let refused = interceptor.call(tonic::Request::new(())).unwrap_err();
/// assert_eq!(refused.code(), tonic::Code::Unauthenticated);
/// ```
pub fn auth_interceptor<V: TokenValidator>(validator: V) -> AuthInterceptor<V> {
    AuthInterceptor {
        validator: Arc::new(validator),
    }
}

impl<V: TokenValidator> tonic::service::Interceptor for AuthInterceptor<V> {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        let path = request
            .extensions()
            .get::<tonic::GrpcMethod<'static>>()
            .map(|m| format!("/{}/{}", m.service(), m.method()))
            .unwrap_or_default();
        let value = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        let identity = authenticate(&*self.validator, value, &path)?;
        request.extensions_mut().insert(identity);
        Ok(request)
    }
}
