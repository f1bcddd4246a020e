//! Stubs: a matcher list, a reply, and an expectation of how often it is used.

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use super::matchers::{BoxedMatch, Match};
use super::reply::Reply;
use super::request::CallRequest;
use super::server::FakeServer;
use super::state::State;
use super::ReceivedCall;

/// The default priority: lower numbers win.
const DEFAULT_PRIORITY: u8 = 5;

/// How many calls a stub expects: exactly, at least, at most, or a range.
///
/// ```
/// use grpc_chaos::fake::Times;
/// assert!(Times::from(2).contains(2));
/// assert!(Times::from(1..).contains(7));
/// assert!(!Times::from(..=3).contains(4));
/// assert_eq!(Times::from(2..4).to_string(), "between 2 and 3");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Times {
    min: u64,
    max: Option<u64>,
}

impl Times {
    /// Any number of calls, zero included: the default, which never fails.
    ///
    /// ```
    /// assert!(grpc_chaos::fake::Times::ANY.contains(0));
    /// ```
    pub const ANY: Times = Times { min: 0, max: None };

    /// Whether `n` calls meet the expectation.
    ///
    /// ```
    /// assert!(grpc_chaos::fake::Times::from(3).contains(3));
    /// ```
    pub fn contains(&self, n: u64) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }

    fn from_bounds(range: impl RangeBounds<u64>) -> Self {
        let min = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let max = match range.end_bound() {
            Bound::Included(&n) => Some(n),
            Bound::Excluded(&n) => Some(n.saturating_sub(1)),
            Bound::Unbounded => None,
        };
        Self { min, max }
    }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (min, Some(max)) if min == max => write!(f, "exactly {min}"),
            (0, None) => write!(f, "any number"),
            (min, None) => write!(f, "at least {min}"),
            (0, Some(max)) => write!(f, "at most {max}"),
            (min, Some(max)) => write!(f, "between {min} and {max}"),
        }
    }
}

impl From<u64> for Times {
    fn from(n: u64) -> Self {
        Self {
            min: n,
            max: Some(n),
        }
    }
}

macro_rules! times_from_range {
    ($($range:ty),*) => {$(
        impl From<$range> for Times {
            fn from(range: $range) -> Self {
                Self::from_bounds(range)
            }
        }
    )*};
}
times_from_range!(
    std::ops::Range<u64>,
    std::ops::RangeFrom<u64>,
    std::ops::RangeInclusive<u64>,
    std::ops::RangeTo<u64>,
    std::ops::RangeToInclusive<u64>,
    std::ops::RangeFull
);

/// A stub under construction: matchers so far, waiting for its reply.
///
/// ```
/// use grpc_chaos::fake::{metadata, method, Reply, Stub};
/// let stub = Stub::given(method("/pb.Greeter/SayHello"))
///     .and(metadata("x-tenant", "blue"))
///     .respond_with(Reply::empty());
/// ```
#[derive(Debug)]
#[must_use = "a stub does nothing until it is given a reply and mounted"]
pub struct StubBuilder {
    matchers: Vec<BoxedMatch>,
}

impl StubBuilder {
    /// Adds a matcher: every matcher must hold for the stub to answer.
    ///
    /// ```
    /// use grpc_chaos::fake::{deadline_present, method, Stub};
    /// let b = Stub::given(method("/pb.Greeter/SayHello")).and(deadline_present());
    /// ```
    pub fn and(mut self, matcher: impl Match) -> Self {
        self.matchers.push(BoxedMatch(Box::new(matcher)));
        self
    }

    /// Finishes the stub with the reply it gives.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, Reply, Stub};
    /// let stub = Stub::given(any()).respond_with(Reply::hang());
    /// ```
    pub fn respond_with(self, reply: Reply) -> Stub {
        Stub {
            matchers: self.matchers,
            reply,
            expectation: Times::ANY,
            up_to: None,
            priority: DEFAULT_PRIORITY,
            name: None,
        }
    }
}

/// A programmed answer of the fake server: matchers, a reply, and expectations.
///
/// ```
/// use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
/// use tonic::Code;
///
/// let server = FakeServer::in_memory();
/// Stub::given(method("/pb.Greeter/SayHello"))
///     .respond_with(Reply::error(Code::Unavailable, "maintenance"))
///     .up_to_n_times(2)
///     .expect(1..)
///     .named("maintenance window")
///     .mount(&server);
/// # server.reset();
/// ```
#[derive(Debug)]
#[must_use = "a stub does nothing until it is mounted"]
pub struct Stub {
    matchers: Vec<BoxedMatch>,
    reply: Reply,
    expectation: Times,
    up_to: Option<u64>,
    priority: u8,
    name: Option<String>,
}

impl Stub {
    /// Starts a stub with its first matcher.
    ///
    /// ```
    /// use grpc_chaos::fake::{method, Stub};
    /// let builder = Stub::given(method("/pb.Greeter/SayHello"));
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn given(matcher: impl Match) -> StubBuilder {
        StubBuilder {
            matchers: vec![BoxedMatch(Box::new(matcher))],
        }
    }

    /// Expects this many matching calls, checked when the server (or the scoped guard)
    /// is dropped, or by [`FakeServer::verify`].
    ///
    /// ```
    /// use grpc_chaos::fake::{any, Reply, Stub};
    /// let stub = Stub::given(any()).respond_with(Reply::empty()).expect(2..=3);
    /// ```
    pub fn expect(mut self, times: impl Into<Times>) -> Self {
        self.expectation = times.into();
        self
    }

    /// Answers at most `n` calls; later calls fall through to other stubs.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, Reply, Stub};
    /// let stub = Stub::given(any()).respond_with(Reply::hang()).up_to_n_times(1);
    /// ```
    pub fn up_to_n_times(mut self, n: u64) -> Self {
        self.up_to = Some(n);
        self
    }

    /// Among matching stubs the lowest priority number answers (default 5); on a tie, the
    /// stub mounted first.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, Reply, Stub};
    /// let fallback = Stub::given(any()).respond_with(Reply::empty()).with_priority(10);
    /// ```
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Names the stub in failure messages and in the journal.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, Reply, Stub};
    /// let stub = Stub::given(any()).respond_with(Reply::empty()).named("catch-all");
    /// ```
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds one more matcher to a finished stub: every matcher must hold for it to
    /// answer. (This is how an admin API scopes a stub it mounts to one session.)
    ///
    /// ```
    /// use grpc_chaos::fake::{any, metadata, Reply, Stub};
    /// let stub = Stub::given(any()).respond_with(Reply::empty()).and(metadata("x-chaos-session", "a"));
    /// ```
    pub fn and(mut self, matcher: impl Match) -> Self {
        self.matchers.push(BoxedMatch(Box::new(matcher)));
        self
    }

    /// Mounts the stub for the life of the server.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// let server = FakeServer::in_memory();
    /// Stub::given(any()).respond_with(Reply::empty()).mount(&server);
    /// ```
    pub fn mount(self, server: &FakeServer) {
        server.state().stubs.mount(self, false);
    }

    /// Mounts the stub until the returned guard is dropped; the guard then checks this
    /// stub's expectation and unmounts it.
    ///
    /// ```
    /// use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// let server = FakeServer::in_memory();
    /// {
    ///     let _guard = Stub::given(any()).respond_with(Reply::empty()).mount_as_scoped(&server);
    ///     // calls here are answered by the stub
    /// }
    /// // unmounted here
    /// ```
    pub fn mount_as_scoped(self, server: &FakeServer) -> StubGuard {
        let id = server.state().stubs.mount(self, true);
        StubGuard {
            state: Arc::clone(server.state()),
            id,
            verify: true,
        }
    }
}

/// Keeps a stub mounted; on drop it verifies the stub's expectation and unmounts it.
///
/// ```
/// use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
/// let server = FakeServer::in_memory();
/// let guard = Stub::given(any()).respond_with(Reply::empty()).mount_as_scoped(&server);
/// assert!(guard.received_calls().is_empty());
/// ```
#[must_use = "the stub is unmounted as soon as the guard is dropped"]
#[derive(Debug)]
pub struct StubGuard {
    state: Arc<State>,
    id: u64,
    /// Whether dropping the guard checks the expectation (`unmount` says no).
    verify: bool,
}

impl StubGuard {
    /// The calls this stub answered, in arrival order: those the journal still keeps.
    /// A call the journal has let go (its limits, or
    /// [`FakeServer::clear_received_calls`](super::FakeServer::clear_received_calls))
    /// is no longer listed, though [`call_count`](Self::call_count) still counts it.
    ///
    /// ```
    /// # use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// # let server = FakeServer::in_memory();
    /// let guard = Stub::given(any()).respond_with(Reply::empty()).mount_as_scoped(&server);
    /// assert!(guard.received_calls().is_empty());
    /// ```
    pub fn received_calls(&self) -> Vec<ReceivedCall> {
        self.state.stubs.calls_of(self.id)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// How many calls this stub has answered, whether or not the journal still keeps them.
    ///
    /// ```
    /// # use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// # let server = FakeServer::in_memory();
    /// let guard = Stub::given(any()).respond_with(Reply::empty()).mount_as_scoped(&server);
    /// assert_eq!(guard.call_count(), 0);
    /// ```
    pub fn call_count(&self) -> usize {
        self.state.stubs.call_count(self.id)
    }

    /// How failure messages and the journal name this stub: its name, or its matchers.
    ///
    /// ```
    /// # use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// # let server = FakeServer::in_memory();
    /// let guard = Stub::given(any()).respond_with(Reply::empty()).named("x").mount_as_scoped(&server);
    /// assert_eq!(guard.label(), "x");
    /// ```
    pub fn label(&self) -> String {
        self.state.stubs.label_of(self.id).unwrap_or_default()
    }

    /// Checks this stub's expectation now, as dropping the guard would.
    ///
    /// # Errors
    /// A [`VerificationError`] when it is unmet, with the calls received.
    ///
    /// ```
    /// # use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// # let server = FakeServer::in_memory();
    /// let guard = Stub::given(any()).respond_with(Reply::empty()).expect(1).mount_as_scoped(&server);
    /// assert!(guard.try_verify().is_err());
    /// guard.unmount();
    /// ```
    pub fn try_verify(&self) -> Result<(), VerificationError> {
        self.state.stubs.verify_one(self.id)
    }

    /// Unmounts the stub without checking its expectation.
    ///
    /// ```
    /// # use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
    /// # let server = FakeServer::in_memory();
    /// let guard = Stub::given(any()).respond_with(Reply::empty()).expect(1).mount_as_scoped(&server);
    /// guard.unmount(); // no panic, though no call came
    /// ```
    pub fn unmount(mut self) {
        self.verify = false;
    }
}

impl Drop for StubGuard {
    fn drop(&mut self) {
        if !self.verify {
            self.state.stubs.unmount(self.id);
            return;
        }
        let outcome = self.state.stubs.unmount_and_verify(self.id);
        if let Err(e) = outcome
            && !std::thread::panicking()
        {
            panic!("{e}");
        }
    }
}

/// A stub as the server holds it.
#[derive(Debug)]
pub(crate) struct Mounted {
    pub(crate) id: u64,
    stub: Stub,
    /// How journal entries and messages name this stub, worked out once at mount time.
    label: String,
    pub(crate) scoped: bool,
    /// How many calls this stub answered. A count, not a list: the journal says which
    /// calls they were (for as long as it keeps them), so a server under load keeps no
    /// growing list per stub.
    pub(crate) answered: usize,
}

impl Mounted {
    pub(crate) fn new(id: u64, stub: Stub, scoped: bool) -> Self {
        let label = match &stub.name {
            Some(name) => name.clone(),
            None => format!("#{id} [{}]", describe_matchers(&stub)),
        };
        Self {
            id,
            stub,
            label,
            scoped,
            answered: 0,
        }
    }

    pub(crate) fn label(&self) -> String {
        self.label.clone()
    }

    pub(crate) fn priority(&self) -> u8 {
        self.stub.priority
    }

    /// The one method path this stub can answer, when one of its matchers says so.
    pub(crate) fn only_method(&self) -> Option<&str> {
        self.stub.matchers.iter().find_map(|m| m.0.only_method())
    }

    pub(crate) fn needs_message(&self) -> bool {
        self.stub.reply.needs_message() || self.stub.matchers.iter().any(|m| m.0.needs_message())
    }

    fn exhausted(&self) -> bool {
        self.stub.up_to.is_some_and(|n| self.answered as u64 >= n)
    }

    /// How many matchers hold, and the descriptions of those that fail.
    pub(crate) fn score(&self, request: &CallRequest) -> (usize, Vec<String>) {
        let failed: Vec<String> = self
            .stub
            .matchers
            .iter()
            .filter(|m| !m.0.matches(request))
            .map(|m| match m.0.received(request) {
                Some(received) => format!("{} ({received})", m.0.describe()),
                None => m.0.describe(),
            })
            .collect();
        (self.stub.matchers.len() - failed.len(), failed)
    }

    /// Whether every matcher that does not need the first message holds.
    pub(crate) fn could_match_without_message(&self, request: &CallRequest) -> bool {
        !self.exhausted()
            && self
                .stub
                .matchers
                .iter()
                .filter(|m| !m.0.needs_message())
                .all(|m| m.0.matches(request))
    }

    pub(crate) fn matches(&self, request: &CallRequest) -> bool {
        !self.exhausted() && self.stub.matchers.iter().all(|m| m.0.matches(request))
    }

    /// Counts the call and hands out the reply to resolve (outside the stubs' lock).
    pub(crate) fn answer(&mut self) -> Reply {
        self.answered += 1;
        self.stub.reply.clone()
    }

    /// The unmet expectation, as one line, if any.
    pub(crate) fn unmet(&self) -> Option<String> {
        let received = self.answered as u64;
        (!self.stub.expectation.contains(received)).then(|| {
            format!(
                "stub {:?} ({}; replies {}) expected {} call(s), received {received}",
                self.label(),
                describe_matchers(&self.stub),
                self.stub.reply.describe(),
                self.stub.expectation,
            )
        })
    }
}

fn describe_matchers(stub: &Stub) -> String {
    let matchers: Vec<String> = stub.matchers.iter().map(|m| m.0.describe()).collect();
    matchers.join(", ")
}

/// Unmet expectations, with the calls the server received.
///
/// ```
/// use grpc_chaos::fake::{any, FakeServer, Reply, Stub};
/// let server = FakeServer::in_memory();
/// Stub::given(any()).respond_with(Reply::empty()).expect(1).named("never called").mount(&server);
/// let err = server.try_verify().unwrap_err();
/// assert_eq!(err.unmet().len(), 1);
/// assert!(err.to_string().contains("stub \"never called\""));
/// server.reset(); // so that dropping the server does not panic
/// ```
#[derive(Clone, Debug)]
pub struct VerificationError {
    unmet: Vec<String>,
    calls: Vec<String>,
}

impl VerificationError {
    pub(crate) fn new(unmet: Vec<String>, calls: Vec<String>) -> Self {
        Self { unmet, calls }
    }

    /// One line per unmet expectation.
    ///
    /// ```
    /// # fn f(e: grpc_chaos::fake::VerificationError) {
    /// for line in e.unmet() { eprintln!("{line}"); }
    /// # }
    /// ```
    pub fn unmet(&self) -> &[String] {
        &self.unmet
    }
}

impl fmt::Display for VerificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "grpc-chaos: {} unmet expectation(s):", self.unmet.len())?;
        for line in &self.unmet {
            writeln!(f, "- {line}")?;
        }
        writeln!(f, "received calls ({}):", self.calls.len())?;
        for line in &self.calls {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerificationError {}
