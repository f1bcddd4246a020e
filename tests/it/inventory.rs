//! The test-only `tests/proto/inventory.proto`: a service grpc-chaos does not define.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("shop.inventory.v1");
