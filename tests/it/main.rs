//! The harness's integration tests: one binary, one module per area. The binary's own
//! tests (`grpc-chaos serve`) are in `cli/tests`.

mod inventory;
mod support;

mod bench_kit;
mod call_endings;
mod cancel_signal;
mod connection_lost;

mod deadline_chains;
mod deadline_codec;
mod deadline_differential;
mod deadline_layers;
mod fake_connections;
mod fake_custom_service;
mod fake_expectations;
mod fake_handlers;
mod fake_streaming;
mod fake_tcp;
mod fake_unary;
mod intercept_auth;
mod intercept_logging;
mod journal_limits;
mod load;
mod metadata_props;
mod proxy_bad_upstream;
mod proxy_faults;
mod proxy_headers;
mod proxy_journal;
mod proxy_record;
mod proxy_reliability;
mod proxy_support;
mod retry_fn;
mod retry_layer;
mod runner_fixture;
mod scenario_files;
mod scenario_json_mapping;
mod test_runner;
mod trace_ids;
