//! Metadata values: printable ASCII for text keys, base64 for `-bin` keys.

use std::fmt;

use base64::Engine as _;

/// Why a value cannot be sent.
///
/// ```
/// use tonic_layers::metadata::{ascii_value, ValueError};
/// assert_eq!(ascii_value("é"), Err(ValueError::NotPrintableAscii { index: 0 }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// A byte outside 0x20–0x7E in an ASCII value, and its offset.
    NotPrintableAscii {
        /// The byte offset.
        index: usize,
    },
    /// A `-bin` value that is not base64 (padded or unpadded).
    NotBase64 {
        /// The offending (comma-separated) part.
        part: String,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPrintableAscii { index } => {
                write!(
                    f,
                    "metadata value has a byte outside printable ASCII at {index}; use a -bin key"
                )
            }
            Self::NotBase64 { part } => write!(f, "binary metadata value {part:?} is not base64"),
        }
    }
}

impl std::error::Error for ValueError {}

/// Checks an ASCII value (0x20–0x7E) and trims leading and trailing spaces, as the spec
/// lets a receiver do.
///
/// # Errors
/// [`ValueError::NotPrintableAscii`] naming the first bad byte.
///
/// ```
/// use tonic_layers::metadata::ascii_value;
/// assert_eq!(ascii_value("  blue ").unwrap(), "blue");
/// ```
pub fn ascii_value(value: &str) -> Result<&str, ValueError> {
    match value.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
        Some(index) => Err(ValueError::NotPrintableAscii { index }),
        None => Ok(value.trim_matches(' ')),
    }
}

/// Encodes bytes for a `-bin` key: base64 without padding, as senders should.
///
/// ```
/// assert_eq!(tonic_layers::metadata::encode_binary(&[0xde, 0xad]), "3q0");
/// ```
pub fn encode_binary(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Decodes a `-bin` header value: padded or unpadded base64, several values joined with
/// `,` split first.
///
/// # Errors
/// [`ValueError::NotBase64`] naming the part that does not decode.
///
/// ```
/// use tonic_layers::metadata::decode_binary;
/// assert_eq!(decode_binary("3q0=,AAE").unwrap(), vec![vec![0xde, 0xad], vec![0, 1]]);
/// ```
pub fn decode_binary(value: &str) -> Result<Vec<Vec<u8>>, ValueError> {
    value
        .split(',')
        .map(|part| {
            let part = part.trim_matches(' ');
            decode_base64(part.as_bytes()).ok_or_else(|| ValueError::NotBase64 {
                part: part.to_string(),
            })
        })
        .collect()
}

/// Decodes one base64 value, padded or unpadded (receivers must accept both).
///
/// ```
/// use tonic_layers::metadata::decode_base64;
/// assert_eq!(decode_base64(b"3q0="), Some(vec![0xde, 0xad]));
/// assert_eq!(decode_base64(b"3q0"), Some(vec![0xde, 0xad]));
/// assert_eq!(decode_base64(b"*"), None);
/// ```
pub fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let unpadded = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(unpadded)
        .ok()
}
