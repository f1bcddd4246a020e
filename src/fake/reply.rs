//! Replies: what a stub answers, built step by step: the [`Reply`] API.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tonic::{Code, Status};

use super::handler::{CallHandle, Handler};
use super::reason::Reason;
use super::request::CallRequest;
use super::script::{add_ascii, add_binary, Ending, Kind, Script};

/// The request header the interop suite's `custom_metadata` case expects echoed in the
/// initial metadata ([`Reply::echo_test_metadata`]).
pub const INTEROP_ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// The request header that case expects echoed in the trailing metadata.
pub const INTEROP_ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// What a stub answers: response headers, messages, and how the call ends.
///
/// A reply is built from a constructor and then refined, in the order a server acts:
/// `delay` before the headers, `header`s, messages (each after its own delay), then
/// the ending with its `trailer`s.
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::fake::Reply;
/// use grpc_chaos::pb::HelloReply;
/// use tonic::Code;
///
/// let hello = |m: &str| HelloReply { message: m.into() };
/// // A slow server stream that aborts after two messages.
/// let reply = Reply::stream()
///     .delay(Duration::from_millis(100))
///     .header("x-region", "eu")
///     .then_message_after(Duration::from_millis(10), &hello("one"))
///     .then_message_after(Duration::from_millis(10), &hello("two"))
///     .then_message_after(Duration::from_millis(10), &hello("three"))
///     .abort_after(2, tonic::Status::unavailable("going away"))
///     .trailer("x-served-by", "fake");
/// // Two failures, then success.
/// let flaky = Reply::sequence([
///     Reply::error(Code::Unavailable, "try again"),
///     Reply::error(Code::Unavailable, "try again"),
///     Reply::message(&hello("finally")),
/// ]);
/// ```
#[derive(Clone, Debug)]
#[must_use = "a reply does nothing until a stub responds with it"]
pub struct Reply(Kind);

impl Reply {
    fn script(script: Script) -> Self {
        Self(Kind::Script(Box::new(script)))
    }

    /// Headers, no message, status OK.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty();
    /// ```
    pub fn empty() -> Self {
        Self::script(Script::new(Ending::Status(Status::new(Code::Ok, ""))))
    }

    /// An empty stream to add messages to with [`Reply::then_message`]; ends OK.
    /// The same as [`Reply::empty`], named for reading.
    ///
    /// ```
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::stream().then_message(&HelloReply { message: "a".into() });
    /// ```
    pub fn stream() -> Self {
        Self::empty()
    }

    /// One prost message, then status OK.
    ///
    /// ```
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::message(&HelloReply { message: "hi".into() });
    /// ```
    pub fn message<M: prost::Message>(message: &M) -> Self {
        Self::empty().then_message(message)
    }

    /// One message given as its encoded bytes (any method, no prost type needed).
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::bytes(vec![0x0a, 0x02, b'h', b'i']);
    /// ```
    pub fn bytes(message: impl Into<Bytes>) -> Self {
        Self::empty().then_bytes_after(Duration::ZERO, message)
    }

    /// Several prost messages with no delay between them, then status OK.
    ///
    /// ```
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::messages(&[HelloReply { message: "a".into() }, HelloReply { message: "b".into() }]);
    /// ```
    pub fn messages<'a, M: prost::Message + 'a>(messages: impl IntoIterator<Item = &'a M>) -> Self {
        messages
            .into_iter()
            .fold(Self::stream(), |r, m| r.then_message(m))
    }

    /// Ends the call with this status (code, message, details and metadata) and no
    /// message: a Trailers-Only response unless headers are added.
    ///
    /// ```
    /// use grpc_chaos::fake::Reply;
    /// let r = Reply::status(tonic::Status::with_details(tonic::Code::Aborted, "conflict", vec![1, 2].into()));
    /// ```
    pub fn status(status: Status) -> Self {
        Self::script(Script::new(Ending::Status(status)))
    }

    /// Shorthand for [`Reply::status`] from a code and message.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::error(tonic::Code::NotFound, "no such user");
    /// ```
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self::status(Status::new(code, message))
    }

    /// Never answers: no headers, no status. The call ends only when the client goes
    /// away (it cancels, or its deadline passes), which the journal records.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::hang();
    /// ```
    pub fn hang() -> Self {
        Self::script(Script::new(Ending::Hang))
    }

    /// Resets the stream (RST_STREAM) with `reason` instead of answering.
    /// tonic clients see `CANCEL` as CANCELLED, `REFUSED_STREAM` as UNAVAILABLE and
    /// `ENHANCE_YOUR_CALM` as RESOURCE_EXHAUSTED.
    ///
    /// ```
    /// use grpc_chaos::fake::{Reason, Reply};
    /// let r = Reply::reset(Reason::REFUSED_STREAM);
    /// ```
    pub fn reset(reason: Reason) -> Self {
        Self::script(Script::new(Ending::Reset(reason)))
    }

    /// The n-th call this reply answers gets the n-th reply; once they are used up,
    /// the last one answers every later call.
    ///
    /// ```
    /// use grpc_chaos::fake::Reply;
    /// use tonic::Code;
    /// let r = Reply::sequence([Reply::error(Code::Unavailable, ""), Reply::empty()]);
    /// ```
    pub fn sequence(replies: impl IntoIterator<Item = Reply>) -> Self {
        let replies: Vec<Reply> = replies.into_iter().collect();
        if replies.is_empty() {
            return Self::error(
                Code::Internal,
                "grpc-chaos: Reply::sequence was given no replies",
            );
        }
        Self(Kind::sequence(replies.into_iter().map(|r| r.0).collect()))
    }

    /// Answers with `hit` with the given probability and with `miss` otherwise, drawing
    /// from a random generator seeded with `seed`: the same seed gives the same choices
    /// in the same order, run after run. The seed is shown in failure messages.
    ///
    /// ```
    /// use grpc_chaos::fake::Reply;
    /// use tonic::Code;
    /// // Fail 30% of calls, reproducibly.
    /// let r = Reply::chance(42, 0.3, Reply::error(Code::Unavailable, "flaky"), Reply::empty());
    /// ```
    pub fn chance(seed: u64, probability: f64, hit: Reply, miss: Reply) -> Self {
        let probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        Self(Kind::chance(seed, probability, hit.0, miss.0))
    }

    /// Builds the reply from the call itself: its method, metadata, timeout and first
    /// request message. Stubs with such a reply read up to the first request message
    /// before answering.
    ///
    /// ```
    /// use grpc_chaos::fake::Reply;
    /// use tonic::Code;
    /// let r = Reply::from_request(|req| {
    ///     if req.ascii_values("authorization").is_empty() {
    ///         Reply::error(Code::Unauthenticated, "no token")
    ///     } else {
    ///         Reply::empty()
    ///     }
    /// });
    /// ```
    pub fn from_request(responder: impl Fn(&CallRequest) -> Reply + Send + Sync + 'static) -> Self {
        Self(Kind::Dynamic(Arc::new(move |req| responder(req).0)))
    }

    /// Builds the reply from the first request message decoded as `T`; a request that
    /// does not decode (or has no message) gets INTERNAL, as tonic answers it.
    ///
    /// ```
    /// use grpc_chaos::fake::Reply;
    /// use grpc_chaos::pb::{HelloReply, HelloRequest};
    /// let r = Reply::from_message(|req: &HelloRequest| {
    ///     Reply::message(&HelloReply { message: format!("Hello, {}!", req.name) })
    /// });
    /// ```
    pub fn from_message<T: prost::Message + Default>(
        responder: impl Fn(&T) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::from_request(move |req| {
            let Some(bytes) = req.first_message.clone() else {
                return Self::error(Code::Internal, "grpc-chaos: the request has no message");
            };
            match T::decode(bytes) {
                Ok(message) => responder(&message),
                Err(e) => Self::error(
                    Code::Internal,
                    format!(
                        "grpc-chaos: failed to decode the request as {}: {e}",
                        std::any::type_name::<T>()
                    ),
                ),
            }
        })
    }

    /// A reply written as an async function: it reads the request stream as it arrives
    /// and sends messages when it likes. `Ok(())` ends the call with OK; `Err(status)`
    /// ends it with that status (any code, OK included, and its metadata as trailers).
    ///
    /// The usual refinements still apply around it: `delay` before it starts, `header`s
    /// and `trailer`s added to its own, `abort_after` cutting it off, and `then_status`,
    /// `then_hang` or `then_reset` replacing its ending.
    ///
    /// ```
    /// use grpc_chaos::fake::{CallHandle, Reply};
    /// use grpc_chaos::pb::{HelloReply, HelloRequest};
    ///
    /// // A client-streaming aggregator: one reply at half-close.
    /// let r = Reply::handler(|mut call: CallHandle| async move {
    ///     let mut names = Vec::new();
    ///     while let Some(req) = call.next::<HelloRequest>().await? {
    ///         names.push(req.name);
    ///     }
    ///     call.send(&HelloReply { message: format!("Hello, {}!", names.join(" and ")) }).await;
    ///     Ok(())
    /// });
    /// ```
    pub fn handler<F, Fut>(handler: F) -> Self
    where
        F: Fn(CallHandle) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), Status>> + Send + 'static,
    {
        let mut script = Script::new(Ending::FromHandler);
        script.handler = Some(Handler::new(handler));
        script.wait_for_half_close = false;
        Self::script(script)
    }

    /// Waits this long before sending the response headers (or a Trailers-Only status).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let r = grpc_chaos::fake::Reply::empty().delay(Duration::from_secs(2));
    /// ```
    pub fn delay(self, delay: Duration) -> Self {
        self.map(move |s| s.header_delay = delay)
    }

    /// Adds an ASCII initial-metadata entry. Keys are lowercased; a key or value that is
    /// still invalid makes the call fail with INTERNAL naming it (never a panic).
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty().header("x-region", "eu");
    /// ```
    pub fn header(self, key: &str, value: &str) -> Self {
        let (key, value) = (key.to_string(), value.to_string());
        self.map(move |s| add_ascii(&mut s.headers, &mut s.problems, "header", &key, &value))
    }

    /// Adds a binary initial-metadata entry; `key` must end in `-bin`. Sent as unpadded base64.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty().header_bin("trace-bin", [1u8, 2, 3]);
    /// ```
    pub fn header_bin(self, key: &str, value: impl AsRef<[u8]>) -> Self {
        let (key, value) = (key.to_string(), value.as_ref().to_vec());
        self.map(move |s| add_binary(&mut s.headers, &mut s.problems, "header", &key, &value))
    }

    /// Adds an ASCII trailing-metadata entry, sent with the final status, on success too.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty().trailer("x-cost", "3");
    /// ```
    pub fn trailer(self, key: &str, value: &str) -> Self {
        let (key, value) = (key.to_string(), value.to_string());
        self.map(move |s| add_ascii(&mut s.trailers, &mut s.problems, "trailer", &key, &value))
    }

    /// Adds a binary trailing-metadata entry; `key` must end in `-bin`.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty().trailer_bin("checksum-bin", [0xde, 0xad]);
    /// ```
    pub fn trailer_bin(self, key: &str, value: impl AsRef<[u8]>) -> Self {
        let (key, value) = (key.to_string(), value.as_ref().to_vec());
        self.map(move |s| add_binary(&mut s.trailers, &mut s.problems, "trailer", &key, &value))
    }

    /// Adds a message, sent right after the previous one.
    ///
    /// ```
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::stream().then_message(&HelloReply::default());
    /// ```
    pub fn then_message<M: prost::Message>(self, message: &M) -> Self {
        self.then_message_after(Duration::ZERO, message)
    }

    /// Adds a message, sent `delay` after the previous one (or after the headers).
    ///
    /// ```
    /// use std::time::Duration;
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::stream().then_message_after(Duration::from_millis(5), &HelloReply::default());
    /// ```
    pub fn then_message_after<M: prost::Message>(self, delay: Duration, message: &M) -> Self {
        self.then_bytes_after(delay, message.encode_to_vec())
    }

    /// Adds a message given as encoded bytes, sent `delay` after the previous one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = grpc_chaos::fake::Reply::stream().then_bytes_after(Duration::ZERO, vec![]);
    /// ```
    pub fn then_bytes_after(self, delay: Duration, message: impl Into<Bytes>) -> Self {
        let message = message.into();
        match self.0 {
            // One script (as a responder's reply usually is): the message goes in as it
            // is. The first clone of a `Bytes` made from a `Vec` allocates a shared count,
            // and the journal would keep that allocation for as long as it keeps the call.
            Kind::Script(mut script) => {
                script.messages.push((delay, message));
                Self(Kind::Script(script))
            }
            kind => Self(kind).map(move |s| s.messages.push((delay, message.clone()))),
        }
    }

    /// Ends with this status after the messages (instead of OK).
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::stream().then_status(tonic::Status::data_loss("gone"));
    /// ```
    pub fn then_status(self, status: Status) -> Self {
        self.map(move |s| s.ending = Ending::Status(status.clone()))
    }

    /// Sends only the first `n` messages, then ends at once with `status`, without
    /// waiting for the client to finish sending.
    ///
    /// ```
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::messages(&[HelloReply::default(), HelloReply::default()])
    ///     .abort_after(1, tonic::Status::unavailable("server going away"));
    /// ```
    pub fn abort_after(self, n: usize, status: Status) -> Self {
        self.map(move |s| {
            s.messages.truncate(n);
            s.max_messages = Some(n);
            s.ending = Ending::Status(status.clone());
            s.wait_for_half_close = false;
        })
    }

    /// After the messages, never ends: the call lasts until the client goes away.
    ///
    /// ```
    /// use grpc_chaos::{fake::Reply, pb::HelloReply};
    /// let r = Reply::message(&HelloReply::default()).then_hang();
    /// ```
    pub fn then_hang(self) -> Self {
        self.map(|s| s.ending = Ending::Hang)
    }

    /// After the messages, resets the stream (RST_STREAM) with `reason`.
    ///
    /// ```
    /// use grpc_chaos::{fake::{Reason, Reply}, pb::HelloReply};
    /// let r = Reply::message(&HelloReply::default()).then_reset(Reason::CANCEL);
    /// ```
    pub fn then_reset(self, reason: Reason) -> Self {
        self.map(move |s| s.ending = Ending::Reset(reason))
    }

    /// Waits this long after the last message (or after the headers, or after the
    /// header delay when no headers are sent) before the ending: status, reset or hang.
    ///
    /// ```
    /// use std::time::Duration;
    /// use grpc_chaos::{fake::{Reason, Reply}, pb::HelloReply};
    /// let r = Reply::message(&HelloReply::default()).then_reset(Reason::CANCEL).end_after(Duration::from_millis(20));
    /// ```
    pub fn end_after(self, delay: Duration) -> Self {
        self.map(move |s| s.ending_delay = delay)
    }

    /// Echoes the request's [`INTEROP_ECHO_INITIAL`] in the initial metadata and its
    /// [`INTEROP_ECHO_TRAILING`] in the trailing metadata, unchanged, the way the
    /// interop suite's `custom_metadata` case expects of any server.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty().echo_test_metadata();
    /// ```
    pub fn echo_test_metadata(self) -> Self {
        self.map(|s| s.echo_test_metadata = true)
    }

    /// Ends without waiting for the client to half-close.
    ///
    /// By default the fake behaves like a tonic handler, which reads the whole request
    /// before it answers: the final status waits until the client has finished sending
    /// (so the journal holds every request message). A bidirectional client that keeps
    /// sending until the server ends wants this instead.
    ///
    /// ```
    /// let r = grpc_chaos::fake::Reply::empty().without_waiting_for_half_close();
    /// ```
    pub fn without_waiting_for_half_close(self) -> Self {
        self.map(|s| s.wait_for_half_close = false)
    }

    /// Applies a change to every script this reply may resolve to.
    fn map(self, f: impl Fn(&mut Script) + Clone + Send + Sync + 'static) -> Self {
        Self(self.0.map(f))
    }

    /// Whether resolving needs the first request message.
    pub(super) fn needs_message(&self) -> bool {
        self.0.needs_message()
    }

    /// Picks the script for the next call (advancing sequences and random generators).
    pub(super) fn resolve(&self, request: &CallRequest) -> Script {
        self.0.resolve(request)
    }

    /// A short description for failure messages (names the seed of random replies).
    pub(super) fn describe(&self) -> String {
        self.0.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CallRequest {
        CallRequest {
            method: "/x/Y".into(),
            metadata: Default::default(),
            timeout: None,
            first_message: None,
        }
    }

    #[test]
    fn sequences_repeat_their_last_reply() {
        let r = Reply::sequence([Reply::error(Code::Unavailable, ""), Reply::empty()]);
        let codes: Vec<_> = (0..4)
            .map(|_| match r.resolve(&request()).ending {
                Ending::Status(s) => s.code(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(codes, [Code::Unavailable, Code::Ok, Code::Ok, Code::Ok]);
    }

    #[test]
    fn bad_keys_become_problems_not_panics() {
        let s = Reply::empty()
            .header("User ID", "x")
            .header("ok", "\n")
            .header_bin("nobin", b"x")
            .resolve(&request());
        assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
        let s = Reply::empty().header("User-ID", "7").resolve(&request());
        assert!(s.problems.is_empty());
        assert_eq!(s.headers.get("user-id").unwrap(), "7");
    }
}
