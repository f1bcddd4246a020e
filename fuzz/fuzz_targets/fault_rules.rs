//! `[[fault]]` rules: any TOML in a fault table gives rules or a file:line:col error,
//! never a panic.
#![no_main]

use grpc_chaos::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = std::str::from_utf8(data) else {
        return;
    };
    let text = format!("[[fault]]\nmethod = \"/pb.Greeter/SayHello\"\n{keys}\n");
    match Scenario::parse("fuzz.toml", &text, 0) {
        Ok(mut scenario) => assert!(scenario.take_faults().len() <= 1 + keys.matches("[[fault]]").count()),
        Err(e) => assert!(e.to_string().starts_with("fuzz.toml")),
    }
});
