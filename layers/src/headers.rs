//! Header lookups on the hot path: two names found in one scan of a small map, and a
//! call's `grpc-status` and `grpc-message` read that way from its trailers (or from
//! the headers of a Trailers-Only response).

use http::{HeaderMap, HeaderName, HeaderValue};

/// Parsed once: looking a header up by `&str` parses the name on every call.
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The first value of `a` and of `b` in `headers`. A call's headers and trailers hold a
/// handful of entries, and comparing a few names costs less than hashing a custom one
/// (callgrind, the logging layer's two status lookups: ~350 instructions a call by
/// hash); a larger map is looked up by hash.
pub(crate) fn find_two<'h>(
    headers: &'h HeaderMap,
    a: &HeaderName,
    b: &HeaderName,
) -> (Option<&'h HeaderValue>, Option<&'h HeaderValue>) {
    if headers.len() > 8 {
        return (headers.get(a), headers.get(b));
    }
    let (mut found_a, mut found_b) = (None, None);
    for (name, value) in headers {
        if name == a {
            found_a = found_a.or(Some(value));
        } else if name == b {
            found_b = found_b.or(Some(value));
        }
    }
    (found_a, found_b)
}

/// The `grpc-status` and `grpc-message` values in `headers`.
pub(crate) fn status_of(headers: &HeaderMap) -> (Option<&[u8]>, Option<&[u8]>) {
    let (code, message) = find_two(headers, &GRPC_STATUS, &GRPC_MESSAGE);
    (
        code.map(HeaderValue::as_bytes),
        message.map(HeaderValue::as_bytes),
    )
}
