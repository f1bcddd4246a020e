//! [`Schema`]: the protobuf types a fake server knows at run time, for scenario tables, the
//! call shapes in its logs, and server reflection.
//!
//! It starts with the built-in protos and takes more as encoded `FileDescriptorSet`s: what
//! `protoc --include_imports -o FILE` writes, or what protox compiles (as `grpc-chaos serve
//! --proto` does). Messages are [`prost_reflect`] dynamic messages, so no code is
//! generated for the user's own services.
//!
//! ```
//! use grpc_chaos::schema::Schema;
//! let schema = Schema::builtin();
//! let method = schema.method("/pb.Greeter/SayHello").unwrap();
//! assert_eq!(method.input().full_name(), "pb.HelloRequest");
//! assert_eq!(
//!     schema.closest_method("/pb.Greeter/SayHelo").as_deref(),
//!     Some("/pb.Greeter/SayHello")
//! );
//! ```

use std::fmt;
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};

use crate::method::MethodShape;

/// The built-in protos (`proto/`), encoded as a `FileDescriptorSet` by `build.rs`.
pub const BUILTIN_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin.bin"));

/// The protobuf types a server knows: the built-in protos and any loaded beside them.
/// Cheap to clone (the pool is shared).
///
/// ```
/// let schema = grpc_chaos::schema::Schema::builtin();
/// assert!(schema.services().any(|s| s == "grpc.testing.TestService"));
/// ```
#[derive(Clone, Debug)]
pub struct Schema {
    pool: DescriptorPool,
}

/// A descriptor set that could not be added: what was wrong with it.
///
/// ```
/// let mut schema = grpc_chaos::schema::Schema::builtin();
/// let err = schema.add_descriptor_set(&[0xff, 0x01]).unwrap_err();
/// assert!(err.to_string().starts_with("not a FileDescriptorSet"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SchemaError {}

impl Schema {
    /// The built-in protos: the Greeter and the interop `TestService`.
    ///
    /// ```
    /// let schema = grpc_chaos::schema::Schema::builtin();
    /// assert!(schema.message("grpc.testing.SimpleRequest").is_some());
    /// ```
    pub fn builtin() -> Self {
        static BUILTIN: OnceLock<DescriptorPool> = OnceLock::new();
        let pool = BUILTIN.get_or_init(|| {
            // build.rs wrote these bytes from descriptors protox had just checked.
            DescriptorPool::decode(BUILTIN_DESCRIPTOR_SET)
                .expect("grpc-chaos: the built-in descriptor set decodes")
        });
        Self { pool: pool.clone() }
    }

    /// Adds the files of an encoded `FileDescriptorSet`; files already known (the same
    /// name and content, such as `google/protobuf/timestamp.proto`) are kept once.
    ///
    /// # Errors
    /// A [`SchemaError`] when the bytes are not a descriptor set, or when its files do
    /// not check out against each other and those already known (a missing import, a
    /// name defined twice).
    ///
    /// ```
    /// let mut schema = grpc_chaos::schema::Schema::builtin();
    /// // An empty set is a valid set.
    /// schema.add_descriptor_set(&[]).unwrap();
    /// ```
    pub fn add_descriptor_set(&mut self, bytes: &[u8]) -> Result<(), SchemaError> {
        let set: prost_reflect::prost_types::FileDescriptorSet = prost::Message::decode(bytes)
            .map_err(|e| SchemaError {
                message: format!("not a FileDescriptorSet: {e}"),
            })?;
        let mut pool = self.pool.clone();
        let known: Vec<String> = pool.files().map(|f| f.name().to_string()).collect();
        let files = set
            .file
            .into_iter()
            .filter(|f| !known.contains(&f.name().to_string()));
        pool.add_file_descriptor_protos(files)
            .map_err(|e| SchemaError {
                message: format!("{e:?}"),
            })?;
        self.pool = pool;
        Ok(())
    }

    /// The method at `/package.Service/Method`, when a known service defines it.
    ///
    /// ```
    /// let schema = grpc_chaos::schema::Schema::builtin();
    /// assert!(schema.method("/pb.Greeter/SayHello").unwrap().is_server_streaming() == false);
    /// assert!(schema.method("/pb.Greeter/Nope").is_none());
    /// ```
    pub fn method(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)
    }

    /// Whether a known service is named `service` (`package.Service`).
    ///
    /// ```
    /// assert!(grpc_chaos::schema::Schema::builtin().has_service("pb.Greeter"));
    /// ```
    pub fn has_service(&self, service: &str) -> bool {
        self.pool.get_service_by_name(service).is_some()
    }

    /// The message type of this full name (`package.Message`).
    ///
    /// ```
    /// assert!(grpc_chaos::schema::Schema::builtin().message("pb.HelloReply").is_some());
    /// ```
    pub fn message(&self, full_name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(full_name)
    }

    /// Every method path of every known service, in declaration order.
    ///
    /// ```
    /// let schema = grpc_chaos::schema::Schema::builtin();
    /// assert!(schema.method_paths().any(|p| p == "/grpc.testing.TestService/EmptyCall"));
    /// ```
    pub fn method_paths(&self) -> impl Iterator<Item = String> + '_ {
        self.pool.services().flat_map(|s| {
            s.methods()
                .map(|m| format!("/{}/{}", s.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
    }

    /// The full name of every known service.
    ///
    /// ```
    /// let services: Vec<String> = grpc_chaos::schema::Schema::builtin().services().collect();
    /// assert!(services.contains(&"pb.Greeter".to_string()), "{services:?}");
    /// ```
    pub fn services(&self) -> impl Iterator<Item = String> + '_ {
        self.pool.services().map(|s| s.full_name().to_string())
    }

    /// The known method path closest to `path` (by edit distance), for "did you mean".
    ///
    /// ```
    /// let schema = grpc_chaos::schema::Schema::builtin();
    /// assert_eq!(schema.closest_method("/pb.greeter/sayhello").as_deref(), Some("/pb.Greeter/SayHello"));
    /// ```
    pub fn closest_method(&self, path: &str) -> Option<String> {
        self.method_paths()
            .min_by_key(|known| edit_distance(&known.to_lowercase(), &path.to_lowercase()))
    }

    /// The call shape of every known method, for the fake's logs
    /// ([`FakeServerBuilder::shapes`](crate::fake::FakeServerBuilder::shapes)).
    ///
    /// ```
    /// assert!(grpc_chaos::schema::Schema::builtin().shapes().count() >= 10);
    /// ```
    pub fn shapes(&self) -> impl Iterator<Item = MethodShape> + '_ {
        self.pool.services().flat_map(|s| {
            s.methods()
                .map(|m| {
                    MethodShape::new(format!("/{}/{}", s.full_name(), m.name()))
                        .client_streaming(m.is_client_streaming())
                        .server_streaming(m.is_server_streaming())
                })
                .collect::<Vec<_>>()
        })
    }

    /// Every known file, encoded as one `FileDescriptorSet` (for server reflection).
    ///
    /// ```
    /// let bytes = grpc_chaos::schema::Schema::builtin().encode_descriptor_set();
    /// let mut again = grpc_chaos::schema::Schema::builtin();
    /// again.add_descriptor_set(&bytes).unwrap();
    /// ```
    pub fn encode_descriptor_set(&self) -> Vec<u8> {
        self.pool.encode_to_vec()
    }

    /// The descriptor pool itself, for [`prost_reflect`] dynamic messages.
    ///
    /// ```
    /// let schema = grpc_chaos::schema::Schema::builtin();
    /// assert!(schema.pool().get_message_by_name("pb.HelloRequest").is_some());
    /// ```
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self::builtin()
    }
}

/// Levenshtein distance in characters: how many edits turn `a` into `b`.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("name", "name"), 0);
        assert_eq!(edit_distance("nmae", "name"), 2);
        assert_eq!(edit_distance("nam", "name"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
