//! Deadlines: the strict `grpc-timeout` codec, a [`Deadline`] a handler can read
//! ([`current`]), a server layer that enforces it on the whole call with
//! DEADLINE_EXCEEDED ([`EnforceDeadlineLayer`]), and a client layer that propagates what is left
//! of it to outbound calls ([`PropagateDeadlineLayer`]).
//!
//! gRPC sends a deadline as a relative timeout, `grpc-timeout: 1-8 ASCII digits + unit`:
//! the deadline is an instant, the timeout restarts at every hop. tonic 0.14 ignores
//! malformed values silently and accepts `+1S`; [`parse_grpc_timeout`] follows the spec
//! to the letter and says what is wrong with a bad value.
//!
//! Where the strict parser and tonic's disagree (a differential test,
//! `tests/it/deadline_differential.rs`, pins the list): tonic reads the digits with
//! `u64::from_str`, which takes a leading `+`, so it accepts `+1S` as one second and
//! `+0m` as zero, both outside the grammar. On every other value tried (valid ones,
//! signs, spaces, a ninth digit, lowercase `s`, unknown units, decimals, empty) the two
//! agree; tonic then ignores the values it cannot read, where [`EnforceDeadlineLayer`] answers
//! INTERNAL unless it is [`lenient_timeouts(true)`](EnforceDeadlineLayer::lenient_timeouts).
//!
//! ```
//! use std::time::Duration;
//! use tonic_layers::deadline::{format_grpc_timeout, parse_grpc_timeout};
//!
//! assert_eq!(parse_grpc_timeout("1500m").unwrap(), Duration::from_millis(1500));
//! assert!(parse_grpc_timeout("+1S").is_err());
//! assert_eq!(format_grpc_timeout(Duration::from_secs(1)), "1000000u");
//! ```

mod body;
mod client;
mod server;
mod timeout;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use body::deadline_exceeded;
pub use client::{PropagateDeadline, PropagateDeadlineLayer};
pub use server::{EnforceDeadline, EnforceDeadlineLayer};
pub use timeout::{
    format_grpc_timeout, parse_grpc_timeout, parse_grpc_timeout_bytes, GrpcTimeoutError,
    TimeoutUnit,
};

/// The header that carries a timeout.
pub(crate) const GRPC_TIMEOUT: &str = "grpc-timeout";

/// An absolute instant on the tokio clock by which a call must end.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
/// use tonic_layers::deadline::Deadline;
/// let d = Deadline::after(Duration::from_secs(5));
/// tokio::time::sleep(Duration::from_secs(2)).await;
/// assert_eq!(d.remaining(), Duration::from_secs(3));
/// assert_eq!(d.to_grpc_timeout(), "3000000u");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline at `instant`.
    ///
    /// ```
    /// let d = tonic_layers::deadline::Deadline::at(tokio::time::Instant::now());
    /// ```
    pub fn at(instant: Instant) -> Self {
        Self(instant)
    }

    /// The deadline `timeout` from now (saturating far in the future).
    ///
    /// ```
    /// let d = tonic_layers::deadline::Deadline::after(std::time::Duration::from_millis(100));
    /// ```
    pub fn after(timeout: Duration) -> Self {
        let now = Instant::now();
        Self(
            now.checked_add(timeout)
                .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30)),
        )
    }

    /// Reads a `grpc-timeout` value strictly and starts it now.
    ///
    /// # Errors
    /// What is wrong with the value.
    ///
    /// ```
    /// let d = tonic_layers::deadline::Deadline::from_grpc_timeout("250m").unwrap();
    /// ```
    pub fn from_grpc_timeout(value: &str) -> Result<Self, GrpcTimeoutError> {
        parse_grpc_timeout(value).map(Self::after)
    }

    /// The instant.
    ///
    /// ```
    /// # use tonic_layers::deadline::Deadline;
    /// let now = tokio::time::Instant::now();
    /// assert_eq!(Deadline::at(now).instant(), now);
    /// ```
    pub fn instant(&self) -> Instant {
        self.0
    }

    /// The time left, zero once passed.
    ///
    /// ```
    /// # use tonic_layers::deadline::Deadline;
    /// assert_eq!(Deadline::at(tokio::time::Instant::now()).remaining(), std::time::Duration::ZERO);
    /// ```
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    ///
    /// ```
    /// # use tonic_layers::deadline::Deadline;
    /// assert!(Deadline::at(tokio::time::Instant::now()).is_expired());
    /// ```
    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.0
    }

    /// The time left, as a `grpc-timeout` value (rounded down: never later).
    ///
    /// ```
    /// # use tonic_layers::deadline::Deadline;
    /// let text = Deadline::after(std::time::Duration::from_secs(1)).to_grpc_timeout();
    /// ```
    pub fn to_grpc_timeout(&self) -> String {
        format_grpc_timeout(self.remaining())
    }
}

tokio::task_local! {
    static CURRENT: Deadline;
}

/// The deadline of the call being served on this task, set by [`EnforceDeadlineLayer`]; `None`
/// outside such a call or when the call has no deadline.
///
/// ```
/// assert_eq!(tonic_layers::deadline::current(), None);
/// ```
pub fn current() -> Option<Deadline> {
    CURRENT.try_with(|d| *d).ok()
}

/// Runs `work` with `deadline` as [`current`] (nested scopes see the earlier deadline).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tonic_layers::deadline::{current, scope, Deadline};
/// let d = Deadline::after(std::time::Duration::from_secs(1));
/// assert_eq!(scope(Some(d), async { current() }).await, Some(d));
/// # }
/// ```
pub async fn scope<F: Future>(deadline: Option<Deadline>, work: F) -> F::Output {
    match earlier(deadline, current()) {
        Some(d) => CURRENT.scope(d, work).await,
        None => work.await,
    }
}

/// The earlier of two optional deadlines.
pub(crate) fn earlier(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs a synchronous poll with `deadline` as [`current`].
pub(crate) fn sync_scope<R>(deadline: Option<Deadline>, f: impl FnOnce() -> R) -> R {
    match deadline {
        Some(d) => CURRENT.sync_scope(d, f),
        None => f(),
    }
}
