//! Bearer-token auth: a server layer, a validator trait, static tokens compared in
//! constant time, and the tonic `Interceptor` form.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use pin_project_lite::pin_project;
use tonic::{Code, Status};
use tower::{Layer, Service};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a call was refused. The token itself never appears in the message.
///
/// ```
/// use tonic_layers::intercept::AuthError;
/// assert_eq!(AuthError::Expired.code(), tonic::Code::Unauthenticated);
/// assert_eq!(AuthError::Denied("read-only token".into()).code(), tonic::Code::PermissionDenied);
/// let status: tonic::Status = AuthError::Missing.into();
/// assert_eq!(status.message(), "missing bearer token");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `authorization` header: UNAUTHENTICATED.
    Missing,
    /// An `authorization` header that is not `Bearer <token>`: UNAUTHENTICATED.
    Malformed(&'static str),
    /// A token the validator does not know, or with a bad signature: UNAUTHENTICATED.
    Invalid,
    /// A token past its expiry: UNAUTHENTICATED.
    Expired,
    /// A valid token that may not call this method: PERMISSION_DENIED, with the reason.
    Denied(String),
}

impl AuthError {
    /// The gRPC code this refusal gets.
    ///
    /// ```
    /// assert_eq!(tonic_layers::intercept::AuthError::Invalid.code(), tonic::Code::Unauthenticated);
    /// ```
    pub fn code(&self) -> Code {
        match self {
            AuthError::Denied(_) => Code::PermissionDenied,
            _ => Code::Unauthenticated,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => f.write_str("missing bearer token"),
            AuthError::Malformed(why) => write!(f, "malformed authorization header: {why}"),
            AuthError::Invalid => f.write_str("invalid token"),
            AuthError::Expired => f.write_str("token expired"),
            AuthError::Denied(why) => write!(f, "permission denied: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for Status {
    fn from(e: AuthError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}

/// Checks a bearer token for a method and says who it belongs to.
///
/// Implemented for closures `Fn(&str, &str) -> Result<I, AuthError>` (token, then method
/// path). The identity goes into the request extensions, where a tonic handler reads it
/// with `request.extensions().get::<I>()`.
///
/// ```
/// use tonic_layers::intercept::{AuthError, TokenValidator};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct User(String);
///
/// let validator = |token: &str, path: &str| match token {
///     "admin" => Ok(User("root".into())),
///     "reader" if path.ends_with("/Get") => Ok(User("ro".into())),
///     "reader" => Err(AuthError::Denied("read-only".into())),
///     _ => Err(AuthError::Invalid),
/// };
/// assert_eq!(validator.validate("reader", "/shop.Inventory/Get"), Ok(User("ro".into())));
/// assert_eq!(validator.validate("nobody", "/shop.Inventory/Get"), Err(AuthError::Invalid));
/// ```
pub trait TokenValidator: Send + Sync + 'static {
    /// Who the token belongs to.
    type Identity: Clone + Send + Sync + 'static;

    /// The identity behind `token`, if it may call `path` (`/package.Service/Method`).
    fn validate(&self, token: &str, path: &str) -> Result<Self::Identity, AuthError>;
}

impl<F, I> TokenValidator for F
where
    F: Fn(&str, &str) -> Result<I, AuthError> + Send + Sync + 'static,
    I: Clone + Send + Sync + 'static,
{
    type Identity = I;

    fn validate(&self, token: &str, path: &str) -> Result<I, AuthError> {
        self(token, path)
    }
}

/// The identity [`StaticTokens`] puts in the request extensions.
///
/// ```
/// let who = tonic_layers::intercept::Identity::new("alice");
/// assert_eq!(who.subject, "alice");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Identity {
    /// Whom the token was issued to.
    pub subject: String,
}

impl Identity {
    /// The identity of `subject`.
    ///
    /// ```
    /// let who = tonic_layers::intercept::Identity::new("bob");
    /// ```
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
        }
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only, not on
/// where they differ.
///
/// ```
/// use tonic_layers::intercept::constant_time_eq;
/// assert!(constant_time_eq(b"s3cret", b"s3cret"));
/// assert!(!constant_time_eq(b"s3cret", b"s3creT"));
/// assert!(!constant_time_eq(b"s3cret", b"s3cret-but-longer"));
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        // black_box keeps the compiler from turning the loop into an early exit.
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

/// A fixed set of tokens, each with its identity and optionally the methods it may call.
/// Tokens are compared in constant time, and every entry is compared on every call.
///
/// ```
/// use tonic_layers::intercept::{AuthError, Identity, StaticTokens, TokenValidator};
/// let tokens = StaticTokens::new()
///     .token("admin-token", "alice")
///     .token_for("reader-token", "bob", ["/pb.Greeter/SayHello"]);
/// assert_eq!(tokens.validate("admin-token", "/pb.Greeter/SayHelloStream"), Ok(Identity::new("alice")));
/// assert!(matches!(tokens.validate("reader-token", "/pb.Greeter/SayHelloStream"), Err(AuthError::Denied(_))));
/// assert_eq!(tokens.validate("guess", "/pb.Greeter/SayHello"), Err(AuthError::Invalid));
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    entries: Vec<StaticEntry>,
}

#[derive(Clone)]
struct StaticEntry {
    token: Vec<u8>,
    identity: Identity,
    /// `None`: every method. A path ending in `/` allows a whole service.
    methods: Option<Vec<String>>,
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The tokens are secrets: only the identities are shown.
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.identity.subject))
            .finish()
    }
}

impl StaticTokens {
    /// No tokens: every call is refused.
    ///
    /// ```
    /// let tokens = tonic_layers::intercept::StaticTokens::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// `token` identifies `subject` for every method.
    ///
    /// ```
    /// let tokens = tonic_layers::intercept::StaticTokens::new().token("t0k3n", "alice");
    /// ```
    pub fn token(mut self, token: &str, subject: &str) -> Self {
        self.entries.push(StaticEntry {
            token: token.as_bytes().to_vec(),
            identity: Identity::new(subject),
            methods: None,
        });
        self
    }

    /// `token` identifies `subject` for the listed methods only: exact paths, or a
    /// service prefix ending in `/` (`"/pb.Greeter/"`). Other methods get
    /// PERMISSION_DENIED.
    ///
    /// ```
    /// let tokens = tonic_layers::intercept::StaticTokens::new()
    ///     .token_for("t0k3n", "bob", ["/pb.Greeter/", "/grpc.testing.TestService/EmptyCall"]);
    /// ```
    pub fn token_for<'a>(
        mut self,
        token: &str,
        subject: &str,
        methods: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        self.entries.push(StaticEntry {
            token: token.as_bytes().to_vec(),
            identity: Identity::new(subject),
            methods: Some(methods.into_iter().map(str::to_string).collect()),
        });
        self
    }
}

impl TokenValidator for StaticTokens {
    type Identity = Identity;

    fn validate(&self, token: &str, path: &str) -> Result<Identity, AuthError> {
        let mut found = None;
        // No early exit: the time does not say which entry matched, or how close a guess was.
        for entry in &self.entries {
            if constant_time_eq(token.as_bytes(), &entry.token) && found.is_none() {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(AuthError::Invalid)?;
        let allowed = entry.methods.as_ref().is_none_or(|methods| {
            methods
                .iter()
                .any(|m| m == path || (m.ends_with('/') && path.starts_with(m.as_str())))
        });
        if allowed {
            Ok(entry.identity.clone())
        } else {
            Err(AuthError::Denied(format!(
                "{} may not call {path}",
                entry.identity.subject
            )))
        }
    }
}

/// The token of an `authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 7235); the token must be non-empty visible ASCII.
fn bearer(value: Option<&[u8]>) -> Result<&str, AuthError> {
    let value = value.ok_or(AuthError::Missing)?;
    let value = std::str::from_utf8(value).map_err(|_| AuthError::Malformed("not ASCII"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::Malformed("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed("the scheme is not Bearer"));
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(AuthError::Malformed("empty token"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::Malformed(
            "the token has spaces or control characters",
        ));
    }
    Ok(token)
}

fn check<V: TokenValidator>(
    validator: &V,
    headers: &HeaderMap,
    path: &str,
) -> Result<V::Identity, AuthError> {
    let token = bearer(
        headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    )?;
    validator.validate(token, path)
}

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
        Auth {
            inner,
            validator: self.validator.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
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
        match check(&*self.validator, request.headers(), request.uri().path()) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                ResponseFuture {
                    inner: Some(self.inner.call(request)),
                    refused: None,
                }
            }
            Err(e) => ResponseFuture {
                inner: None,
                refused: Some(e.into()),
            },
        }
    }
}

pin_project! {
    /// The future of [`Auth`]: the inner service's response, or the refusal.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<Status>,
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

/// The tonic [`Interceptor`](tonic::service::Interceptor) form of [`AuthLayer`], made by
/// [`auth_interceptor`].
///
/// An interceptor does not see the request path on a server (tonic drops the URI before
/// calling it), so the validator gets the path only where tonic's `GrpcMethod` extension
/// is present (client side), and `""` otherwise. Use [`AuthLayer`] for per-method rules.
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
/// auth_interceptor(validator))`. Same codes and identity as [`AuthLayer`].
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
        let identity = bearer(value).and_then(|token| self.validator.validate(token, &path))?;
        request.extensions_mut().insert(identity);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some(b"Bearer abc")), Ok("abc"));
        assert_eq!(bearer(Some(b"bearer  abc")), Ok("abc"));
        assert!(matches!(
            bearer(Some(b"Basic abc")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            bearer(Some(b"Bearer")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            bearer(Some(b"Bearer ")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            bearer(Some(b"Bearer a b")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            bearer(Some(b"Bearer \xff")),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn constant_time_eq_is_equality() {
        for (a, b) in [
            ("", ""),
            ("a", ""),
            ("", "a"),
            ("abc", "abd"),
            ("abc", "abc"),
            ("ab", "abc"),
        ] {
            assert_eq!(
                constant_time_eq(a.as_bytes(), b.as_bytes()),
                a == b,
                "{a:?} {b:?}"
            );
        }
    }
}
