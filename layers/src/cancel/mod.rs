//! Cancellation, made visible to the service under test.
//!
//! tonic drops a handler's future when its client goes away, but gives the handler no
//! signal, and work it spawned keeps running (tonic issue #2438: "It should be _easy_ to
//! detect when a stream ends"). [`CancelOnDisconnectLayer`] gives every call a
//! [`CallSignal`] in its request extensions: a future to await or a flag to poll, which
//! fires when the client cancels, the deadline ends the call, or the connection drops,
//! and never when the call completes. [`CallSignal::spawn`] runs work that is cancelled
//! with the call.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use tonic_layers::cancel::{guard, CallSignal};
//!
//! let (guard, signal) = guard();
//! let work = signal.spawn(async { tokio::time::sleep(std::time::Duration::from_secs(60)).await });
//! drop(guard); // the call went away
//! assert!(signal.is_cancelled());
//! assert_eq!(work.await.unwrap(), None); // the spawned work was cancelled too
//! # }
//! ```

mod layer;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use layer::{CancelOnDisconnect, CancelOnDisconnectLayer};

#[derive(Debug, Default)]
struct Shared {
    cancelled: AtomicBool,
    notify: Notify,
}

/// Fires its [`CallSignal`] when dropped, unless [`CancelGuard::disarm`]ed first (the
/// call completed). Hold it where the call's work lives.
///
/// ```
/// let (guard, signal) = tonic_layers::cancel::guard();
/// guard.disarm();
/// assert!(!signal.is_cancelled());
/// ```
#[derive(Debug)]
#[must_use = "dropping the guard cancels the call at once"]
pub struct CancelGuard {
    shared: Option<Arc<Shared>>,
}

impl CancelGuard {
    /// The call completed: dropping the guard no longer cancels.
    ///
    /// ```
    /// let (guard, _signal) = tonic_layers::cancel::guard();
    /// guard.disarm();
    /// ```
    pub fn disarm(mut self) {
        self.shared = None;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.cancelled.store(true, Ordering::SeqCst);
            shared.notify.notify_waiters();
        }
    }
}

/// Whether, and when, a call was cancelled. Cheap to clone.
///
/// ```
/// let (_guard, signal) = tonic_layers::cancel::guard();
/// assert!(!signal.is_cancelled());
/// ```
#[derive(Clone, Debug)]
pub struct CallSignal {
    shared: Arc<Shared>,
}

/// A new guard and the signal it fires.
///
/// ```
/// let (guard, signal) = tonic_layers::cancel::guard();
/// ```
pub fn guard() -> (CancelGuard, CallSignal) {
    let shared = Arc::new(Shared::default());
    (
        CancelGuard {
            shared: Some(Arc::clone(&shared)),
        },
        CallSignal { shared },
    )
}

impl CallSignal {
    /// Whether the call has been cancelled.
    ///
    /// ```
    /// let (guard, signal) = tonic_layers::cancel::guard();
    /// drop(guard);
    /// assert!(signal.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves when the call is cancelled (at once if it already was); never if the
    /// call completes.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (guard, signal) = tonic_layers::cancel::guard();
    /// drop(guard);
    /// signal.cancelled().await;
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Spawns `work` on the runtime, aborted at its next await when the call is
    /// cancelled: the task then yields `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (guard, signal) = tonic_layers::cancel::guard();
    /// let task = signal.spawn(async { 7 });
    /// assert_eq!(task.await.unwrap(), Some(7));
    /// guard.disarm();
    /// # }
    /// ```
    pub fn spawn<F>(&self, work: F) -> JoinHandle<Option<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let signal = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                biased;
                () = signal.cancelled() => None,
                out = work => Some(out),
            }
        })
    }
}
