//! Normalising and validating a typical 10-entry metadata map, against building the same
//! map with tonic's own parsing, in the same run.

mod common;

use std::hint::black_box;

use criterion::Criterion;
use grpc_chaos::bench::pair;
use grpc_chaos::metadata::Metadata;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

const GROUP: &str = "metadata_10_entries";

/// A typical request's custom metadata: ids, auth, tracing, a binary blob.
const ENTRIES: [(&str, &str); 10] = [
    ("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc"),
    ("x-request-id", "7f6c1e0a-3b9d-4c61-9a8e-5b2d7c4e1f00"),
    ("x-tenant", "blue"),
    ("trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    ("x-user-id", "42"),
    ("x-client-version", "1.9.3"),
    ("x-region", "eu-west-1"),
    ("x-feature-flags", "a,b,c"),
    ("x-retry", "0"),
    ("x-priority", "high"),
];

fn with_tonic() -> MetadataMap {
    let mut map = MetadataMap::new();
    for (k, v) in ENTRIES {
        if let (Ok(k), Ok(v)) = (
            MetadataKey::from_bytes(k.as_bytes()),
            MetadataValue::try_from(v),
        ) {
            map.append(k, v);
        }
    }
    map
}

fn with_grpc_chaos() -> MetadataMap {
    let md = Metadata::pairs(ENTRIES).unwrap();
    md.check_size(grpc_chaos::metadata::DEFAULT_SIZE_LIMIT)
        .unwrap();
    md.to_metadata_map().unwrap()
}

/// Normalise, validate and size the map, into a `Metadata`: the same work as tonic's
/// parse, into this crate's map.
fn normalized() -> Metadata {
    let md = Metadata::pairs(ENTRIES).unwrap();
    md.check_size(grpc_chaos::metadata::DEFAULT_SIZE_LIMIT)
        .unwrap();
    md
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group(GROUP);
    group.bench_function("tonic_parsing", |b| b.iter(|| black_box(with_tonic())));
    group.bench_function("normalize_validate_size", |b| {
        b.iter(|| black_box(normalized()))
    });
    group.bench_function("normalize_validate_size_convert", |b| {
        b.iter(|| black_box(with_grpc_chaos()))
    });
    group.finish();
    c.final_summary();
    common::print_ratios(
        GROUP,
        "tonic_parsing",
        &["normalize_validate_size", "normalize_validate_size_convert"],
    );
    // Paired: 31 alternating rounds of 20,000 maps each.
    let alone = pair(
        31,
        20_000,
        1,
        || drop(black_box(with_tonic())),
        || drop(black_box(normalized())),
    );
    println!("paired normalize_validate_size vs tonic_parsing: {alone}");
    let converted = pair(
        31,
        20_000,
        1,
        || drop(black_box(with_tonic())),
        || drop(black_box(with_grpc_chaos())),
    );
    println!("paired normalize_validate_size_convert vs tonic_parsing: {converted}");
}
