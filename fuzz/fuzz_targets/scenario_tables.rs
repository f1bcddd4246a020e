//! Message tables: any TOML under a match table of a rich built-in type (nested
//! messages, enums, bytes, repeated fields) gives a stub or a file:line:col error, never
//! a panic; a stub's table, once read, matches without panicking either.
#![no_main]

use grpc_chaos::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(fields) = std::str::from_utf8(data) else {
        return;
    };
    for key in ["message", "message_contains"] {
        let text = format!(
            "[[stub]]\nmethod = \"/grpc.testing.TestService/StreamingOutputCall\"\n\
             [stub.match.{key}]\n{fields}\n[stub.reply]\n"
        );
        if let Err(e) = Scenario::parse("fuzz.toml", &text, 0) {
            assert!(e.to_string().starts_with("fuzz.toml"));
        }
        let reply = format!(
            "[[stub]]\nmethod = \"/grpc.testing.TestService/UnaryCall\"\nreply = {{ message = {{ {fields} }} }}\n"
        );
        if let Err(e) = Scenario::parse("fuzz.toml", &reply, 0) {
            assert!(e.to_string().starts_with("fuzz.toml"));
        }
    }
});
