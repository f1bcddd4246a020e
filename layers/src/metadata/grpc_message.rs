//! `grpc-message`: the status message, percent-encoded on the wire.

/// A `grpc-message` value as text: its `%XX` escapes decoded, invalid ones kept as they
/// are, and bytes that are not UTF-8 replaced.
///
/// ```
/// use tonic_layers::metadata::decode_grpc_message;
/// assert_eq!(decode_grpc_message(b"later, 50%25 off"), "later, 50% off");
/// assert_eq!(decode_grpc_message(b"100%"), "100%");
/// ```
pub fn decode_grpc_message(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
