//! Scenario text as the admin API's Mount takes it, TOML or JSON: any bytes give stubs
//! or a name:line:col error (which the API answers as INVALID_ARGUMENT), never a panic.
#![no_main]

use grpc_chaos::scenario::Scenario;
use grpc_chaos::schema::Schema;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let schema = Schema::builtin();
    for name in ["admin.toml", "admin.json"] {
        if let Err(e) = Scenario::parse_with(&schema, name, text, 0) {
            assert!(e.to_string().starts_with(name));
        }
    }
});
