//! The mounted stubs: which one answers a call, what each has been called with, and
//! which expectations are unmet.

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
    stubs: Mutex<Vec<Mounted>>,
    next_stub: AtomicU64,
    journal: Arc<Journal>,
}

impl Registry {
    pub(crate) fn new(journal: Arc<Journal>) -> Self {
        Self {
            stubs: Mutex::new(Vec::new()),
            next_stub: AtomicU64::new(0),
            journal,
        }
    }

    fn stubs(&self) -> MutexGuard<'_, Vec<Mounted>> {
        self.stubs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mount(&self, stub: Stub, scoped: bool) -> u64 {
        let id = self.next_stub.fetch_add(1, Ordering::SeqCst);
        self.stubs().push(Mounted::new(id, stub, scoped));
        id
    }

    /// Unmounts every stub, without verifying.
    pub(crate) fn clear(&self) {
        self.stubs().clear();
    }

    /// Whether the call must be read up to its first message before matching: only when
    /// a stub that could answer it needs the message. Reading otherwise would deadlock a
    /// bidi client that waits for the response headers before it sends.
    pub(crate) fn needs_message_for(&self, request: &CallRequest) -> bool {
        let stubs = self.stubs();
        // The stub that would answer if every message matcher held.
        let best = stubs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.could_match_without_message(request))
            .min_by_key(|(i, s)| (s.priority(), *i));
        best.is_some_and(|(_, s)| s.needs_message())
    }

    /// Picks the stub for a call and resolves its reply; UNIMPLEMENTED when none matches.
    pub(crate) fn answer(&self, call_id: usize, request: &CallRequest) -> (Option<String>, Script) {
        let mut stubs = self.stubs();
        let best = stubs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.matches(request))
            .min_by_key(|(i, s)| (s.priority(), *i))
            .map(|(i, _)| i);
        if let Some(i) = best {
            let stub = &mut stubs[i];
            let (label, reply) = (stub.label(), stub.answer(call_id));
            // The reply may run user code (a responder): never under the stubs' lock.
            drop(stubs);
            return (Some(label), reply.resolve(request));
        }
        let message = unmatched_message(&stubs, request);
        (None, Script::from_status(Status::unimplemented(message)))
    }

    pub(crate) fn calls_of(&self, stub_id: u64) -> Vec<ReceivedCall> {
        let ids = self
            .stubs()
            .iter()
            .find(|s| s.id == stub_id)
            .map(|s| s.calls.clone())
            .unwrap_or_default();
        let all = self.journal.snapshot();
        ids.into_iter()
            .filter_map(|id| all.get(id).cloned())
            .collect()
    }

    fn verify_where(&self, pick: impl Fn(&Mounted) -> bool) -> Result<(), VerificationError> {
        let unmet: Vec<String> = self
            .stubs()
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
        self.stubs().retain(|s| s.id != stub_id);
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
