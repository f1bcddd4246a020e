//! [`TokenValidator`], the check a bearer token goes through (implemented for closures),
//! and [`AuthError`], why a call is refused and the gRPC status that refusal gets.

use std::fmt;

use tonic::{Code, Status};

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
