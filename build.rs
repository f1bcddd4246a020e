//! Compiles the protos with protox (pure Rust), so no system `protoc` is needed, and
//! writes the built-in methods' table (`methods.rs`, included by `src/pb.rs`) and the
//! encoded descriptor set (`builtin.bin`) from the same descriptors.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use protox::prost_reflect::prost::Message as _;
use protox::prost_reflect::prost_types::FileDescriptorSet;

/// One `ProtoMethod` literal per method of every service in `set`.
fn method_table(set: &FileDescriptorSet) -> String {
    let strip = |t: &str| t.trim_start_matches('.').to_string();
    let mut out = String::from("/// Every method of the built-in protos, in declaration order.\n");
    out.push_str("pub const METHODS: &[ProtoMethod] = &[\n");
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for m in &service.method {
                let prefix = if package.is_empty() {
                    String::new()
                } else {
                    format!("{package}.")
                };
                let _ = writeln!(
                    out,
                    "    ProtoMethod {{ path: {:?}, request: {:?}, response: {:?}, client_streaming: {}, server_streaming: {} }},",
                    format!("/{prefix}{}/{}", service.name(), m.name()),
                    strip(m.input_type()),
                    strip(m.output_type()),
                    m.client_streaming(),
                    m.server_streaming(),
                );
            }
        }
    }
    out.push_str("];\n");
    out
}

fn compile(
    files: &[&str],
    includes: &[&str],
    builtin: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(files, includes)?;
    if builtin {
        let out = PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(out.join("methods.rs"), method_table(&descriptors))?;
        // The same descriptors, encoded, for scenario tables and server reflection.
        std::fs::write(out.join("builtin.bin"), descriptors.encode_to_vec())?;
    }
    tonic_prost_build::configure()
        .build_server(builtin)
        .build_client(true)
        .compile_fds(descriptors)?;
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
    // The test-only protos are generated beside the others; only the tests include them.
    if Path::new("tests/proto/inventory.proto").exists() {
        compile(&["inventory.proto"], &["tests/proto"], false)?;
    }
    if Path::new("tests/proto/wkt.proto").exists() {
        let set = protox::compile(["wkt.proto"], ["tests/proto"])?;
        let out = PathBuf::from(std::env::var("OUT_DIR")?);
        std::fs::write(out.join("wkt.bin"), set.encode_to_vec())?;
        compile(&["wkt.proto"], &["tests/proto"], false)?;
    }
    Ok(())
}
