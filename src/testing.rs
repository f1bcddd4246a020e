//! Tests that cannot hang: the runner behind `#[grpc_chaos::test]`.
//!
//! ```ignore
//! use std::time::Duration;
//! use tokio::time::Instant;
//!
//! #[grpc_chaos::test]
//! async fn a_thirty_second_deadline_runs_in_microseconds() {
//!     let t0 = Instant::now();
//!     tokio::time::sleep(Duration::from_secs(30)).await; // virtual: returns at once
//!     assert_eq!(t0.elapsed(), Duration::from_secs(30));
//! }
//! ```
//!
//! The attribute turns an `async fn` into a `#[test]` and runs its body with
//! [`TestRun`], named after the test (`module::function`, as libtest prints it), so no
//! test types its own name. Each run has two limits:
//!
//! - **A virtual-time limit** (ten minutes by default) bounds the body on the tokio clock.
//!   Under paused time, the clock jumps ahead whenever every task is waiting, so a test that
//!   waits for a call that never comes reaches the limit at once and fails with a message
//!   naming it, instead of hanging.
//! - **A wall-clock watchdog** (30 seconds by default) is the last resort, for what
//!   stops the clock itself: a busy loop, a blocked `std` mutex, blocking I/O. The body
//!   runs on a thread of its own, and the test's own thread waits for it in real time.
//!   When the limit passes, the test's thread fails the test with a message naming it.
//!   libtest shows that message under its capture and goes on with the other tests. The
//!   stuck thread is left behind until the test binary exits.
//!
//! The options, written in the attribute:
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `virtual_limit = "10m"` | ten minutes | the body's bound on the tokio clock |
//! | `wall_limit = "30s"` | 30 seconds | the watchdog's bound in real time |
//! | `paused = false` | paused | the real clock, for real sockets and processes |
//! | `worker_threads = 2` | current thread | a multi-thread runtime (real clock) |
//!
//! ```ignore
//! #[grpc_chaos::test(virtual_limit = "2h", wall_limit = "60s")]
//! async fn a_long_backoff() {
//!     tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
//! }
//! ```
//!
//! (Rustdoc does not run `#[test]` functions, so these two are not doc tests; every
//! test in this repository is written this way. What the attribute expands to runs here:)
//!
//! ```
//! use std::time::Duration;
//! use grpc_chaos::testing::TestRun;
//! use tokio::time::Instant;
//!
//! TestRun::new("doc::a_thirty_second_deadline_runs_in_microseconds").run(|| async {
//!     let t0 = Instant::now();
//!     tokio::time::sleep(Duration::from_secs(30)).await; // virtual: returns at once
//!     assert_eq!(t0.elapsed(), Duration::from_secs(30));
//! });
//! ```
//!
//! The body must be `Send` to move to its thread only through what it captures: the
//! future itself is built on that thread, so it may hold `!Send` values across awaits.
//! With rstest, write `#[rstest]` above `#[grpc_chaos::test]`.

use std::fmt;
use std::future::Future;
use std::panic;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long a test body may take on the tokio clock, unless the test says otherwise.
pub const DEFAULT_VIRTUAL_LIMIT: Duration = Duration::from_secs(600);

/// How long a test may take in real time before the watchdog fails it, unless the test
/// says otherwise.
pub const DEFAULT_WALL_LIMIT: Duration = Duration::from_secs(30);

/// The libtest name of the test function `function` in the module `module_path`
/// (`module_path!()` output, whose first segment is the crate and is left out).
///
/// ```
/// use grpc_chaos::testing::test_name;
/// assert_eq!(test_name("it::fake_unary", "replies"), "fake_unary::replies");
/// assert_eq!(test_name("smoke", "starts"), "starts");
/// ```
pub fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{function}"),
        None => function.to_string(),
    }
}

/// One run of a test body: its runtime and its two limits (see the module docs).
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::testing::TestRun;
///
/// let answer = TestRun::new("doc::example")
///     .virtual_limit(Duration::from_secs(5))
///     .run(|| async {
///         tokio::time::sleep(Duration::from_secs(4)).await;
///         42
///     });
/// assert_eq!(answer, 42);
/// ```
#[derive(Clone, Debug)]
#[must_use = "a TestRun does nothing until `run` is called"]
pub struct TestRun {
    name: String,
    virtual_limit: Duration,
    wall_limit: Duration,
    paused: bool,
    worker_threads: Option<usize>,
}

impl TestRun {
    /// A run of the test `name`: paused time, a current-thread runtime and the default
    /// limits.
    ///
    /// ```
    /// let run = grpc_chaos::testing::TestRun::new("module::test");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            virtual_limit: DEFAULT_VIRTUAL_LIMIT,
            wall_limit: DEFAULT_WALL_LIMIT,
            paused: true,
            worker_threads: None,
        }
    }

    /// Bounds the body on the tokio clock (real time when the clock is not paused).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use grpc_chaos::testing::TestRun;
    /// let run = TestRun::new("t").virtual_limit(Duration::from_secs(7_200));
    /// ```
    pub fn virtual_limit(mut self, limit: Duration) -> Self {
        self.virtual_limit = limit;
        self
    }

    /// Bounds the whole run in real time.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use grpc_chaos::testing::TestRun;
    /// let run = TestRun::new("t").wall_limit(Duration::from_secs(120));
    /// ```
    pub fn wall_limit(mut self, limit: Duration) -> Self {
        self.wall_limit = limit;
        self
    }

    /// Whether the tokio clock starts paused (the default). Tests that use real sockets
    /// or child processes may want the real clock.
    ///
    /// ```
    /// let run = grpc_chaos::testing::TestRun::new("t").paused(false);
    /// ```
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Runs the body on a multi-thread runtime with `n` workers instead of the current
    /// thread. The clock must then be real: [`TestRun::run`] panics if it is also paused.
    ///
    /// ```
    /// let run = grpc_chaos::testing::TestRun::new("t").paused(false).worker_threads(2);
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = Some(n);
        self
    }

    /// Runs the future that `body` makes on a runtime of its own thread, and returns its
    /// output. A panic in the body is the test's panic.
    ///
    /// # Panics
    /// When the body panics, when it passes the virtual-time limit, when the run passes
    /// the wall-clock limit, or when paused time is asked of a multi-thread runtime. Each
    /// message starts with the test's name.
    pub fn run<F, Fut>(self, body: F) -> Fut::Output
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        assert!(
            !(self.paused && self.worker_threads.is_some()),
            "{}: paused time needs a current-thread runtime",
            self.name
        );
        let (done, finished) = mpsc::channel::<()>();
        let runner = self.clone();
        let thread = thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                // Sent when the thread ends, by return or by panic.
                let _done = Finished(done);
                runner.block_on(body)
            })
            .unwrap_or_else(|e| panic!("{}: cannot start its thread: {e}", self.name));
        match finished.recv_timeout(self.wall_limit) {
            Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                "{}: still running after {} of wall-clock time, so the watchdog failed it. \
                 Something stopped the tokio clock: a busy loop, a blocked std mutex or \
                 blocking I/O on the runtime. Its thread is left behind; the other tests go \
                 on. (For a test that is slow on purpose, raise \
                 #[grpc_chaos::test(wall_limit = \"…\")].)",
                self.name,
                Limit(self.wall_limit),
            ),
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
                Ok(output) => output,
                // The panic was already reported by the body's thread; hand it on as is,
                // so `#[should_panic(expected = …)]` sees the same payload.
                Err(payload) => panic::resume_unwind(payload),
            },
        }
    }

    fn block_on<F, Fut>(&self, body: F) -> Fut::Output
    where
        F: FnOnce() -> Fut,
        Fut: Future,
    {
        let mut builder = match self.worker_threads {
            Some(n) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(n);
                builder
            }
            None => tokio::runtime::Builder::new_current_thread(),
        };
        let runtime = builder
            .enable_all()
            .start_paused(self.paused)
            .build()
            .unwrap_or_else(|e| panic!("{}: cannot build its runtime: {e}", self.name));
        runtime.block_on(async {
            match tokio::time::timeout(self.virtual_limit, body()).await {
                Ok(output) => output,
                Err(_) if self.paused => panic!(
                    "{}: still running after {} of virtual time. Paused time jumps ahead \
                     whenever every task is waiting, so the test is waiting for something \
                     that never comes. (For a test that is long on purpose, raise \
                     #[grpc_chaos::test(virtual_limit = \"…\")].)",
                    self.name,
                    Limit(self.virtual_limit),
                ),
                Err(_) => panic!(
                    "{}: still running after {} (the limit on the tokio clock, which is \
                     real time here)",
                    self.name,
                    Limit(self.virtual_limit),
                ),
            }
        })
    }
}

/// Tells the test's thread that the body's thread has ended.
struct Finished(mpsc::Sender<()>);

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A limit as the attribute writes it: `30s`, `10m`, `500ms`.
struct Limit(Duration);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            m if m % 3_600_000 == 0 && m > 0 => write!(f, "{}h", m / 3_600_000),
            m if m % 60_000 == 0 && m > 0 => write!(f, "{}m", m / 60_000),
            m if m % 1_000 == 0 => write!(f, "{}s", m / 1_000),
            m => write!(f, "{m}ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_print_as_the_attribute_writes_them() {
        let shown = [0, 500, 30_000, 600_000, 7_200_000, 90_500]
            .map(|ms| Limit(Duration::from_millis(ms)).to_string());
        assert_eq!(shown, ["0s", "500ms", "30s", "10m", "2h", "90500ms"]);
    }
}
