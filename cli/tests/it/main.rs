//! The `grpc-chaos` binary's integration tests: `serve` as a child process on
//! 127.0.0.1:0, driven by tonic clients and by a raw HTTP/2 client.

// The harness's test helpers (Greeter requests, fake clients), shared with its own tests.
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../../../tests/it/support.rs"]
mod support;

mod export;
mod proxy_bad_input;
mod proxy_cli;
mod proxy_journal;
mod raw_client;
mod served;

mod cli_serve;
mod serve_admin;
mod serve_any_proto;
mod serve_bad_input;
mod serve_connections;
mod serve_faults;
mod serve_interop;
mod serve_memory;
mod serve_reflection_health;
mod serve_scenarios;
