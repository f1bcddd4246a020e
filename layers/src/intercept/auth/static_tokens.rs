//! [`StaticTokens`], the built-in validator: a fixed set of tokens compared with
//! [`constant_time_eq`], each giving an [`Identity`].

use std::fmt;

use super::{AuthError, TokenValidator};

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

#[cfg(test)]
mod tests {
    use super::*;

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
