//! The `tracing` subscribers the layer benches measure under.

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Accepts the harness's and the layers' events and spans up to a level, and drops them.
pub struct Sink(pub tracing::Level);

impl Subscriber for Sink {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.target().starts_with("tonic_layers")
            || metadata.target().starts_with("grpc_chaos"))
            && *metadata.level() <= self.0
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Formats this crate's events at DEBUG into `io::sink()`.
pub fn fmt_sink() -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "tonic_layers=debug,grpc_chaos=debug",
        ))
        .with_writer(std::io::sink)
        .with_ansi(false)
        .finish()
}

/// A subscriber whose level (WARN) leaves the logging layer disabled.
pub fn level_off() -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::sink)
        .finish()
}
