//! Compiles, with protox (no system `protoc`):
//! - the test-only `catalog.v1` proto (`tests/proto/`): client code for the tests, and
//!   its encoded descriptor set (`catalog.bin`, as `protoc --include_imports -o` writes
//!   it) for `serve --descriptor-set`.

use std::path::PathBuf;

use protox::prost_reflect::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=tests/proto");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let catalog = protox::compile(["catalog/v1/catalog.proto"], ["tests/proto"])?;
    std::fs::write(out.join("catalog.bin"), catalog.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(catalog)?;
    Ok(())
}
