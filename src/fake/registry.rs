//! The mounted stubs: which one answers a call, what each has been called with, and
//! which expectations are unmet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tonic::Status;

use super::journal::{Journal, ReceivedCall};
use super::request::CallRequest;
use super::script::Script;
use super::stub::{Mounted, Stub, VerificationError};

/// How many stubs an UNIMPLEMENTED message lists as the closest.
const CLOSEST_STUBS: usize = 3;

/// The stubs of one server, in mount order, and the journal their counts refer to.
#[derive(Debug)]
pub(crate) struct Registry {
    stubs: Mutex<Table>,
    next_stub: AtomicU64,
    journal: Arc<Journal>,
}

/// The stubs in mount order, indexed by the one method path each accepts (the
/// [`Match::only_method`](super::matchers::Match::only_method) of one of its
/// matchers); the others, such as service-level and regex stubs, are in a fallback list
/// that every call also tries.
#[derive(Debug, Default)]
struct Table {
    all: Vec<Mounted>,
    by_method: HashMap<String, Vec<usize>>,
    fallback: Vec<usize>,
}

impl Table {
    /// Rebuilds the index after the list changed (mounting is rare; calls are not).
    fn reindex(&mut self) {
        self.by_method.clear();
        self.fallback.clear();
        for (i, stub) in self.all.iter().enumerate() {
            match stub.only_method() {
                Some(path) => self.by_method.entry(path.to_string()).or_default().push(i),
                None => self.fallback.push(i),
            }
        }
    }

    /// The positions of the stubs that may match a call to `path`.
    fn candidates<'a>(&'a self, path: &str) -> impl Iterator<Item = (usize, &'a Mounted)> {
        let exact = self.by_method.get(path).map(Vec::as_slice).unwrap_or(&[]);
        exact
            .iter()
            .chain(&self.fallback)
            .map(|&i| (i, &self.all[i]))
    }

    /// The stub that answers first among those `fits` accepts: the lowest priority
    /// number, then the first mounted.
    fn best(&self, path: &str, fits: impl Fn(&Mounted) -> bool) -> Option<usize> {
        self.candidates(path)
            .filter(|(_, s)| fits(s))
            .min_by_key(|(i, s)| (s.priority(), *i))
            .map(|(i, _)| i)
    }
}

impl Registry {
    pub(crate) fn new(journal: Arc<Journal>) -> Self {
        Self {
            stubs: Mutex::new(Table::default()),
            next_stub: AtomicU64::new(0),
            journal,
        }
    }

    fn stubs(&self) -> MutexGuard<'_, Table> {
        self.stubs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mount(&self, stub: Stub, scoped: bool) -> u64 {
        let id = self.next_stub.fetch_add(1, Ordering::SeqCst);
        let mut table = self.stubs();
        table.all.push(Mounted::new(id, stub, scoped));
        table.reindex();
        id
    }

    /// Unmounts every stub, without verifying.
    pub(crate) fn clear(&self) {
        let mut table = self.stubs();
        table.all.clear();
        table.reindex();
    }

    /// Whether the call must be read up to its first message before matching: only when
    /// a stub that could answer it needs the message. Reading otherwise would deadlock a
    /// bidi client that waits for the response headers before it sends.
    pub(crate) fn needs_message_for(&self, request: &CallRequest) -> bool {
        let table = self.stubs();
        // The stub that would answer if every message matcher held.
        let best = table.best(&request.method, |s| s.could_match_without_message(request));
        best.is_some_and(|i| table.all[i].needs_message())
    }

    /// Picks the stub for a call and resolves its reply; UNIMPLEMENTED when none matches.
    /// Returns the answering stub's id and label (`None` when none matched) and the
    /// script to play.
    pub(crate) fn answer(&self, request: &CallRequest) -> (Option<(u64, String)>, Script) {
        let mut table = self.stubs();
        if let Some(i) = table.best(&request.method, |s| s.matches(request)) {
            let stub = &mut table.all[i];
            let (answered_by, reply) = ((stub.id, stub.label()), stub.answer());
            // The reply may run user code (a responder): never under the stubs' lock.
            drop(table);
            return (Some(answered_by), reply.resolve(request));
        }
        let message = unmatched_message(&table.all, request);
        (None, Script::from_status(Status::unimplemented(message)))
    }

    /// The calls stub `stub_id` answered that the journal still keeps, in order.
    pub(crate) fn calls_of(&self, stub_id: u64) -> Vec<ReceivedCall> {
        self.journal
            .snapshot_where(|call| call.stub_id == Some(stub_id))
    }

    pub(crate) fn call_count(&self, stub_id: u64) -> usize {
        let table = self.stubs();
        table
            .all
            .iter()
            .find(|s| s.id == stub_id)
            .map_or(0, |s| s.answered)
    }

    pub(crate) fn label_of(&self, stub_id: u64) -> Option<String> {
        let table = self.stubs();
        table
            .all
            .iter()
            .find(|s| s.id == stub_id)
            .map(Mounted::label)
    }

    pub(crate) fn verify_one(&self, stub_id: u64) -> Result<(), VerificationError> {
        self.verify_where(|s| s.id == stub_id)
    }

    pub(crate) fn verify_ids(&self, ids: &[u64]) -> Result<(), VerificationError> {
        self.verify_where(|s| ids.contains(&s.id))
    }

    pub(crate) fn unmount(&self, stub_id: u64) {
        let mut table = self.stubs();
        table.all.retain(|s| s.id != stub_id);
        table.reindex();
    }

    fn verify_where(&self, pick: impl Fn(&Mounted) -> bool) -> Result<(), VerificationError> {
        let unmet: Vec<String> = self
            .stubs()
            .all
            .iter()
            .filter(|s| pick(s))
            .filter_map(Mounted::unmet)
            .collect();
        if unmet.is_empty() {
            return Ok(());
        }
        let calls = self.journal.summaries();
        Err(VerificationError::new(unmet, calls))
    }

    pub(crate) fn verify(&self) -> Result<(), VerificationError> {
        self.verify_where(|_| true)
    }

    pub(crate) fn unmount_and_verify(&self, stub_id: u64) -> Result<(), VerificationError> {
        let verdict = self.verify_where(|s| s.id == stub_id && s.scoped);
        self.unmount(stub_id);
        verdict
    }
}

/// The UNIMPLEMENTED message: the method, then the closest stubs and what failed.
fn unmatched_message(stubs: &[Mounted], request: &CallRequest) -> String {
    let mut message = format!("grpc-chaos: no stub matched {}", request.method);
    if stubs.is_empty() {
        message.push_str("; no stubs are mounted");
        return message;
    }
    let mut scored: Vec<_> = stubs.iter().map(|s| (s, s.score(request))).collect();
    scored.sort_by_key(|(_, (held, _))| std::cmp::Reverse(*held));
    let closest: Vec<String> = scored
        .iter()
        .take(CLOSEST_STUBS)
        .map(|(stub, (held, failed))| {
            let why = if failed.is_empty() {
                "all matchers hold but it is used up".to_string()
            } else {
                format!("failing: {}", failed.join(", "))
            };
            format!(
                "{:?} ({held} of {} matchers hold; {why})",
                stub.label(),
                held + failed.len()
            )
        })
        .collect();
    message.push_str("; closest stubs: ");
    message.push_str(&closest.join("; "));
    message
}
