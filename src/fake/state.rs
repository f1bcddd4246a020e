//! What a fake server and its connections share: options, stubs, journal, connections.

use std::sync::Arc;

use super::builder::Options;
use super::faults::FailFirstCounts;
use super::journal::Journal;
use super::registry::Registry;
use super::transport::Connections;

/// One server's shared state; every connection and call holds an `Arc` of it.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) options: Options,
    pub(crate) stubs: Registry,
    pub(crate) journal: Arc<Journal>,
    pub(crate) connections: Connections,
    pub(crate) fail_counts: FailFirstCounts,
}

impl State {
    pub(crate) fn new(options: Options) -> Self {
        let journal = Arc::new(Journal::new(options.journal));
        Self {
            stubs: Registry::new(Arc::clone(&journal)),
            journal,
            options,
            connections: Connections::default(),
            fail_counts: FailFirstCounts::default(),
        }
    }
}
