//! [`FaultRule`]: which calls a proxy does something to ([`Match`]ers, a seeded
//! percentage), and [`Fault`]: what it does.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::Status;

use crate::fake::{CallRequest, Match, Reason};
use crate::rng::SplitMix64;

/// What the proxy does to a call a rule picks. Every part is optional; a fault with
/// none forwards the call untouched.
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::proxy::Fault;
/// let fault = Fault::new()
///     .delay(Duration::from_millis(200))
///     .abort_after(2, tonic::Status::unavailable("injected"));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a fault does nothing until a rule holds it"]
pub struct Fault {
    pub(crate) delay: Option<Duration>,
    pub(crate) response_delay: Option<Duration>,
    pub(crate) answer: Option<Status>,
    pub(crate) abort_after: Option<(u64, Status)>,
    pub(crate) reset_after: Option<(u64, Reason)>,
    pub(crate) message_delay: Option<(Duration, Option<u64>)>,
    pub(crate) request_message_delay: Option<(Duration, Option<u64>)>,
    pub(crate) timeout: Option<TimeoutEdit>,
    pub(crate) request_headers: HeaderEdit,
    pub(crate) response_headers: HeaderEdit,
    pub(crate) response_trailers: HeaderEdit,
    pub(crate) drop_trailers: bool,
    pub(crate) bandwidth: Option<u64>,
    pub(crate) slice: Option<usize>,
    pub(crate) drop_connection: bool,
}

/// What happens to the `grpc-timeout` the client sent, on its way upstream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TimeoutEdit {
    Strip,
    AtMost(Duration),
    Scale(f64),
}

/// Metadata set (replacing any value) and removed.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeaderEdit {
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderEdit {
    /// Sets `name` (replacing any value it has) on the way through.
    pub(crate) fn set(&mut self, name: HeaderName, value: HeaderValue) {
        self.set.push((name, value));
    }

    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// A metadata key and value the proxy may send: a `-bin` key takes the bytes, base64
/// encoded on the wire.
fn entry(key: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), String> {
    let name =
        crate::metadata::header_name(key, key.ends_with("-bin")).map_err(|e| e.to_string())?;
    let value = if key.ends_with("-bin") {
        HeaderValue::from_str(&crate::metadata::encode_binary(value))
    } else {
        HeaderValue::from_bytes(value)
    }
    .map_err(|e| format!("metadata value for {key}: {e}"))?;
    Ok((name, value))
}

impl Fault {
    /// A fault that does nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits this long before forwarding the call upstream.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Holds the response headers this long once they arrive from upstream.
    pub fn delay_response(mut self, delay: Duration) -> Self {
        self.response_delay = Some(delay);
        self
    }

    /// Answers with this status at once (after any [`delay`](Self::delay)), without
    /// calling the upstream.
    pub fn answer(mut self, status: Status) -> Self {
        self.answer = Some(status);
        self
    }

    /// Passes `n` response messages, then ends the call with `status` (the upstream
    /// call is cancelled).
    pub fn abort_after(mut self, n: u64, status: Status) -> Self {
        self.abort_after = Some((n, status));
        self
    }

    /// Passes `n` response messages, then resets the stream (RST_STREAM) with `reason`.
    pub fn reset_after(mut self, n: u64, reason: Reason) -> Self {
        self.reset_after = Some((n, reason));
        self
    }

    /// Holds response message `nth` (1-based) this long, or every message when `nth`
    /// is `None`.
    pub fn delay_messages(mut self, delay: Duration, nth: Option<u64>) -> Self {
        self.message_delay = Some((delay, nth));
        self
    }

    /// Holds request message `nth` (1-based) this long on its way upstream, or every
    /// message when `nth` is `None`.
    pub fn delay_request_messages(mut self, delay: Duration, nth: Option<u64>) -> Self {
        self.request_message_delay = Some((delay, nth));
        self
    }

    /// Removes the client's `grpc-timeout` before forwarding (the proxy still enforces it).
    pub fn strip_timeout(mut self) -> Self {
        self.timeout = Some(TimeoutEdit::Strip);
        self
    }

    /// Sends upstream a `grpc-timeout` of at most `limit`.
    pub fn timeout_at_most(mut self, limit: Duration) -> Self {
        self.timeout = Some(TimeoutEdit::AtMost(limit));
        self
    }

    /// Sends upstream the client's `grpc-timeout` times `factor` (0 to 1).
    pub fn scale_timeout(mut self, factor: f64) -> Self {
        self.timeout = Some(TimeoutEdit::Scale(factor.clamp(0.0, 1.0)));
        self
    }

    /// Sets a request header on its way upstream (a `-bin` key takes raw bytes).
    ///
    /// # Errors
    /// A key or value gRPC does not allow, named.
    pub fn set_request_header(mut self, key: &str, value: &[u8]) -> Result<Self, String> {
        self.request_headers.set.push(entry(key, value)?);
        Ok(self)
    }

    /// Removes a request header on its way upstream.
    ///
    /// # Errors
    /// A key gRPC does not allow.
    pub fn remove_request_header(mut self, key: &str) -> Result<Self, String> {
        self.request_headers.remove.push(entry(key, b"")?.0);
        Ok(self)
    }

    /// Sets a response header on its way down.
    ///
    /// # Errors
    /// A key or value gRPC does not allow, named.
    pub fn set_response_header(mut self, key: &str, value: &[u8]) -> Result<Self, String> {
        self.response_headers.set.push(entry(key, value)?);
        Ok(self)
    }

    /// Removes a response header on its way down.
    ///
    /// # Errors
    /// A key gRPC does not allow.
    pub fn remove_response_header(mut self, key: &str) -> Result<Self, String> {
        self.response_headers.remove.push(entry(key, b"")?.0);
        Ok(self)
    }

    /// Sets a response trailer on its way down.
    ///
    /// # Errors
    /// A key or value gRPC does not allow, named.
    pub fn set_response_trailer(mut self, key: &str, value: &[u8]) -> Result<Self, String> {
        self.response_trailers.set.push(entry(key, value)?);
        Ok(self)
    }

    /// Removes a response trailer on its way down.
    ///
    /// # Errors
    /// A key gRPC does not allow.
    pub fn remove_response_trailer(mut self, key: &str) -> Result<Self, String> {
        self.response_trailers.remove.push(entry(key, b"")?.0);
        Ok(self)
    }

    /// Drops the response trailers: the client sees the stream end with no status.
    pub fn drop_trailers(mut self) -> Self {
        self.drop_trailers = true;
        self
    }

    /// Passes the response down at most `bytes_per_second` (DATA frame by frame).
    pub fn bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.bandwidth = Some(bytes_per_second.max(1));
        self
    }

    /// Cuts every response DATA frame into pieces of at most `bytes`, each sent as a
    /// frame of its own: a client's reader must reassemble messages across frames.
    pub fn slice(mut self, bytes: usize) -> Self {
        self.slice = Some(bytes.max(1));
        self
    }

    /// Drops the client's whole connection (every call on it) when this call arrives,
    /// after any [`delay`](Self::delay), as a network failure would.
    pub fn drop_connection(mut self) -> Self {
        self.drop_connection = true;
        self
    }

    /// Whether the response must be read message by message.
    pub(crate) fn counts_messages(&self) -> bool {
        self.abort_after.is_some() || self.reset_after.is_some() || self.message_delay.is_some()
    }

    /// Whether the response body passes through untouched.
    pub(crate) fn leaves_body(&self) -> bool {
        !self.counts_messages()
            && !self.drop_trailers
            && self.response_trailers.is_empty()
            && self.bandwidth.is_none()
            && self.slice.is_none()
    }

    /// Whether it does anything at all (a rule whose fault does nothing does not count
    /// against the cap on active faults).
    pub(crate) fn is_active(&self) -> bool {
        // `leaves_body` covers every fault on the response body.
        !self.leaves_body()
            || self.delay.is_some()
            || self.response_delay.is_some()
            || self.request_message_delay.is_some()
            || self.answer.is_some()
            || self.timeout.is_some()
            || !self.request_headers.is_empty()
            || !self.response_headers.is_empty()
            || self.drop_connection
    }
}

impl HeaderEdit {
    /// `set k, k2; remove k3` for a description.
    fn describe(&self, what: &str, parts: &mut Vec<String>) {
        if !self.set.is_empty() {
            let keys: Vec<&str> = self.set.iter().map(|(k, _)| k.as_str()).collect();
            parts.push(format!("set {what} {}", keys.join(" ")));
        }
        if !self.remove.is_empty() {
            let keys: Vec<&str> = self.remove.iter().map(HeaderName::as_str).collect();
            parts.push(format!("remove {what} {}", keys.join(" ")));
        }
    }
}

/// What the fault does, part by part, as the journal and logs give it: `delay 250ms,
/// abort after 2 with Unavailable`; `nothing` for a fault with no part.
///
/// ```
/// use std::time::Duration;
/// use grpc_chaos::proxy::Fault;
/// let fault = Fault::new().delay(Duration::from_millis(250)).delay_messages(Duration::from_secs(1), Some(3));
/// assert_eq!(fault.to_string(), "delay 250ms, delay response message 3 by 1s");
/// ```
impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        let which = |nth: Option<u64>| nth.map_or("every".to_string(), |n| n.to_string());
        if let Some(d) = self.delay {
            parts.push(format!("delay {d:?}"));
        }
        if self.drop_connection {
            parts.push("drop the connection".into());
        }
        if let Some(status) = &self.answer {
            parts.push(format!("answer {:?}", status.code()));
        }
        if let Some((d, nth)) = self.request_message_delay {
            parts.push(format!("delay request message {} by {d:?}", which(nth)));
        }
        match self.timeout {
            Some(TimeoutEdit::Strip) => parts.push("strip grpc-timeout".into()),
            Some(TimeoutEdit::AtMost(d)) => parts.push(format!("grpc-timeout at most {d:?}")),
            Some(TimeoutEdit::Scale(x)) => parts.push(format!("grpc-timeout times {x}")),
            None => {}
        }
        self.request_headers.describe("request header", &mut parts);
        if let Some(d) = self.response_delay {
            parts.push(format!("delay response headers by {d:?}"));
        }
        self.response_headers
            .describe("response header", &mut parts);
        if let Some((d, nth)) = self.message_delay {
            parts.push(format!("delay response message {} by {d:?}", which(nth)));
        }
        if let Some((n, status)) = &self.abort_after {
            parts.push(format!("abort after {n} with {:?}", status.code()));
        }
        if let Some((n, reason)) = self.reset_after {
            parts.push(format!("reset after {n} with {reason}"));
        }
        if let Some(rate) = self.bandwidth {
            parts.push(format!("bandwidth {rate} B/s"));
        }
        if let Some(bytes) = self.slice {
            parts.push(format!("slice frames to {bytes} B"));
        }
        self.response_trailers
            .describe("response trailer", &mut parts);
        if self.drop_trailers {
            parts.push("drop the trailers".into());
        }
        if parts.is_empty() {
            return f.write_str("nothing");
        }
        f.write_str(&parts.join(", "))
    }
}

/// Which calls a [`Fault`] applies to: every matcher holds (the fake's own matchers,
/// such as [`method`](crate::fake::method) and [`metadata`](crate::fake::metadata)), and
/// a seeded roll comes under the percentage.
///
/// ```
/// use grpc_chaos::fake::method;
/// use grpc_chaos::proxy::{Fault, FaultRule};
/// let rule = FaultRule::given(method("/pb.Greeter/SayHello"))
///     .percentage(30.0)
///     .named("slow hello")
///     .with(Fault::new().delay(std::time::Duration::from_millis(200)));
/// ```
#[must_use = "a rule does nothing until a proxy holds it"]
pub struct FaultRule {
    pub(crate) matchers: Vec<Box<dyn Match>>,
    pub(crate) percentage: f64,
    pub(crate) name: Option<String>,
    pub(crate) fault: Fault,
}

impl std::fmt::Debug for FaultRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let matchers: Vec<String> = self.matchers.iter().map(|m| m.describe()).collect();
        f.debug_struct("FaultRule")
            .field("name", &self.name)
            .field("matchers", &matchers)
            .field("percentage", &self.percentage)
            .field("fault", &self.fault)
            .finish()
    }
}

impl FaultRule {
    /// A rule for calls `matcher` accepts, at 100%, doing nothing yet.
    pub fn given(matcher: impl Match) -> Self {
        Self {
            matchers: vec![Box::new(matcher)],
            percentage: 100.0,
            name: None,
            fault: Fault::new(),
        }
    }

    /// A rule for every call.
    pub fn any() -> Self {
        Self::given(crate::fake::any())
    }

    /// Adds a matcher: every one must hold.
    pub fn and(mut self, matcher: impl Match) -> Self {
        self.matchers.push(Box::new(matcher));
        self
    }

    /// Applies to this share of the matching calls (0 to 100), by the proxy's seeded
    /// generator.
    pub fn percentage(mut self, percent: f64) -> Self {
        self.percentage = percent.clamp(0.0, 100.0);
        self
    }

    /// Names the rule in logs.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// What the rule does.
    pub fn with(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// Its name, or its matchers when it has none.
    pub(crate) fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let matchers: Vec<String> = self.matchers.iter().map(|m| m.describe()).collect();
        matchers.join(" and ")
    }

    /// Whether a matcher of the rule reads the first request message.
    pub(crate) fn needs_message(&self) -> bool {
        self.matchers.iter().any(|m| m.needs_message())
    }

    /// Whether every matcher that does not read the message holds.
    pub(crate) fn could_pick_without_message(&self, call: &CallRequest) -> bool {
        self.matchers
            .iter()
            .filter(|m| !m.needs_message())
            .all(|m| m.matches(call))
    }

    /// Whether the rule picks this call; `rng` rolls its percentage.
    pub(crate) fn picks(&self, call: &CallRequest, rng: &mut SplitMix64) -> bool {
        self.matchers.iter().all(|m| m.matches(call))
            && (self.percentage >= 100.0 || rng.next_f64() * 100.0 < self.percentage)
    }
}
