//! Compiles the protos with protox (pure Rust), so no system `protoc` is needed.

use std::path::Path;

fn compile(
    files: &[&str],
    includes: &[&str],
    builtin: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(files, includes)?;
    let mut config = tonic_prost_build::configure()
        .build_server(builtin)
        .build_client(true);
    if builtin {
        // Scenario files write the built-in messages as TOML tables.
        config = config.message_attribute(
            ".",
            "#[derive(serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        );
    }
    config.compile_fds(descriptors)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=tests/proto");
    compile(
        &["pb/greeter.proto", "grpc/testing/test.proto"],
        &["proto"],
        true,
    )?;
    // The test-only service is generated beside the others; only the tests include it.
    if Path::new("tests/proto/inventory.proto").exists() {
        compile(&["inventory.proto"], &["tests/proto"], false)?;
    }
    Ok(())
}
