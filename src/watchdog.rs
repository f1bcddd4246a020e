//! A wall-clock watchdog for tests that run under paused (virtual) time.
//!
//! Under `start_paused = true` a deadlock does not time out: virtual time stops moving and
//! the test hangs forever. A [`Watchdog`] runs on a plain OS thread with the real clock;
//! if it is not dropped in time it prints which test stalled and ends the process, so CI
//! fails fast instead of hanging.
//!
//! ```
//! use std::time::Duration;
//! use grpc_chaos::watchdog::Watchdog;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let _watchdog = Watchdog::arm("my_test", Duration::from_secs(10));
//! tokio::time::sleep(Duration::from_secs(30)).await; // virtual: returns at once
//! # }
//! ```

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Ends the process if it is still alive `limit` of real time after it was armed.
///
/// ```
/// let guard = grpc_chaos::watchdog::Watchdog::arm("quick", std::time::Duration::from_secs(5));
/// drop(guard); // disarmed
/// ```
#[derive(Debug)]
#[must_use = "the watchdog is disarmed as soon as it is dropped"]
pub struct Watchdog {
    disarm: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    /// Arms a watchdog for the test `name`.
    ///
    /// ```
    /// let _w = grpc_chaos::watchdog::Watchdog::arm("t", std::time::Duration::from_secs(5));
    /// ```
    pub fn arm(name: &str, limit: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let name = name.to_string();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "grpc-chaos watchdog: {name} still running after {limit:?} of wall-clock time \
                     (a deadlock under paused time?); ending the process"
                );
                std::process::exit(101);
            }
        });
        Self { disarm: Some(tx) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.disarm.take() {
            let _ = tx.send(());
        }
    }
}
