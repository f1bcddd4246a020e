//! Metadata keys and values: any input gives a value or a typed error, never a panic;
//! a normalised key normalises to itself, and a map of them converts to tonic's.
#![no_main]

use grpc_chaos::metadata::{decode_binary, normalize_key, Metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (key, value) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(normal) = normalize_key(key) {
        assert_eq!(normalize_key(&normal).as_deref(), Ok(normal.as_str()));
    }
    let _ = decode_binary(value);
    let mut md = Metadata::new();
    if md.append(key, value).is_ok() || md.append_bin(key, value.as_bytes()).is_ok() {
        md.to_metadata_map().expect("valid metadata converts");
    }
});
