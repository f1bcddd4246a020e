//! Bounded waits on the journal: what a test gets when the calls it waits for never come.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::journal::ReceivedCall;

/// How long [`FakeServer::wait_for_calls`](super::FakeServer::wait_for_calls) and its
/// siblings wait on the tokio clock unless the builder says otherwise. Under paused time
/// a wait that cannot end reaches it at once.
pub const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// A wait on the journal that gave up: what it waited for, how long, and the calls
/// received by then.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
/// use grpc_chaos::fake::FakeServer;
///
/// let server = FakeServer::in_memory();
/// let timeout = server
///     .wait_for_calls_within(1, Duration::from_secs(5))
///     .await
///     .unwrap_err();
/// assert!(timeout.calls().is_empty());
/// assert!(timeout.to_string().starts_with("grpc-chaos: waited 5s for 1 call; 0 received"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WaitTimeout {
    waited_for: String,
    limit: Duration,
    test: Option<String>,
    calls: Vec<ReceivedCall>,
    /// The journal's start, which the calls' times are given from.
    origin: Instant,
}

impl WaitTimeout {
    pub(crate) fn new(
        waited_for: String,
        limit: Duration,
        calls: Vec<ReceivedCall>,
        origin: Instant,
    ) -> Self {
        // Test runners (libtest, and `#[grpc_chaos::test]`'s body thread) name the
        // thread after the test.
        let test = std::thread::current()
            .name()
            .filter(|name| *name != "main")
            .map(str::to_string);
        Self {
            waited_for,
            limit,
            test,
            calls,
            origin,
        }
    }

    /// The calls received when the wait gave up, in arrival order.
    ///
    /// ```
    /// # fn f(e: grpc_chaos::fake::WaitTimeout) {
    /// for call in e.calls() { eprintln!("{}", call.method); }
    /// # }
    /// ```
    pub fn calls(&self) -> &[ReceivedCall] {
        &self.calls
    }
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "grpc-chaos: waited {:?} for {}; {} received",
            self.limit,
            self.waited_for,
            self.calls.len()
        )?;
        if let Some(test) = &self.test {
            write!(f, " (in test {test})")?;
        }
        for call in &self.calls {
            write!(f, "\n  {}", call.summary(self.origin))?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

/// "1 call", "2 ended calls".
pub(crate) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
