//! The journal: every call as the fake server saw it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::Code;

use super::reason::Reason;
use crate::deadline::GrpcTimeoutError;

/// How many ended calls a slow watcher may fall behind by before it misses some.
const WATCH_BACKLOG: usize = 256;

/// How a call ended, as the server saw it.
///
/// ```
/// use grpc_chaos::fake::CallEnding;
/// assert!(CallEnding::InProgress.is_in_progress());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEnding {
    /// The call has not ended yet.
    InProgress,
    /// The server sent a final status (in trailers, or Trailers-Only).
    Status {
        /// The status code sent.
        code: Code,
        /// The status message sent.
        message: String,
        /// When the server sent it, on the tokio clock.
        at: Instant,
    },
    /// The client went away first: it cancelled (RST_STREAM), its deadline passed on its
    /// side, or the connection closed under the call.
    Cancelled {
        /// When the server noticed, on the tokio clock.
        at: Instant,
        /// How many request messages had arrived by then.
        requests_received: usize,
        /// How many response messages had been sent by then.
        responses_sent: usize,
    },
    /// The server reset the stream (RST_STREAM) with this HTTP/2 error code.
    Reset {
        /// The HTTP/2 error code it carried.
        reason: Reason,
        /// When the server reset it.
        at: Instant,
    },
    /// The stream ended with no status at all, neither trailers nor Trailers-Only: what
    /// a client sees when a proxy fault drops the trailers.
    NoStatus {
        /// When the stream ended.
        at: Instant,
    },
}

/// An instant as the time since the server started, as failure messages and logs give
/// it: `+1.250s`.
pub(crate) struct Offset(Duration);

impl Offset {
    pub(crate) fn between(origin: Instant, at: Instant) -> Self {
        Self(at.saturating_duration_since(origin))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}.{:03}s", self.0.as_secs(), self.0.subsec_millis())
    }
}

impl CallEnding {
    /// How the call ended, with the instant as an [`Offset`] from `origin`.
    pub(crate) fn describe(&self, origin: Instant) -> String {
        let at = |at: &Instant| Offset::between(origin, *at);
        match self {
            Self::InProgress => "in progress".to_string(),
            Self::Status {
                code,
                message,
                at: t,
            } if message.is_empty() => {
                format!("{code:?} at {}", at(t))
            }
            Self::Status {
                code,
                message,
                at: t,
            } => format!("{code:?} {message:?} at {}", at(t)),
            Self::Cancelled { at: t, .. } => format!("cancelled by the client at {}", at(t)),
            Self::Reset { reason, at: t } => format!("reset with {reason} at {}", at(t)),
            Self::NoStatus { at: t } => format!("ended with no status at {}", at(t)),
        }
    }

    /// Whether the call is still going.
    ///
    /// ```
    /// # use grpc_chaos::fake::CallEnding;
    /// assert!(CallEnding::InProgress.is_in_progress());
    /// ```
    pub fn is_in_progress(&self) -> bool {
        matches!(self, Self::InProgress)
    }

    /// When the call ended, if it has.
    ///
    /// ```
    /// # use grpc_chaos::fake::CallEnding;
    /// assert_eq!(CallEnding::InProgress.at(), None);
    /// ```
    pub fn at(&self) -> Option<Instant> {
        match self {
            Self::InProgress => None,
            Self::Status { at, .. }
            | Self::Cancelled { at, .. }
            | Self::Reset { at, .. }
            | Self::NoStatus { at } => Some(*at),
        }
    }
}

/// One call the fake server received, as it saw it.
///
/// Messages are kept as raw bytes; [`ReceivedCall::request`] and
/// [`ReceivedCall::response`] decode them with the caller's prost type.
///
/// ```
/// use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
/// use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let server = FakeServer::in_memory();
/// Stub::given(method("/pb.Greeter/SayHello"))
///     .respond_with(Reply::message(&HelloReply { message: "hi".into() }))
///     .mount(&server);
/// let mut client = GreeterClient::new(server.channel());
/// client.say_hello(HelloRequest { name: "Ada".into() }).await.unwrap();
///
/// let calls = server.wait_for_ended_calls(1).await;
/// let call = &calls[0];
/// assert_eq!(call.method, "/pb.Greeter/SayHello");
/// assert_eq!(call.request::<HelloRequest>(0).unwrap().name, "Ada");
/// assert_eq!(call.status_code(), Some(tonic::Code::Ok));
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReceivedCall {
    /// Arrival order, from 0 (ids go on counting across [`FakeServer::reset`](super::FakeServer::reset)).
    pub id: usize,
    /// The request path, `/package.Service/Method`.
    pub method: String,
    /// Every request header the server received (gRPC's own included: `te`,
    /// `content-type`, `grpc-timeout`, `user-agent`, …), in order.
    pub metadata: MetadataMap,
    /// The raw `grpc-timeout` header, when the request had one (lossy UTF-8).
    pub grpc_timeout: Option<String>,
    /// The `grpc-timeout` header parsed strictly, when the request had one.
    pub timeout: Option<Result<Duration, GrpcTimeoutError>>,
    /// When the request headers arrived, on the tokio clock (exact under paused time).
    pub arrived_at: Instant,
    /// `arrived_at + timeout`, when the timeout parsed.
    pub deadline: Option<Instant>,
    /// The name (or description) of the stub that answered; `None` when no stub matched.
    pub stub: Option<String>,
    /// The request messages received, in order, without their 5-byte prefix. A message
    /// over the journal's per-message limit keeps a prefix of its bytes (see
    /// [`ReceivedCall::request_sizes`]).
    pub request_messages: Vec<Bytes>,
    /// Each request message's size on the wire, without its prefix: larger than the
    /// bytes kept when the message was truncated.
    pub request_sizes: Vec<usize>,
    /// The response messages sent, in order, without their 5-byte prefix (a prefix, when
    /// truncated, as for requests).
    pub response_messages: Vec<Bytes>,
    /// Each response message's size on the wire.
    pub response_sizes: Vec<usize>,
    /// How the call ended.
    pub ending: CallEnding,
    /// The server's id for the stub that answered: `stub` is a label, and labels may repeat.
    pub(crate) stub_id: Option<u64>,
}

impl ReceivedCall {
    /// A call as it arrives: nothing read or sent yet, no stub, in progress.
    pub(crate) fn arriving(
        id: usize,
        method: String,
        metadata: MetadataMap,
        grpc_timeout: Option<String>,
        timeout: Option<Result<Duration, GrpcTimeoutError>>,
        arrived_at: Instant,
        deadline: Option<Instant>,
    ) -> Self {
        Self {
            id,
            method,
            metadata,
            grpc_timeout,
            timeout,
            arrived_at,
            deadline,
            stub: None,
            request_messages: Vec::new(),
            request_sizes: Vec::new(),
            response_messages: Vec::new(),
            response_sizes: Vec::new(),
            ending: CallEnding::InProgress,
            stub_id: None,
        }
    }

    /// Decodes request message `index` as `T`.
    ///
    /// # Errors
    /// A [`DecodeMessageError`] when there is no such message or it does not decode as `T`.
    ///
    /// ```
    /// # use grpc_chaos::fake::ReceivedCall;
    /// # fn f(call: &ReceivedCall) {
    /// let req: grpc_chaos::pb::HelloRequest = call.request(0).unwrap();
    /// # }
    /// ```
    pub fn request<T: prost::Message + Default>(
        &self,
        index: usize,
    ) -> Result<T, DecodeMessageError> {
        decode_at(
            &self.request_messages,
            &self.request_sizes,
            index,
            "request",
        )
    }

    /// Decodes every request message as `T`.
    ///
    /// # Errors
    /// A [`DecodeMessageError`] naming the first message that does not decode.
    ///
    /// ```
    /// # use grpc_chaos::fake::ReceivedCall;
    /// # fn f(call: &ReceivedCall) {
    /// let all: Vec<grpc_chaos::pb::HelloRequest> = call.requests().unwrap();
    /// # }
    /// ```
    pub fn requests<T: prost::Message + Default>(&self) -> Result<Vec<T>, DecodeMessageError> {
        (0..self.request_messages.len())
            .map(|i| self.request(i))
            .collect()
    }

    /// Decodes response message `index` as `T`.
    ///
    /// # Errors
    /// A [`DecodeMessageError`] when there is no such message or it does not decode as `T`.
    ///
    /// ```
    /// # use grpc_chaos::fake::ReceivedCall;
    /// # fn f(call: &ReceivedCall) {
    /// let reply: grpc_chaos::pb::HelloReply = call.response(0).unwrap();
    /// # }
    /// ```
    pub fn response<T: prost::Message + Default>(
        &self,
        index: usize,
    ) -> Result<T, DecodeMessageError> {
        decode_at(
            &self.response_messages,
            &self.response_sizes,
            index,
            "response",
        )
    }

    /// The first value of the ASCII metadata `key`, as text (`None` when absent, or not
    /// visible ASCII).
    ///
    /// ```
    /// # use grpc_chaos::fake::ReceivedCall;
    /// # fn f(call: &ReceivedCall) {
    /// assert_eq!(call.header("grpc-previous-rpc-attempts"), Some("1"));
    /// # }
    /// ```
    pub fn header(&self, key: &str) -> Option<&str> {
        self.metadata.get(key)?.to_str().ok()
    }

    /// The status code the server ended the call with, if it sent one.
    ///
    /// ```
    /// # use grpc_chaos::fake::ReceivedCall;
    /// # fn f(call: &ReceivedCall) {
    /// assert_eq!(call.status_code(), Some(tonic::Code::Ok));
    /// # }
    /// ```
    pub fn status_code(&self) -> Option<Code> {
        match &self.ending {
            CallEnding::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// When the client went away, if it did before the server ended the call.
    ///
    /// ```
    /// # use grpc_chaos::fake::ReceivedCall;
    /// # fn f(call: &ReceivedCall) {
    /// let cancelled_at: Option<tokio::time::Instant> = call.cancelled_at();
    /// # }
    /// ```
    pub fn cancelled_at(&self) -> Option<Instant> {
        match self.ending {
            CallEnding::Cancelled { at, .. } => Some(at),
            _ => None,
        }
    }

    /// One line for failure messages: path, arrival, stub and ending.
    pub(crate) fn summary(&self, origin: Instant) -> String {
        let stub = self
            .stub
            .as_deref()
            .map_or("no stub".to_string(), |s| format!("stub {s:?}"));
        format!(
            "#{} {} at {}, {} request message(s), {stub}, {}",
            self.id,
            self.method,
            Offset::between(origin, self.arrived_at),
            self.request_messages.len(),
            self.ending.describe(origin),
        )
    }
}

fn decode_at<T: prost::Message + Default>(
    messages: &[Bytes],
    sizes: &[usize],
    index: usize,
    side: &'static str,
) -> Result<T, DecodeMessageError> {
    let bytes = messages.get(index).ok_or(DecodeMessageError::Missing {
        side,
        index,
        available: messages.len(),
    })?;
    let size = sizes.get(index).copied().unwrap_or(bytes.len());
    if size > bytes.len() {
        return Err(DecodeMessageError::Truncated {
            side,
            index,
            kept: bytes.len(),
            size,
        });
    }
    T::decode(bytes.clone()).map_err(|source| DecodeMessageError::Decode {
        side,
        index,
        source,
    })
}

/// A journal message that could not be read as the requested type.
///
/// ```
/// # use grpc_chaos::fake::DecodeMessageError;
/// let e = DecodeMessageError::Missing { side: "request", index: 3, available: 1 };
/// assert_eq!(e.to_string(), "request message 3 does not exist (1 recorded)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeMessageError {
    /// There is no message at that index.
    Missing {
        /// `"request"` or `"response"`.
        side: &'static str,
        /// The index asked for.
        index: usize,
        /// How many messages were recorded.
        available: usize,
    },
    /// The journal kept only a prefix of the message: it was over the per-message limit
    /// ([`FakeServerBuilder::journal_message_bytes`](super::FakeServerBuilder::journal_message_bytes)),
    /// or its call over the whole journal's byte budget.
    Truncated {
        /// `"request"` or `"response"`.
        side: &'static str,
        /// The message's index.
        index: usize,
        /// How many of its bytes were kept.
        kept: usize,
        /// Its size on the wire.
        size: usize,
    },
    /// The bytes are not a valid encoding of the type.
    Decode {
        /// `"request"` or `"response"`.
        side: &'static str,
        /// The message's index.
        index: usize,
        /// prost's error.
        source: prost::DecodeError,
    },
}

impl fmt::Display for DecodeMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                side,
                index,
                available,
            } => {
                write!(
                    f,
                    "{side} message {index} does not exist ({available} recorded)"
                )
            }
            Self::Truncated {
                side,
                index,
                kept,
                size,
            } => write!(
                f,
                "{side} message {index} was truncated in the journal: {kept} of its {size} bytes \
                 were kept"
            ),
            Self::Decode {
                side,
                index,
                source,
            } => {
                write!(f, "{side} message {index} does not decode: {source}")
            }
        }
    }
}

impl std::error::Error for DecodeMessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode { source, .. } => Some(source),
            Self::Missing { .. } | Self::Truncated { .. } => None,
        }
    }
}

/// What a journal keeps per call: a [`ReceivedCall`], alone (the fake's) or inside a
/// larger record (the proxy's, with the fault and the hop's timing).
pub(crate) trait Journaled: Clone + fmt::Debug + Send + Sync + 'static {
    fn call(&self) -> &ReceivedCall;
    fn call_mut(&mut self) -> &mut ReceivedCall;
}

impl Journaled for ReceivedCall {
    fn call(&self) -> &ReceivedCall {
        self
    }
    fn call_mut(&mut self) -> &mut ReceivedCall {
        self
    }
}

/// One call's entry, shared by the journal's list and the call's recorder.
type Entry<C> = Arc<Mutex<Slot<C>>>;

/// A call as recorded, and what it counts for in the journal's byte budget.
#[derive(Debug)]
struct Slot<C> {
    call: C,
    /// Whether the journal still lists it (and counts its bytes).
    listed: bool,
    /// The message bytes it keeps.
    kept: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave an entry half-written in a
    // way that matters to readers, so a poisoned lock is still read.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// How much a journal keeps: calls, message bytes in all, and bytes of each message.
/// `None` keeps everything.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JournalLimits {
    pub(crate) calls: Option<usize>,
    pub(crate) bytes: Option<usize>,
    pub(crate) message_bytes: Option<usize>,
}

/// The shared store of calls, and the count of calls whose handler is still live.
///
/// Each call's entry has a lock of its own, which only its recorder writes; the list
/// holds the entries. Clearing or trimming the list therefore never disturbs a call in
/// flight: it goes on recording into an entry nobody lists any more. Locks are taken
/// list first, then entry, never the other way.
#[derive(Debug)]
pub(crate) struct Journal<C: Journaled = ReceivedCall> {
    /// The tokio instant the journal was made: failure messages give times from it.
    origin: Instant,
    calls: Mutex<VecDeque<Entry<C>>>,
    next_id: AtomicUsize,
    limits: JournalLimits,
    /// The message bytes the listed calls keep.
    kept: AtomicUsize,
    changed: Notify,
    /// How many [`Journal::wait_for`] calls are waiting on `changed`: with none, a
    /// change wakes nobody and skips `Notify`'s lock.
    waiting: AtomicUsize,
    live: AtomicUsize,
    /// Every call as it ends, for [`FakeServer::watch_calls`](super::FakeServer::watch_calls).
    ended: broadcast::Sender<C>,
}

impl<C: Journaled> Journal<C> {
    pub(crate) fn new(limits: JournalLimits) -> Self {
        Self {
            origin: Instant::now(),
            calls: Mutex::default(),
            next_id: AtomicUsize::default(),
            limits,
            kept: AtomicUsize::default(),
            changed: Notify::new(),
            waiting: AtomicUsize::default(),
            live: AtomicUsize::default(),
            ended: broadcast::channel(WATCH_BACKLOG).0,
        }
    }

    /// One line per call, for failure messages.
    pub(crate) fn summaries(&self) -> Vec<String> {
        let calls = self.snapshot();
        calls
            .iter()
            .map(|c| c.call().summary(self.origin))
            .collect()
    }

    /// The tokio instant the journal was made: failure messages give times from it.
    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    pub(crate) fn snapshot(&self) -> Vec<C> {
        self.snapshot_where(|_| true)
    }

    /// The calls `keep` picks, in order; only those are copied.
    pub(crate) fn snapshot_where(&self, keep: impl Fn(&C) -> bool) -> Vec<C> {
        let entries: Vec<Entry<C>> = lock(&self.calls).iter().cloned().collect();
        entries
            .iter()
            .filter_map(|e| {
                let slot = lock(e);
                keep(&slot.call).then(|| slot.call.clone())
            })
            .collect()
    }

    /// The message bytes the journal keeps now.
    pub(crate) fn kept_bytes(&self) -> usize {
        self.kept.load(Ordering::SeqCst)
    }

    pub(crate) fn clear(&self) {
        let mut calls = lock(&self.calls);
        while let Some(entry) = calls.pop_front() {
            self.unlist(&entry);
        }
        drop(calls);
        self.changed();
    }

    /// Takes the calls `forget` picks off the list; the others stay, in order.
    pub(crate) fn clear_where(&self, forget: impl Fn(&C) -> bool) {
        let mut calls = lock(&self.calls);
        calls.retain(|entry| {
            let gone = forget(&lock(entry).call);
            if gone {
                self.unlist(entry);
            }
            !gone
        });
        drop(calls);
        self.changed();
    }

    /// Every call that ends from now on.
    pub(crate) fn watch(&self) -> broadcast::Receiver<C> {
        self.ended.subscribe()
    }

    /// Stops counting an entry taken off the list.
    fn unlist(&self, entry: &Entry<C>) {
        let mut slot = lock(entry);
        if slot.listed {
            slot.listed = false;
            self.kept.fetch_sub(slot.kept, Ordering::SeqCst);
        }
    }

    /// Takes the oldest calls off the list while it is over its limits; the newest call
    /// always stays.
    fn trim(&self, calls: &mut VecDeque<Entry<C>>) {
        let over_calls =
            |calls: &VecDeque<Entry<C>>| self.limits.calls.is_some_and(|limit| calls.len() > limit);
        let over_bytes = || {
            self.limits
                .bytes
                .is_some_and(|limit| self.kept_bytes() > limit)
        };
        while calls.len() > 1 && (over_calls(calls) || over_bytes()) {
            if let Some(entry) = calls.pop_front() {
                self.unlist(&entry);
            }
        }
        if over_calls(calls) {
            // A call limit of 0 keeps nothing.
            if let Some(entry) = calls.pop_front() {
                self.unlist(&entry);
            }
        }
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Waits until `ready` holds for the journal, then returns a snapshot; after
    /// `limit` on the tokio clock, gives up with the calls received so far.
    pub(crate) async fn wait_until(
        &self,
        limit: Duration,
        ready: impl Fn(&[C]) -> bool,
    ) -> Result<Vec<C>, Vec<C>> {
        tokio::time::timeout(limit, self.wait_for(ready))
            .await
            .map_err(|_| self.snapshot())
    }

    /// Wakes the waiters, if any, after a change.
    fn changed(&self) {
        // SeqCst, paired with `wait_for`'s increment: a waiter that counted itself
        // after this load takes its snapshot after the change, so it misses nothing.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }

    async fn wait_for(&self, ready: impl Fn(&[C]) -> bool) -> Vec<C> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Uncounted however the wait ends, a timeout's drop included.
        let _counted = Counted(&self.waiting);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = self.snapshot();
            if ready(&calls) {
                return calls;
            }
            notified.await;
        }
    }

    /// Records a new call and returns the recorder that updates it.
    pub(crate) fn open(self: &Arc<Self>, make: impl FnOnce(usize) -> C) -> Recorder<C> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let entry = Arc::new(Mutex::new(Slot {
            call: make(id),
            listed: true,
            kept: 0,
        }));
        {
            let mut calls = lock(&self.calls);
            calls.push_back(Arc::clone(&entry));
            self.trim(&mut calls);
        }
        self.live.fetch_add(1, Ordering::SeqCst);
        self.changed();
        Recorder {
            journal: Arc::clone(self),
            entry,
            id,
        }
    }

    /// What to keep of a message of `call`, which keeps `kept` bytes already: all of it,
    /// or a prefix within the per-message limit and the budget.
    fn keep(&self, kept: usize, message: Bytes) -> Bytes {
        let mut keep = message.len();
        if let Some(cap) = self.limits.message_bytes {
            keep = keep.min(cap);
        }
        if let Some(budget) = self.limits.bytes {
            // One call alone never keeps more than the whole budget.
            keep = keep.min(budget.saturating_sub(kept));
        }
        if self.limits.bytes.is_none() && self.limits.message_bytes.is_none() {
            // Kept whole: nothing is bounded, so nothing is copied.
            return message;
        }
        // A copy, so that the journal never holds the buffer the message was read into.
        Bytes::copy_from_slice(&message[..keep])
    }
}

/// Which way a message went.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Side {
    Request,
    Response,
}

/// Updates one call's entry; on drop before an ending, records a client cancel.
#[derive(Debug)]
pub(crate) struct Recorder<C: Journaled = ReceivedCall> {
    journal: Arc<Journal<C>>,
    entry: Entry<C>,
    id: usize,
}

impl<C: Journaled> Recorder<C> {
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut C) -> R) -> R {
        let out = f(&mut lock(&self.entry).call);
        self.journal.changed();
        out
    }

    /// Changes what no wait is for (the proxy's timings), without waking the waiters.
    pub(crate) fn note(&self, f: impl FnOnce(&mut C)) {
        f(&mut lock(&self.entry).call);
    }

    /// Reads the entry without changing it.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&C) -> R) -> R {
        f(&lock(&self.entry).call)
    }

    /// Records one message, taking it (the journal keeps it whole, or a copy of its
    /// prefix within the limits); returns its index on its side.
    pub(crate) fn message(&self, side: Side, message: Bytes) -> usize {
        let journal = &self.journal;
        let index = {
            let mut guard = lock(&self.entry);
            let slot = &mut *guard;
            let size = message.len();
            let kept = journal.keep(slot.kept, message);
            slot.kept += kept.len();
            if slot.listed {
                journal.kept.fetch_add(kept.len(), Ordering::SeqCst);
            }
            let call = slot.call.call_mut();
            let (messages, sizes) = match side {
                Side::Request => (&mut call.request_messages, &mut call.request_sizes),
                Side::Response => (&mut call.response_messages, &mut call.response_sizes),
            };
            if messages.capacity() == 0 {
                // Most calls carry one message each way: room for exactly one, where a
                // first push would make room for four. The journal keeps each of its
                // entries for a long time, and every byte of them is cold by the time
                // the entry is let go.
                messages.reserve_exact(1);
                sizes.reserve_exact(1);
            }
            messages.push(kept);
            sizes.push(size);
            messages.len() - 1
        };
        // The list's lock only when there is something to trim.
        if journal
            .limits
            .bytes
            .is_some_and(|limit| journal.kept_bytes() > limit)
        {
            journal.trim(&mut lock(&journal.calls));
        }
        // No wait is for a message (waits are for arrivals, endings and idleness), so
        // nobody is woken for one.
        index
    }

    /// Sets the ending unless one is set already (the first ending wins).
    pub(crate) fn end(&self, ending: CallEnding) {
        self.update(|entry| {
            let call = entry.call_mut();
            if call.ending.is_in_progress() {
                call.ending = ending;
            }
        });
    }

    pub(crate) fn cancelled(&self) {
        let at = Instant::now();
        self.update(|entry| {
            let call = entry.call_mut();
            if call.ending.is_in_progress() {
                call.ending = CallEnding::Cancelled {
                    at,
                    requests_received: call.request_messages.len(),
                    responses_sent: call.response_messages.len(),
                };
            }
        });
    }
}

/// Takes one off a count when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<C: Journaled> Drop for Recorder<C> {
    fn drop(&mut self) {
        // The handler is going away: if nothing ended the call, the client did.
        self.cancelled();
        let origin = self.journal.origin;
        let ended = &self.journal.ended;
        self.read(|entry| {
            let call = entry.call();
            // Described inside the macro: only when the line is logged.
            tracing::info!(
                call = call.id,
                method = %call.method,
                stub = call.stub.as_deref().unwrap_or("none"),
                ending = %call.ending.describe(origin),
                "call ended"
            );
            if ended.receiver_count() > 0 {
                // No watcher left is not an error: the call is still in the journal.
                let _ = ended.send(entry.clone());
            }
        });
        self.journal.live.fetch_sub(1, Ordering::SeqCst);
        self.journal.changed();
    }
}
