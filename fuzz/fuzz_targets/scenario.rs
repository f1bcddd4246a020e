//! Scenario files: any text gives stubs or a file:line:col error, never a panic.
#![no_main]

use grpc_chaos::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Scenario::parse("fuzz.toml", text, 0) {
            assert!(e.to_string().starts_with("fuzz.toml"));
        }
    }
});
