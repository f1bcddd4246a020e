//! Metadata that never panics: key normalisation and validation, ASCII and `-bin`
//! values, size accounting, and conversions to and from tonic's `MetadataMap`.
//!
//! tonic panics on `MetadataMap::insert("User-ID", …)` and on an ASCII value under a
//! `-bin` key; oversized header lists fail late (HTTP 431 seen as `Unknown` over 16 KiB,
//! a GOAWAY that kills every call on the connection near 100 KB). Here every input
//! gives either a value or a typed error, and size is checked before sending.
//!
//! Where [`normalize_key`] and tonic's `MetadataKey::from_bytes` disagree (a property
//! test over arbitrary strings pins it, `tests/it/metadata_props.rs`):
//! - tonic takes any HTTP token character in a key (`#`, `!`, `$`, `*`, `|`, …); gRPC's
//!   grammar allows only `[0-9a-z_.-]`, so these are [`KeyError::InvalidChar`] here;
//! - tonic takes reserved names as metadata (`te`, `content-type`, `grpc-status`, any
//!   `grpc-*`); here they are [`KeyError::Reserved`] or [`KeyError::ReservedPrefix`];
//! - tonic's `insert` panics on `User-ID`; here it becomes `user-id`.
//!
//! Values: tonic's `MetadataValue::from_bytes` takes bytes outside printable ASCII
//! (`é` as UTF-8) in a text value; [`Metadata::append`] refuses them with
//! [`ValueError::NotPrintableAscii`]. And on a unary call that fails after its headers,
//! tonic's `Status` carries only the trailers: the initial metadata is not visible.
//!
//! ```
//! use tonic_layers::metadata::Metadata;
//!
//! let md = Metadata::pairs([("User-ID", "42"), ("x-tenant", "blue")]).unwrap();
//! let mut md = md;
//! md.append_bin("trace-bin", &[0xde, 0xad]).unwrap();
//! assert_eq!(md.encoded_size(), (7 + 2 + 32) + (8 + 4 + 32) + (9 + 3 + 32));
//! md.check_size(tonic_layers::metadata::DEFAULT_SIZE_LIMIT).unwrap();
//! let map: tonic::metadata::MetadataMap = md.to_metadata_map().unwrap();
//! assert_eq!(map.get("user-id").unwrap(), "42");
//! assert!(Metadata::pairs([("bad key", "x")]).is_err()); // an error, not a panic
//! ```

mod grpc_message;
mod key;
mod layer;
mod value;

use std::fmt;

use tonic::metadata::{KeyAndValueRef, MetadataKey, MetadataMap, MetadataValue};

pub use grpc_message::decode_grpc_message;
pub use key::{normalize_key, normalize_retry_key, KeyError, RETRY_KEYS};
pub use layer::{check_request_size, MetadataLimit, MetadataLimitLayer};
pub use value::{ascii_value, decode_base64, decode_binary, encode_binary, ValueError};

/// The header-list size the spec suggests as a limit: 8 KiB.
pub const DEFAULT_SIZE_LIMIT: usize = 8 * 1024;

/// What HTTP/2 adds to each entry when it sizes a header list (RFC 7540 §6.5.2).
pub const ENTRY_OVERHEAD: usize = 32;

/// One metadata value.
///
/// ```
/// use tonic_layers::metadata::Value;
/// let v = Value::Binary(vec![1, 2]);
/// assert_eq!(v.encoded(), "AQI");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A printable-ASCII value of a text key.
    Ascii(String),
    /// The bytes of a `-bin` key's value.
    Binary(Vec<u8>),
}

impl Value {
    /// The value as it goes on the wire (binary values as unpadded base64).
    ///
    /// ```
    /// assert_eq!(tonic_layers::metadata::Value::Ascii("x".into()).encoded(), "x");
    /// ```
    pub fn encoded(&self) -> String {
        match self {
            Value::Ascii(s) => s.clone(),
            Value::Binary(b) => encode_binary(b),
        }
    }

    /// The length of [`Value::encoded`], without encoding (unpadded base64: ⌈4n/3⌉).
    ///
    /// ```
    /// use tonic_layers::metadata::Value;
    /// let v = Value::Binary(vec![7; 5]);
    /// assert_eq!(v.encoded_len(), v.encoded().len());
    /// ```
    pub fn encoded_len(&self) -> usize {
        match self {
            Value::Ascii(s) => s.len(),
            Value::Binary(b) => (b.len() * 4).div_ceil(3),
        }
    }
}

/// Why metadata cannot be built or sent.
///
/// ```
/// use tonic_layers::metadata::{Metadata, MetadataError};
/// let err = Metadata::pairs([("x", "é")]).unwrap_err();
/// assert!(matches!(err, MetadataError::Value { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// The key is invalid.
    Key {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        source: KeyError,
    },
    /// The value is invalid for its key.
    Value {
        /// The normalised key.
        key: String,
        /// What is wrong with it.
        source: ValueError,
    },
    /// Binary bytes given for a text key, or text for a `-bin` key.
    WrongKind {
        /// The normalised key.
        key: String,
    },
    /// The header list is over the limit.
    TooLarge {
        /// Its size, as HTTP/2 counts it.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key { key, source } => write!(f, "key {key:?}: {source}"),
            Self::Value { key, source } => write!(f, "value of {key:?}: {source}"),
            Self::WrongKind { key } if key.ends_with("-bin") => {
                write!(f, "{key:?} is a -bin key: give it bytes")
            }
            Self::WrongKind { key } => {
                write!(f, "{key:?} is a text key: give it ASCII, or name it …-bin")
            }
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "metadata is {size} bytes as HTTP/2 counts it, over the limit of {limit}"
                )
            }
        }
    }
}

impl std::error::Error for MetadataError {}

/// Custom metadata, in order, with several values per key allowed.
///
/// ```
/// use tonic_layers::metadata::{Metadata, Value};
/// let mut md = Metadata::new();
/// md.append("x-a", "1").unwrap();
/// md.append("X-A", "2").unwrap();
/// md.insert("x-b", "3").unwrap();
/// assert_eq!(md.get_all("x-a"), vec![&Value::Ascii("1".into()), &Value::Ascii("2".into())]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
}

impl Metadata {
    /// No entries.
    ///
    /// ```
    /// assert!(tonic_layers::metadata::Metadata::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Text entries from pairs, like the walkthrough's `metadata.Pairs`; keys are
    /// normalised. Use [`Metadata::append_bin`] for binary values.
    ///
    /// # Errors
    /// The first invalid key or value.
    ///
    /// ```
    /// let md = tonic_layers::metadata::Metadata::pairs([("a", "1"), ("b", "2")]).unwrap();
    /// assert_eq!(md.len(), 2);
    /// ```
    pub fn pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, MetadataError> {
        let mut md = Self::new();
        for (k, v) in pairs {
            md.append(k.as_ref(), v.as_ref())?;
        }
        Ok(md)
    }

    /// Adds a text value after any others of the key.
    ///
    /// # Errors
    /// An invalid key, a `-bin` key, or a value outside printable ASCII.
    ///
    /// ```
    /// let mut md = tonic_layers::metadata::Metadata::new();
    /// md.append("x-a", "1").unwrap();
    /// ```
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let key = checked_kind(key, false)?;
        let value = ascii_value(value).map_err(|source| MetadataError::Value {
            key: key.clone(),
            source,
        })?;
        self.entries.push((key, Value::Ascii(value.to_string())));
        Ok(())
    }

    /// Adds a binary value after any others of the key (which must end in `-bin`).
    ///
    /// # Errors
    /// An invalid key, or a key without `-bin`.
    ///
    /// ```
    /// let mut md = tonic_layers::metadata::Metadata::new();
    /// md.append_bin("blob-bin", &[0, 1]).unwrap();
    /// ```
    pub fn append_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        let key = checked_kind(key, true)?;
        self.entries.push((key, Value::Binary(value.to_vec())));
        Ok(())
    }

    /// Replaces every value of the key with this text value.
    ///
    /// # Errors
    /// As [`Metadata::append`].
    ///
    /// ```
    /// let mut md = tonic_layers::metadata::Metadata::pairs([("a", "1"), ("a", "2")]).unwrap();
    /// md.insert("a", "3").unwrap();
    /// assert_eq!(md.len(), 1);
    /// ```
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let mut fresh = Self::new();
        fresh.append(key, value)?;
        self.remove(&fresh.entries[0].0);
        self.entries.append(&mut fresh.entries);
        Ok(())
    }

    /// Replaces every value of the `-bin` key with these bytes.
    ///
    /// # Errors
    /// As [`Metadata::append_bin`].
    ///
    /// ```
    /// let mut md = tonic_layers::metadata::Metadata::new();
    /// md.insert_bin("k-bin", &[1]).unwrap();
    /// ```
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        let mut fresh = Self::new();
        fresh.append_bin(key, value)?;
        self.remove(&fresh.entries[0].0);
        self.entries.append(&mut fresh.entries);
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// Every value of a key, in order (the key is normalised first; none if invalid).
    ///
    /// ```
    /// let md = tonic_layers::metadata::Metadata::pairs([("a", "1")]).unwrap();
    /// assert_eq!(md.get_all("A").len(), 1);
    /// ```
    pub fn get_all(&self, key: &str) -> Vec<&Value> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .collect()
    }

    /// The entries, in order.
    ///
    /// ```
    /// let md = tonic_layers::metadata::Metadata::pairs([("a", "1")]).unwrap();
    /// for (key, value) in md.iter() { println!("{key}: {}", value.encoded()); }
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many entries.
    ///
    /// ```
    /// assert_eq!(tonic_layers::metadata::Metadata::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    ///
    /// ```
    /// assert!(tonic_layers::metadata::Metadata::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The size HTTP/2 counts for these entries: name + value + 32 each, binary values
    /// measured after base64.
    ///
    /// ```
    /// let md = tonic_layers::metadata::Metadata::pairs([("ab", "xyz")]).unwrap();
    /// assert_eq!(md.encoded_size(), 2 + 3 + 32);
    /// ```
    pub fn encoded_size(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, v)| k.len() + v.encoded_len() + ENTRY_OVERHEAD)
            .sum()
    }

    /// Checks the size against a limit ([`DEFAULT_SIZE_LIMIT`] is the spec's 8 KiB).
    ///
    /// # Errors
    /// [`MetadataError::TooLarge`] with the size and the limit.
    ///
    /// ```
    /// let md = tonic_layers::metadata::Metadata::pairs([("a", "1")]).unwrap();
    /// assert!(md.check_size(10).is_err());
    /// ```
    pub fn check_size(&self, limit: usize) -> Result<(), MetadataError> {
        let size = self.encoded_size();
        if size > limit {
            Err(MetadataError::TooLarge { size, limit })
        } else {
            Ok(())
        }
    }

    /// Converts to tonic's map, never panicking.
    ///
    /// # Errors
    /// Only for entries tonic cannot hold, which validation has already kept out.
    ///
    /// ```
    /// let md = tonic_layers::metadata::Metadata::pairs([("a", "1")]).unwrap();
    /// let map = md.to_metadata_map().unwrap();
    /// ```
    pub fn to_metadata_map(&self) -> Result<MetadataMap, MetadataError> {
        let mut map = MetadataMap::with_capacity(self.entries.len());
        for (key, value) in &self.entries {
            let bad_key = || MetadataError::Key {
                key: key.clone(),
                source: KeyError::Empty,
            };
            match value {
                Value::Ascii(s) => {
                    let k = MetadataKey::from_bytes(key.as_bytes()).map_err(|_| bad_key())?;
                    let v =
                        MetadataValue::try_from(s.as_str()).map_err(|_| MetadataError::Value {
                            key: key.clone(),
                            source: ValueError::NotPrintableAscii { index: 0 },
                        })?;
                    map.append(k, v);
                }
                Value::Binary(b) => {
                    let k = MetadataKey::from_bytes(key.as_bytes()).map_err(|_| bad_key())?;
                    map.append_bin(k, MetadataValue::from_bytes(b));
                }
            }
        }
        Ok(map)
    }

    /// Adds every entry to a tonic request, response, status or map, after the values it
    /// already holds, all or nothing.
    ///
    /// # Errors
    /// As [`Metadata::to_metadata_map`]; the target is then left as it was.
    ///
    /// ```
    /// use tonic_layers::metadata::Metadata;
    /// let mut md = Metadata::pairs([("x-tenant", "blue")]).unwrap();
    /// md.append_bin("trace-bin", &[1, 2]).unwrap();
    ///
    /// let mut request = tonic::Request::new(());
    /// request.metadata_mut().insert("x-tenant", "red".parse().unwrap());
    /// md.append_to(&mut request).unwrap();
    /// let tenants: Vec<_> = request.metadata().get_all("x-tenant").iter().collect();
    /// assert_eq!(tenants, ["red", "blue"]);
    /// assert_eq!(request.metadata().get_bin("trace-bin").unwrap().to_bytes().unwrap().as_ref(), [1, 2]);
    ///
    /// let mut map = tonic::metadata::MetadataMap::new();
    /// md.append_to(&mut map).unwrap();
    /// assert_eq!(map.len(), 2);
    /// ```
    pub fn append_to(&self, target: &mut impl MetadataTarget) -> Result<(), MetadataError> {
        let built = self.to_metadata_map()?;
        let map = target.metadata_map();
        for entry in built.iter() {
            match entry {
                KeyAndValueRef::Ascii(k, v) => {
                    map.append(k.clone(), v.clone());
                }
                KeyAndValueRef::Binary(k, v) => {
                    map.append_bin(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    }

    /// Reads tonic's map: gRPC's own headers (`te`, `content-type`, `grpc-timeout`, …)
    /// are left out, binary values are decoded (padded or unpadded, `,`-joined values
    /// split). A text value that is valid HTTP but not printable ASCII is kept (lossily
    /// as UTF-8), as the spec asks receivers not to fail on it.
    ///
    /// # Errors
    /// A `-bin` value that is not base64.
    ///
    /// ```
    /// let mut map = tonic::metadata::MetadataMap::new();
    /// map.insert("x-a", "1".parse().unwrap());
    /// let md = tonic_layers::metadata::Metadata::from_metadata_map(&map).unwrap();
    /// assert_eq!(md.len(), 1);
    /// ```
    pub fn from_metadata_map(map: &MetadataMap) -> Result<Self, MetadataError> {
        let mut md = Self::new();
        for entry in map.iter() {
            match entry {
                KeyAndValueRef::Ascii(k, v) => {
                    let Ok(key) = normalize_retry_key(k.as_str()) else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(v.as_encoded_bytes()).into_owned();
                    md.entries.push((key, Value::Ascii(text)));
                }
                KeyAndValueRef::Binary(k, v) => {
                    let Ok(key) = normalize_retry_key(k.as_str()) else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(v.as_encoded_bytes()).into_owned();
                    let values = decode_binary(&text).map_err(|source| MetadataError::Value {
                        key: key.clone(),
                        source,
                    })?;
                    md.entries
                        .extend(values.into_iter().map(|b| (key.clone(), Value::Binary(b))));
                }
            }
        }
        Ok(md)
    }
}

/// What [`Metadata::append_to`] writes into: anything of tonic's that holds a
/// `MetadataMap`.
pub trait MetadataTarget {
    /// The map to add to.
    fn metadata_map(&mut self) -> &mut MetadataMap;
}

impl MetadataTarget for MetadataMap {
    fn metadata_map(&mut self) -> &mut MetadataMap {
        self
    }
}

impl<T> MetadataTarget for tonic::Request<T> {
    fn metadata_map(&mut self) -> &mut MetadataMap {
        self.metadata_mut()
    }
}

impl<T> MetadataTarget for tonic::Response<T> {
    fn metadata_map(&mut self) -> &mut MetadataMap {
        self.metadata_mut()
    }
}

impl MetadataTarget for tonic::Status {
    fn metadata_map(&mut self) -> &mut MetadataMap {
        self.metadata_mut()
    }
}

fn checked_key(key: &str) -> Result<String, MetadataError> {
    normalize_retry_key(key).map_err(|source| MetadataError::Key {
        key: key.to_string(),
        source,
    })
}

/// A checked key whose kind matches its value: `-bin` for bytes, any other for text.
fn checked_kind(key: &str, binary: bool) -> Result<String, MetadataError> {
    let key = checked_key(key)?;
    if key.ends_with("-bin") != binary {
        return Err(MetadataError::WrongKind { key });
    }
    Ok(key)
}

/// The header name for a custom metadata key with a text (`binary == false`) or bytes
/// value: the rules of [`Metadata::append`] and [`Metadata::append_bin`], for code that
/// writes an `http::HeaderMap` directly. The retry machinery's `grpc-` keys are allowed.
///
/// # Errors
/// [`MetadataError::Key`] for an invalid key, [`MetadataError::WrongKind`] when the key's
/// `-bin` suffix does not match the value's kind.
///
/// ```
/// use tonic_layers::metadata::{header_name, MetadataError};
/// assert_eq!(header_name("User-ID", false).unwrap(), "user-id");
/// assert_eq!(header_name("grpc-retry-pushback-ms", false).unwrap(), "grpc-retry-pushback-ms");
/// assert!(matches!(header_name("blob-bin", false), Err(MetadataError::WrongKind { .. })));
/// assert!(matches!(header_name("te", false), Err(MetadataError::Key { .. })));
/// ```
pub fn header_name(key: &str, binary: bool) -> Result<http::HeaderName, MetadataError> {
    let key = checked_kind(key, binary)?;
    // The grammar checked above is a subset of HTTP's token grammar.
    http::HeaderName::from_bytes(key.as_bytes()).map_err(|_| MetadataError::Key {
        key: key.clone(),
        source: KeyError::Empty,
    })
}

/// The size HTTP/2 counts for a header list (name + value + 32 per entry).
///
/// ```
/// let mut h = http::HeaderMap::new();
/// h.insert("ab", "xyz".parse().unwrap());
/// assert_eq!(tonic_layers::metadata::header_list_size(&h), 37);
/// ```
pub fn header_list_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + ENTRY_OVERHEAD)
        .sum()
}
