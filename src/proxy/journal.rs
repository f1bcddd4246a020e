//! The proxy's journal: every call as the client made it and as the proxy answered it,
//! what fault it got, and where its time went: waiting on the upstream, or held by an
//! injected delay.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::time::Instant;
use tonic::Code;

use crate::fake::journal::{Journaled, Recorder, Side};
use crate::fake::{CallEnding, ReceivedCall};
use crate::framing::{FrameReader, Step};

/// One call through the proxy, in [`Proxy::received_calls`](super::Proxy::received_calls).
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
/// use grpc_chaos::pb::{greeter_client::GreeterClient, HelloReply, HelloRequest};
/// use grpc_chaos::proxy::{Fault, FaultRule, Proxy, Upstream};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let server = FakeServer::in_memory();
/// Stub::given(method("/pb.Greeter/SayHello"))
///     .respond_with(Reply::message(&HelloReply::default()).delay(Duration::from_millis(40)))
///     .mount(&server);
/// let proxy = Proxy::builder(Upstream::fake(&server))
///     .rule(FaultRule::any().named("slow").with(Fault::new().delay(Duration::from_millis(250))))
///     .in_memory();
/// GreeterClient::new(proxy.channel()).say_hello(HelloRequest::default()).await.unwrap();
///
/// let call = &proxy.wait_for_ended_calls(1).await[0];
/// assert_eq!(call.fault.as_ref().unwrap().rule, "slow");
/// assert_eq!(call.injected_time, Duration::from_millis(250));
/// assert_eq!(call.upstream_time(), Duration::from_millis(40));
/// assert_eq!(call.call.status_code(), Some(tonic::Code::Ok));
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProxiedCall {
    /// The call as the client made it and as the proxy answered it: the request
    /// metadata as it arrived (before any edit), the `grpc-timeout` and deadline, the
    /// request messages as the client sent them, and the response messages and ending
    /// as the client was sent them. Its `stub` is always `None`.
    pub call: ReceivedCall,
    /// The rule that picked the call and what its fault does; `None` when no rule picked
    /// it, or the cap on active faults let it through untouched.
    pub fault: Option<AppliedFault>,
    /// When the proxy sent the call upstream; `None` when it never did (a fault answered
    /// or dropped the connection, or the deadline passed first).
    pub forwarded_at: Option<Instant>,
    /// How long the fault's delays held the call: before forwarding, before the
    /// headers, on request and response messages, and bandwidth pacing.
    pub injected_time: Duration,
    /// The status the upstream ended the call with; `None` when it sent none (it was
    /// not called, or the call ended before the upstream answered).
    pub upstream_status: Option<(Code, String)>,
    /// Time spent waiting on the upstream, request holds included.
    waited: Duration,
    /// Time request messages were held on their way up.
    request_held: Duration,
}

/// The rule that picked a call, and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedFault {
    /// The rule's name, or its matchers when it has none.
    pub rule: String,
    /// What the fault does, such as `delay 250ms, abort after 2 with Unavailable`.
    pub fault: String,
}

impl ProxiedCall {
    /// How long the proxy waited on the upstream: for a connection and the response
    /// headers, then for each response frame, less the time a request message was held
    /// on its way up (the upstream was waiting on the proxy then). The struct's example
    /// asserts it.
    pub fn upstream_time(&self) -> Duration {
        self.waited.saturating_sub(self.request_held)
    }

    pub(crate) fn new(call: ReceivedCall) -> Self {
        Self {
            call,
            fault: None,
            forwarded_at: None,
            injected_time: Duration::ZERO,
            upstream_status: None,
            waited: Duration::ZERO,
            request_held: Duration::ZERO,
        }
    }
}

impl Journaled for ProxiedCall {
    fn call(&self) -> &ReceivedCall {
        &self.call
    }
    fn call_mut(&mut self) -> &mut ReceivedCall {
        &mut self.call
    }
}

/// The status code (as sent, any number) and message in a header map (trailers, or a
/// Trailers-Only response's headers).
pub(crate) fn status_in(headers: &HeaderMap) -> Option<(i32, String)> {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())?;
    let message = headers
        .get("grpc-message")
        .map(|v| crate::metadata::decode_grpc_message(v.as_bytes()))
        .unwrap_or_default();
    Some((code, message))
}

/// One call's journal entry, as the parts of the call that see it write it.
#[derive(Clone)]
pub(crate) struct CallLog(Arc<Recorder<ProxiedCall>>);

impl CallLog {
    pub(crate) fn new(recorder: Recorder<ProxiedCall>) -> Self {
        Self(Arc::new(recorder))
    }

    pub(crate) fn fault(&self, fault: AppliedFault) {
        self.0.note(|c| c.fault = Some(fault));
    }

    pub(crate) fn forwarded(&self) {
        let now = Instant::now();
        self.0.note(|c| c.forwarded_at = Some(now));
    }

    /// The proxy waited this long on the upstream.
    pub(crate) fn waited(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        self.0.note(|c| c.waited += d);
    }

    /// A fault's delay held the call this long.
    pub(crate) fn injected(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        self.0.note(|c| c.injected_time += d);
    }

    /// A request message was held this long on its way up.
    pub(crate) fn request_held(&self, d: Duration) {
        self.0.note(|c| {
            c.injected_time += d;
            c.request_held += d;
        });
    }

    pub(crate) fn upstream_status(&self, headers: &HeaderMap) {
        if let Some((code, message)) = status_in(headers) {
            self.0
                .note(|c| c.upstream_status = Some((Code::from_i32(code), message)));
        }
    }

    /// The client was sent this status (the first ending wins).
    pub(crate) fn sent_status(&self, headers: &HeaderMap) {
        if let Some((code, message)) = status_in(headers) {
            self.end(CallEnding::Status {
                code: Code::from_i32(code),
                message,
                at: Instant::now(),
            });
        }
    }

    pub(crate) fn end(&self, ending: CallEnding) {
        self.0.end(ending);
    }

    /// The client went away before the call ended (nothing if it had ended).
    pub(crate) fn cancelled(&self) {
        self.0.cancelled();
    }
}

/// Cuts one direction's bytes into messages for the journal: a message that lies within
/// one chunk is a slice of it (no copy); one split across chunks is gathered.
pub(crate) struct MessageTap {
    log: CallLog,
    side: Side,
    reader: FrameReader,
    /// Whether the current message's prefix is complete (its body is being read).
    in_body: bool,
    /// The current message's body so far, from earlier chunks.
    gathered: BytesMut,
}

impl MessageTap {
    pub(crate) fn requests(log: CallLog) -> Self {
        Self::new(log, Side::Request)
    }

    pub(crate) fn responses(log: CallLog) -> Self {
        Self::new(log, Side::Response)
    }

    fn new(log: CallLog, side: Side) -> Self {
        Self {
            log,
            side,
            reader: FrameReader::new(),
            in_body: false,
            gathered: BytesMut::new(),
        }
    }

    pub(crate) fn log(&self) -> &CallLog {
        &self.log
    }

    /// Bytes of a message begun and not finished (0 between messages).
    pub(crate) fn pending(&self) -> usize {
        self.reader.pending()
    }

    /// Journals each message `chunk` completes.
    pub(crate) fn feed(&mut self, chunk: &Bytes) {
        let mut data = &chunk[..];
        // Where the current message's body begins in this chunk (0: it began before).
        let mut body_from = 0;
        let mut prefix_here = false;
        while let Some(step) = self.reader.read(&mut data) {
            let at = chunk.len() - data.len();
            match step {
                Step::Prefix(_) => {
                    self.in_body = true;
                    body_from = at;
                    prefix_here = true;
                }
                Step::Message(message) => {
                    let len = message.len();
                    let bytes = if prefix_here && self.gathered.is_empty() {
                        chunk.slice(at - len..at)
                    } else {
                        self.gathered.extend_from_slice(&chunk[body_from..at]);
                        self.gathered.split().freeze()
                    };
                    self.in_body = false;
                    prefix_here = false;
                    self.log.0.message(self.side, bytes);
                }
            }
        }
        if self.in_body {
            self.gathered.extend_from_slice(&chunk[body_from..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of cutting two messages into chunks journals the same two messages.
    #[test]
    fn messages_are_the_same_whatever_the_chunks() {
        let wire = [
            crate::framing::encode(b"hello"),
            crate::framing::encode(b""),
            crate::framing::encode(b"world!"),
        ]
        .concat();
        for size in 1..=wire.len() {
            let journal = std::sync::Arc::new(crate::fake::journal::Journal::<ProxiedCall>::new(
                Default::default(),
            ));
            let log = CallLog::new(journal.open(|id| {
                let (metadata, now) = (Default::default(), Instant::now());
                let call =
                    ReceivedCall::arriving(id, "/x/y".into(), metadata, None, None, now, None);
                ProxiedCall::new(call)
            }));
            let mut tap = MessageTap::requests(log);
            for chunk in wire.chunks(size) {
                tap.feed(&Bytes::copy_from_slice(chunk));
            }
            let kept = &journal.snapshot()[0].call.request_messages;
            assert_eq!(kept, &[&b"hello"[..], b"", b"world!"], "chunks of {size}");
            assert_eq!(tap.pending(), 0);
        }
    }
}
