//! Reading the bearer token of a call and checking it: the one path both the layer's
//! service and the interceptor take, from the `authorization` header value to the
//! identity or the refusal status.

use tonic::Status;

use super::{AuthError, TokenValidator};

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

/// The identity `validator` gives the token in `authorization` (the value of the call's
/// `authorization` header, if it has one) for `path`, or the status refusing the call
/// (see [`AuthError::code`]).
pub(super) fn authenticate<V: TokenValidator>(
    validator: &V,
    authorization: Option<&[u8]>,
    path: &str,
) -> Result<V::Identity, Status> {
    bearer(authorization)
        .and_then(|token| validator.validate(token, path))
        .map_err(Status::from)
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
}
