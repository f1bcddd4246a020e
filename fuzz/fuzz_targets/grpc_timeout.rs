//! The strict grpc-timeout parser: any bytes give a duration or an error, never a panic,
//! and whatever parses formats back to no later a timeout.
#![no_main]

use grpc_chaos::deadline::{format_grpc_timeout, parse_grpc_timeout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(timeout) = parse_grpc_timeout(text) {
            let again = parse_grpc_timeout(&format_grpc_timeout(timeout))
                .expect("format gives a valid value");
            assert!(again <= timeout || timeout.is_zero());
        }
    }
});
