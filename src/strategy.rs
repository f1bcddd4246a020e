//! proptest strategies for users' own tests (feature `strategy`, on by default).
//!
//! ```
//! use grpc_chaos::strategy::{grpc_timeout, metadata_key};
//! use proptest::prelude::*;
//! use proptest::test_runner::TestRunner;
//!
//! // In a test file, inside `proptest! { #[test] fn …(key in metadata_key()) { … } }`.
//! TestRunner::default()
//!     .run(&(metadata_key(), grpc_timeout()), |(key, timeout)| {
//!         prop_assert_eq!(grpc_chaos::metadata::normalize_key(&key).unwrap(), key);
//!         prop_assert!(grpc_chaos::deadline::parse_grpc_timeout(&timeout).is_ok());
//!         Ok(())
//!     })
//!     .unwrap();
//! ```

use proptest::prelude::*;

use crate::metadata::{KeyError, Metadata};

/// Valid custom text metadata keys: `[0-9a-z_.-]{1,20}`, not reserved, not `grpc-`,
/// not ending in `-bin`.
///
/// ```
/// let s = grpc_chaos::strategy::metadata_key();
/// ```
pub fn metadata_key() -> impl Strategy<Value = String> {
    text_key()
}

fn text_key() -> impl Strategy<Value = String> {
    "[a-z0-9_.][0-9a-z_.-]{0,19}".prop_filter("valid text key", |k| {
        !k.ends_with("-bin") && crate::metadata::normalize_key(k).is_ok()
    })
}

/// Valid `-bin` keys.
///
/// ```
/// let s = grpc_chaos::strategy::binary_metadata_key();
/// ```
pub fn binary_metadata_key() -> impl Strategy<Value = String> {
    "[a-z0-9_.][0-9a-z_.-]{0,15}"
        .prop_map(|k| format!("{k}-bin"))
        .prop_filter("valid", |k| crate::metadata::normalize_key(k).is_ok())
}

/// Mixed-case keys that normalise to valid ones (`User-ID` → `user-id`).
///
/// ```
/// let s = grpc_chaos::strategy::mixed_case_key();
/// ```
pub fn mixed_case_key() -> impl Strategy<Value = String> {
    (text_key(), any::<u64>()).prop_map(|(k, bits)| {
        k.chars()
            .enumerate()
            .map(|(i, c)| {
                if bits >> (i % 64) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    })
}

/// Invalid keys, one class at a time, each with the error class it must give.
///
/// ```
/// let s = grpc_chaos::strategy::invalid_metadata_key();
/// ```
pub fn invalid_metadata_key() -> impl Strategy<Value = (String, KeyError)> {
    prop_oneof![
        Just((String::new(), KeyError::Empty)),
        (
            "[a-z]{1,5}",
            "[ !\"#$%&'()*+,/:;<=>?@\\[\\]^`{|}~é]",
            "[a-z]{0,5}"
        )
            .prop_map(|(a, bad, b)| {
                let key = format!("{a}{bad}{b}");
                let ch = bad.chars().next().unwrap_or(' ');
                let index = a.len();
                (key, KeyError::InvalidChar { ch, index })
            }),
        "[a-z]{1,8}".prop_map(|k| (format!(":{k}"), KeyError::PseudoHeader)),
        prop::sample::select(vec![
            "te",
            "content-type",
            "grpc-status",
            "grpc-timeout",
            "connection",
            "user-agent"
        ])
        .prop_map(|k| (k.to_string(), KeyError::Reserved { key: k.to_string() })),
        "[a-z]{1,8}".prop_map(|k| {
            let key = format!("grpc-x{k}");
            (key.clone(), KeyError::ReservedPrefix { key })
        }),
    ]
}

/// ASCII values a receiver keeps unchanged: printable, no leading or trailing space.
///
/// ```
/// let s = grpc_chaos::strategy::ascii_value();
/// ```
pub fn ascii_value() -> impl Strategy<Value = String> {
    "([!-~]([ -~]{0,30}[!-~])?)?"
}

/// Arbitrary bytes for `-bin` values.
///
/// ```
/// let s = grpc_chaos::strategy::binary_value();
/// ```
pub fn binary_value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

/// Metadata maps of up to `entries` entries whose size stays within `budget` bytes (as
/// HTTP/2 counts it), with repeated keys, text and binary values.
///
/// ```
/// let s = grpc_chaos::strategy::metadata_map(8, 4096);
/// ```
pub fn metadata_map(entries: usize, budget: usize) -> impl Strategy<Value = Metadata> {
    let entry = prop_oneof![
        (text_key(), ascii_value()).prop_map(|(k, v)| (k, Ok(v))),
        (binary_metadata_key(), binary_value()).prop_map(|(k, v)| (k, Err(v))),
    ];
    prop::collection::vec(entry, 0..=entries).prop_map(move |list| {
        let mut md = Metadata::new();
        for (key, value) in list {
            let mut candidate = md.clone();
            let added = match &value {
                Ok(text) => candidate.append(&key, text),
                Err(bytes) => candidate.append_bin(&key, bytes),
            };
            if added.is_ok() && candidate.encoded_size() <= budget {
                md = candidate;
            }
        }
        md
    })
}

/// `grpc-timeout` values the spec's grammar accepts.
///
/// ```
/// let s = grpc_chaos::strategy::grpc_timeout();
/// ```
pub fn grpc_timeout() -> impl Strategy<Value = String> {
    (
        "[0-9]{1,8}",
        prop::sample::select(vec!['H', 'M', 'S', 'm', 'u', 'n']),
    )
        .prop_map(|(d, u)| format!("{d}{u}"))
}

/// gRPC status codes, 0 to 16.
///
/// ```
/// let s = grpc_chaos::strategy::status_code();
/// ```
pub fn status_code() -> impl Strategy<Value = tonic::Code> {
    (0i32..=16).prop_map(tonic::Code::from_i32)
}
