//! The user's protos, loaded at start-up: `.proto` files compiled with protox, and
//! encoded `FileDescriptorSet`s, added to the built-in [`Schema`].

use std::path::{Path, PathBuf};

use grpc_chaos::schema::Schema;

/// Why the protos could not be loaded: a message that names the file (and, for a
/// `.proto` that does not compile, protox's own `file:line:col`).
///
/// ```
/// use grpc_chaos_cli::protos::{load, ProtoError};
/// let err = load(&["no/such.proto".into()], &[], &[]).unwrap_err();
/// assert!(err.to_string().contains("no/such.proto"), "{err}");
/// ```
#[derive(Debug)]
pub struct ProtoError(String);

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtoError {}

/// The built-in protos plus every file of `protos` (compiled with the include roots
/// `proto_paths`, or each file's own folder when none is given) and of the encoded
/// descriptor sets `descriptor_sets`.
///
/// # Errors
/// A [`ProtoError`] naming the file, and where in it, that could not be used.
///
/// ```
/// let schema = grpc_chaos_cli::protos::load(&[], &[], &[]).unwrap();
/// assert!(schema.has_service("pb.Greeter"));
/// ```
pub fn load(
    protos: &[PathBuf],
    proto_paths: &[PathBuf],
    descriptor_sets: &[PathBuf],
) -> Result<Schema, ProtoError> {
    let mut schema = Schema::builtin();
    if !protos.is_empty() {
        let bytes = compile(protos, proto_paths)?;
        schema
            .add_descriptor_set(&bytes)
            .map_err(|e| ProtoError(e.to_string()))?;
    }
    for path in descriptor_sets {
        let bytes = std::fs::read(path)
            .map_err(|e| ProtoError(format!("{}: cannot read: {e}", path.display())))?;
        schema
            .add_descriptor_set(&bytes)
            .map_err(|e| ProtoError(format!("{}: {e}", path.display())))?;
    }
    Ok(schema)
}

/// Compiles `.proto` files with protox, imports included, into an encoded descriptor set.
fn compile(protos: &[PathBuf], proto_paths: &[PathBuf]) -> Result<Vec<u8>, ProtoError> {
    let includes: Vec<PathBuf> = if proto_paths.is_empty() {
        let mut folders: Vec<PathBuf> = protos.iter().map(|p| folder_of(p)).collect();
        folders.dedup();
        folders
    } else {
        proto_paths.to_vec()
    };
    let mut compiler = protox::Compiler::new(&includes).map_err(protox_error)?;
    compiler.include_imports(true);
    for proto in protos {
        if let Err(e) = std::fs::metadata(proto) {
            return Err(ProtoError(format!("{}: cannot read: {e}", proto.display())));
        }
        compiler.open_file(proto).map_err(protox_error)?;
    }
    Ok(compiler.encode_file_descriptor_set())
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// protox's `Debug` form is the one with `file:line:col:`.
fn protox_error(e: protox::Error) -> ProtoError {
    ProtoError(format!("{e:?}"))
}
