//! Compiles, with protox (no system `protoc`):
//! - the admin API (`../proto/grpc_chaos/admin/v1/admin.proto`): server and client code,
//!   and its encoded descriptor set (`admin.bin`) for server reflection;
//! - the test-only `catalog.v1` proto (`tests/proto/`): client code for the tests, and
//!   its encoded descriptor set (`catalog.bin`, as `protoc --include_imports -o` writes
//!   it) for `serve --descriptor-set`.

use std::path::PathBuf;

use protox::prost_reflect::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=tests/proto");
    println!("cargo:rerun-if-changed=../proto/grpc_chaos");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let admin = protox::compile(["grpc_chaos/admin/v1/admin.proto"], ["../proto"])?;
    std::fs::write(out.join("admin.bin"), admin.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(admin)?;
    let catalog = protox::compile(["catalog/v1/catalog.proto"], ["tests/proto"])?;
    std::fs::write(out.join("catalog.bin"), catalog.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(catalog)?;
    Ok(())
}
