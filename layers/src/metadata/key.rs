//! Metadata keys: normalisation and validation against the spec's grammar.

use std::fmt;

/// Connection-specific headers HTTP/2 forbids, and headers gRPC itself owns.
const RESERVED: [&str; 16] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "te",
    "content-type",
    "content-length",
    "user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-message-type",
    "grpc-status",
    "grpc-message",
];

/// The `grpc-` names the retry machinery reads and writes (gRFC A6).
pub const RETRY_KEYS: [&str; 2] = ["grpc-previous-rpc-attempts", "grpc-retry-pushback-ms"];

/// Why a key is not valid custom metadata.
///
/// ```
/// use tonic_layers::metadata::{normalize_key, KeyError};
/// assert_eq!(normalize_key(""), Err(KeyError::Empty));
/// assert_eq!(normalize_key("user id"), Err(KeyError::InvalidChar { ch: ' ', index: 4 }));
/// assert_eq!(normalize_key(":path"), Err(KeyError::PseudoHeader));
/// assert_eq!(normalize_key("te"), Err(KeyError::Reserved { key: "te".into() }));
/// assert_eq!(normalize_key("grpc-custom"), Err(KeyError::ReservedPrefix { key: "grpc-custom".into() }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    Empty,
    /// A character outside `[0-9a-z_.-]` (after lowercasing), and its byte offset.
    InvalidChar {
        /// The character.
        ch: char,
        /// Its byte offset in the key.
        index: usize,
    },
    /// An HTTP/2 pseudo-header such as `:path`.
    PseudoHeader,
    /// A connection-specific header or one gRPC owns (`te`, `content-type`, `grpc-status`, …).
    Reserved {
        /// The normalised key.
        key: String,
    },
    /// Another name under the `grpc-` prefix, which the spec reserves.
    ReservedPrefix {
        /// The normalised key.
        key: String,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "metadata key is empty"),
            Self::InvalidChar { ch, index } => {
                write!(
                    f,
                    "metadata key has {ch:?} at byte {index}; keys are [0-9a-z_.-]"
                )
            }
            Self::PseudoHeader => write!(f, "metadata key is an HTTP/2 pseudo-header"),
            Self::Reserved { key } => {
                write!(f, "metadata key {key:?} is reserved by HTTP/2 or gRPC")
            }
            Self::ReservedPrefix { key } => {
                write!(f, "metadata key {key:?} uses the reserved grpc- prefix")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// Lowercases a key and checks it is valid custom metadata: `[0-9a-z_.-]+`, not a
/// pseudo-header, not reserved, not under `grpc-`. Idempotent: a valid key comes back
/// unchanged.
///
/// grpcio rejects `User-ID`, grpc-js and grpc-go lowercase it, tonic panics on it; this
/// lowercases it, and returns an error for anything that is still invalid.
///
/// # Errors
/// A [`KeyError`] naming the class of problem.
///
/// ```
/// use tonic_layers::metadata::normalize_key;
/// assert_eq!(normalize_key("User-ID").unwrap(), "user-id");
/// assert_eq!(normalize_key("trace.v2_bin-bin").unwrap(), "trace.v2_bin-bin");
/// ```
pub fn normalize_key(key: &str) -> Result<String, KeyError> {
    normalize(key, false)
}

/// [`normalize_key`], also allowing the retry machinery's `grpc-` keys ([`RETRY_KEYS`]).
///
/// # Errors
/// A [`KeyError`] naming the class of problem.
///
/// ```
/// use tonic_layers::metadata::{normalize_key, normalize_retry_key};
/// assert!(normalize_key("grpc-retry-pushback-ms").is_err());
/// assert_eq!(normalize_retry_key("grpc-retry-pushback-ms").unwrap(), "grpc-retry-pushback-ms");
/// ```
pub fn normalize_retry_key(key: &str) -> Result<String, KeyError> {
    normalize(key, true)
}

fn normalize(key: &str, retry: bool) -> Result<String, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.starts_with(':') {
        return Err(KeyError::PseudoHeader);
    }
    // One pass over the bytes checks and lowercases. The first byte that is not in the
    // grammar starts its character: every byte before it is ASCII.
    let mut lowered = String::with_capacity(key.len());
    for (index, byte) in key.bytes().enumerate() {
        let lower = byte.to_ascii_lowercase();
        if !matches!(lower, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.') {
            let ch = key[index..]
                .chars()
                .next()
                .unwrap_or(char::REPLACEMENT_CHARACTER);
            return Err(KeyError::InvalidChar { ch, index });
        }
        lowered.push(char::from(lower));
    }
    let key = lowered;
    if RESERVED.contains(&key.as_str()) {
        return Err(KeyError::Reserved { key });
    }
    if key.starts_with("grpc-") && !(retry && RETRY_KEYS.contains(&key.as_str())) {
        return Err(KeyError::ReservedPrefix { key });
    }
    Ok(key)
}
