//! The admin API's bearer token: required when the server listens beyond loopback.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::Status;

/// Lets a request through when no token is set, or when it carries `authorization:
/// Bearer TOKEN`; UNAUTHENTICATED otherwise. The token is compared in constant time.
///
/// ```
/// let auth = grpc_chaos_cli::admin::AdminAuth::new(Some("s3cret".into()));
/// let mut metadata = tonic::metadata::MetadataMap::new();
/// assert_eq!(auth.check(&metadata).unwrap_err().code(), tonic::Code::Unauthenticated);
/// metadata.insert("authorization", "Bearer s3cret".parse().unwrap());
/// assert!(auth.check(&metadata).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct AdminAuth {
    token: Option<Arc<[u8]>>,
}

impl AdminAuth {
    /// Requires `token`, or nothing when `None`.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(|t| Arc::from(t.into_bytes())),
        }
    }
}

impl AdminAuth {
    /// Whether a request with this metadata may use the admin API.
    ///
    /// # Errors
    /// UNAUTHENTICATED without the right bearer token.
    pub fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = metadata
            .get("authorization")
            .map(|v| v.as_bytes())
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given, token) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "grpc-chaos admin API: send authorization: Bearer <the --admin-token>",
            ))
        }
    }
}

/// Whether `a == b`, taking the same time for every `a` of a given length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut differ = u8::from(a.len() != b.len());
    for (i, x) in b.iter().enumerate() {
        differ |= x ^ a.get(i).copied().unwrap_or(!x);
    }
    differ == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_whole_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
    }
}
