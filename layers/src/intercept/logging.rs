//! Logging through `tracing`: the start of each call, every message each way, and the
//! end, for servers and clients alike.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderName};
use http_body::Frame;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::Level;

use crate::framing::{FrameReader, Message, Step};
use crate::method::MethodShape;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Parsed once: looking a header up by `&str` parses the name on every call.
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `headers.get(name)`, by a scan when the map is small: a response's headers and
/// trailers hold a handful of entries, and comparing a few names costs less than
/// hashing a custom one (measured with callgrind: ~350 instructions a call).
fn lookup<'a>(headers: &'a http::HeaderMap, name: &HeaderName) -> Option<&'a http::HeaderValue> {
    if headers.len() > 8 {
        return headers.get(name);
    }
    headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Turns one message's bytes into text for the log.
type DecodeFn = Arc<Decoder>;
type Decoder = dyn Fn(&[u8]) -> String + Send + Sync;

/// Which end of the call the layer sits on: it decides which way is "received".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }

    /// The direction of the request body as seen from this side.
    fn request_direction(self) -> &'static str {
        match self {
            Side::Server => "received",
            Side::Client => "sent",
        }
    }

    fn response_direction(self) -> &'static str {
        match self {
            Side::Server => "sent",
            Side::Client => "received",
        }
    }
}

/// What the layer knows about one method.
#[derive(Clone, Default)]
struct MethodInfo {
    shape: Option<(bool, bool)>,
    decode_request: Option<DecodeFn>,
    decode_response: Option<DecodeFn>,
}

#[derive(Clone)]
struct Config {
    side: Side,
    redact: Vec<HeaderName>,
    redact_binary: bool,
    methods: HashMap<String, MethodInfo>,
}

/// Logs each call through `tracing`: its start, every message each way, and its end.
///
/// - **Start** (INFO, `"call started"`): the side, the method path, whether it is
///   client- and server-streaming, and the request metadata with redaction. The shape
///   comes from [`streaming`](LoggingLayer::streaming) and [`shapes`](LoggingLayer::shapes)
///   hints; otherwise it is logged as unknown.
/// - **Messages** (DEBUG, `"received message 1 (12 bytes)"`): direction, index from 1,
///   size and the compressed flag, counted by reading the gRPC 5-byte length prefixes as
///   the body frames pass, whatever the service. A [`decode`](LoggingLayer::decode)
///   view adds the content.
/// - **End** (INFO, `"call ended"`): the `grpc-status` (from the trailers, or from the
///   headers of a Trailers-Only response), `grpc-message`, the message counts and the
///   duration. A call dropped before its status (a cancel, a reset) logs that instead.
///
/// `authorization` and every `-bin` value are redacted by default. Events use the target
/// `tonic_layers::intercept::logging`. The levels are checked once per call: with INFO
/// disabled for that target the layer only converts the body types, and with DEBUG
/// disabled it does not parse the message framing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use grpc_chaos::fake::FakeServer;
/// use tonic_layers::intercept::LoggingLayer;
/// use grpc_chaos::pb::{greeter_client::GreeterClient, HelloRequest, HelloReply};
///
/// // A server: tonic::transport::Server::builder().layer(LoggingLayer::new()) …
/// let server_layer = LoggingLayer::new().redact("x-api-key");
/// // A client: the layer around a channel.
/// let fake = FakeServer::in_memory();
/// grpc_chaos::builtin::mount_greeter(&fake);
/// let channel = tower::ServiceBuilder::new()
///     .layer(LoggingLayer::client().decode::<HelloRequest, HelloReply>("/pb.Greeter/SayHello"))
///     .service(fake.channel());
/// let reply = GreeterClient::new(channel).say_hello(HelloRequest { name: "Ada".into() }).await.unwrap();
/// assert_eq!(reply.into_inner().message, "Hello, Ada!");
/// # }
/// ```
#[derive(Clone)]
pub struct LoggingLayer {
    config: Arc<Config>,
}

impl fmt::Debug for LoggingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggingLayer")
            .field("side", &self.config.side)
            .field("redact", &self.config.redact)
            .field("redact_binary", &self.config.redact_binary)
            .field("methods", &self.config.methods.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for LoggingLayer {
    fn default() -> Self {
        Self::with_side(Side::Server)
    }
}

impl LoggingLayer {
    fn with_side(side: Side) -> Self {
        Self {
            config: Arc::new(Config {
                side,
                redact: vec![http::header::AUTHORIZATION],
                redact_binary: true,
                methods: HashMap::new(),
            }),
        }
    }

    /// A layer for a server: the request body is "received", the response "sent".
    ///
    /// ```
    /// let layer = tonic_layers::intercept::LoggingLayer::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The same as [`LoggingLayer::new`], named for symmetry with [`LoggingLayer::client`].
    ///
    /// ```
    /// let layer = tonic_layers::intercept::LoggingLayer::server();
    /// ```
    pub fn server() -> Self {
        Self::with_side(Side::Server)
    }

    /// A layer for a client channel: the request body is "sent", the response "received".
    ///
    /// ```
    /// let layer = tonic_layers::intercept::LoggingLayer::client();
    /// ```
    pub fn client() -> Self {
        Self::with_side(Side::Client)
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Also redacts the values of the header `name` (case-insensitive; an invalid name
    /// is ignored).
    ///
    /// ```
    /// let layer = tonic_layers::intercept::LoggingLayer::new().redact("x-api-key").redact("cookie");
    /// ```
    pub fn redact(mut self, name: &str) -> Self {
        if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
            if !self.config.redact.contains(&name) {
                self.config().redact.push(name);
            }
        }
        self
    }

    /// Replaces the list of redacted names (`authorization` by default) with `names`.
    /// `-bin` values stay redacted unless [`redact_binary(false)`](Self::redact_binary).
    ///
    /// ```
    /// // Log authorization (a test setup with throwaway tokens), redact only cookies.
    /// let layer = tonic_layers::intercept::LoggingLayer::new().redact_only(["cookie"]);
    /// ```
    pub fn redact_only<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.config().redact.clear();
        for name in names {
            self = self.redact(name);
        }
        self
    }

    /// Whether `-bin` values are redacted (the default) or logged as their base64 text.
    ///
    /// ```
    /// let layer = tonic_layers::intercept::LoggingLayer::new().redact_binary(false);
    /// ```
    pub fn redact_binary(mut self, redact: bool) -> Self {
        self.config().redact_binary = redact;
        self
    }

    /// Tells the layer the call shape of `path`, logged at the call's start.
    ///
    /// Without a hint a method's shape is logged as unknown: the HTTP/2 request does not
    /// say whether a call streams. [`shapes`](Self::shapes) takes a whole table.
    ///
    /// ```
    /// let layer = tonic_layers::intercept::LoggingLayer::new()
    ///     .streaming("/shop.Inventory/Watch", false, true);
    /// ```
    pub fn streaming(mut self, path: &str, client_streaming: bool, server_streaming: bool) -> Self {
        self.config()
            .methods
            .entry(path.to_string())
            .or_default()
            .shape = Some((client_streaming, server_streaming));
        self
    }

    /// Tells the layer the call shape of every method in `shapes` (a generated table, for
    /// example the harness's `grpc_chaos::pb::shapes()`).
    ///
    /// ```
    /// use tonic_layers::method::MethodShape;
    /// let layer = tonic_layers::intercept::LoggingLayer::new()
    ///     .shapes([MethodShape::new("/shop.Inventory/Watch").server_streaming(true)]);
    /// ```
    pub fn shapes(mut self, shapes: impl IntoIterator<Item = MethodShape>) -> Self {
        for shape in shapes {
            self = self.streaming(&shape.path, shape.client_streaming, shape.server_streaming);
        }
        self
    }

    /// Logs each message of `path` decoded, with its `Debug` view: requests as `Req`,
    /// responses as `Res`. Compressed messages are logged by size only. Decoding costs a
    /// copy of each message; only configured methods pay it.
    ///
    /// ```
    /// use grpc_chaos::pb::{HelloReply, HelloRequest};
    /// let layer = tonic_layers::intercept::LoggingLayer::new()
    ///     .decode::<HelloRequest, HelloReply>("/pb.Greeter/SayHello");
    /// ```
    pub fn decode<Req, Res>(mut self, path: &str) -> Self
    where
        Req: prost::Message + Default + fmt::Debug + 'static,
        Res: prost::Message + Default + fmt::Debug + 'static,
    {
        let info = self.config().methods.entry(path.to_string()).or_default();
        info.decode_request = Some(Arc::new(decode_as::<Req>));
        info.decode_response = Some(Arc::new(decode_as::<Res>));
        self
    }
}

fn decode_as<M: prost::Message + Default + fmt::Debug>(bytes: &[u8]) -> String {
    match M::decode(bytes) {
        Ok(message) => format!("{message:?}"),
        Err(e) => format!("<not a {}: {e}>", std::any::type_name::<M>()),
    }
}

impl<S> Layer<S> for LoggingLayer {
    type Service = Logging<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Logging {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service [`LoggingLayer`] makes.
///
/// ```
/// use tonic_layers::intercept::{Logging, LoggingLayer};
/// use tower::Layer;
/// let svc: Logging<()> = LoggingLayer::new().layer(());
/// ```
#[derive(Clone)]
pub struct Logging<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for Logging<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logging")
            .field("inner", &self.inner)
            .field("side", &self.config.side)
            .finish()
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for Logging<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
    S::Error: fmt::Display,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Checked once per call: disabled, the layer only converts the body type (a
        // no-op for tonic's own body) and allocates nothing.
        if !tracing::enabled!(Level::INFO) {
            return ResponseFuture {
                inner: self.inner.call(request.map(tonic::body::Body::new)),
                log: None,
            };
        }
        let messages = tracing::enabled!(Level::DEBUG);
        let config = &self.config;
        let path = request.uri().path();
        let info = if config.methods.is_empty() {
            None
        } else {
            config.methods.get(path)
        };
        let shape = info.and_then(|i| i.shape);
        let log = Arc::new(CallLog {
            side: config.side,
            uri: request.uri().clone(),
            trace_id: request
                .extensions()
                .get::<super::TraceIdValue>()
                .map(|t| t.0.as_str().into()),
            start: Instant::now(),
            messages,
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        });
        tracing::info!(
            side = config.side.as_str(),
            method = %log.uri.path(),
            trace_id = %Opt(log.trace_id.as_deref()),
            client_streaming = %Known(shape.map(|s| s.0)),
            server_streaming = %Known(shape.map(|s| s.1)),
            metadata = %Redacted { headers: request.headers(), config },
            "call started"
        );
        let request = if messages {
            let decode = info.and_then(|i| i.decode_request.clone());
            request.map(|body| {
                tonic::body::Body::new(LoggedBody::new(body, log.clone(), false, Some(decode)))
            })
        } else {
            request.map(tonic::body::Body::new)
        };
        let decode_response = info.and_then(|i| i.decode_response.clone());
        ResponseFuture {
            inner: self.inner.call(request),
            log: Some((log, messages.then_some(decode_response))),
        }
    }
}

pin_project! {
    /// The future of [`Logging`]: the inner service's response, its body wrapped to log
    /// the messages and the end.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        log: Option<(Arc<CallLog>, Option<Option<DecodeFn>>)>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: fmt::Display,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some((log, decode)) = this.log.take() else {
            return Poll::Ready(result.map(|r| r.map(tonic::body::Body::new)));
        };
        match result {
            Ok(response) => {
                if let Some(code) = lookup(response.headers(), &GRPC_STATUS) {
                    // Trailers-Only: the status is in the headers and there is no body.
                    log.end(
                        Some(code.as_bytes()),
                        lookup(response.headers(), &GRPC_MESSAGE).map(|v| v.as_bytes()),
                    );
                    return Poll::Ready(Ok(response.map(tonic::body::Body::new)));
                }
                Poll::Ready(Ok(response.map(|body| {
                    tonic::body::Body::new(LoggedBody::new(body, log, true, decode))
                })))
            }
            Err(e) => {
                log.fail(&e);
                Poll::Ready(Err(e))
            }
        }
    }
}

/// What one call's log shares between its request and response bodies.
struct CallLog {
    side: Side,
    uri: http::Uri,
    trace_id: Option<Box<str>>,
    start: Instant,
    messages: bool,
    requests: AtomicU64,
    responses: AtomicU64,
    ended: AtomicBool,
}

impl fmt::Debug for CallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallLog")
            .field("method", &self.uri.path())
            .finish_non_exhaustive()
    }
}

impl CallLog {
    /// Logs the end once, with a status code read from `grpc-status`.
    fn end(&self, code: Option<&[u8]>, message: Option<&[u8]>) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let duration = self.start.elapsed();
        let code_number = code
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<i32>().ok());
        let status = Status(code_number);
        let message = message.map(percent_decode).unwrap_or_default();
        if self.messages {
            tracing::info!(
                side = self.side.as_str(),
                method = %self.uri.path(),
                trace_id = %Opt(self.trace_id.as_deref()),
                grpc_status = %status,
                grpc_message = %message,
                requests = self.requests.load(Ordering::Relaxed),
                responses = self.responses.load(Ordering::Relaxed),
                duration = ?duration,
                "call ended: {status} after {duration:?}"
            );
        } else {
            tracing::info!(
                side = self.side.as_str(),
                method = %self.uri.path(),
                trace_id = %Opt(self.trace_id.as_deref()),
                grpc_status = %status,
                grpc_message = %message,
                duration = ?duration,
                "call ended: {status} after {duration:?}"
            );
        }
    }

    /// Logs an end without a status: the call failed below gRPC.
    fn fail(&self, error: &dyn fmt::Display) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let duration = self.start.elapsed();
        tracing::info!(
            side = self.side.as_str(),
            method = %self.uri.path(),
            trace_id = %Opt(self.trace_id.as_deref()),
            error = %error,
            duration = ?duration,
            "call failed without a status after {duration:?}: {error}"
        );
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        if !*self.ended.get_mut() {
            let duration = self.start.elapsed();
            tracing::info!(
                side = self.side.as_str(),
                method = %self.uri.path(),
                trace_id = %Opt(self.trace_id.as_deref()),
                duration = ?duration,
                "call dropped before its status (cancelled or reset) after {duration:?}"
            );
        }
    }
}

/// A `grpc-message` as text: its `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A status code for the log: its name, or what the header held.
struct Status(Option<i32>);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{:?} ({n})", tonic::Code::from_i32(n)),
            None => f.write_str("no grpc-status"),
        }
    }
}

/// A value, or `-`.
struct Opt<'a>(Option<&'a str>);

impl fmt::Display for Opt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.unwrap_or("-"))
    }
}

/// `true`, `false` or `unknown`.
struct Known(Option<bool>);

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(b) => write!(f, "{b}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Metadata for the log, with redacted values replaced. Formatted only when an event is
/// recorded.
struct Redacted<'a> {
    headers: &'a HeaderMap,
    config: &'a Config,
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: ")?;
            let redacted = self.config.redact.contains(name)
                || (self.config.redact_binary && name.as_str().ends_with("-bin"));
            if redacted {
                f.write_str("[redacted]")?;
            } else {
                match value.to_str() {
                    Ok(text) => write!(f, "{text:?}")?,
                    Err(_) => write!(f, "[{} bytes, not ASCII]", value.len())?,
                }
            }
        }
        f.write_str("}")
    }
}

pin_project! {
    /// A body that logs the messages in it and, for a response, the call's end.
    struct LoggedBody<B> {
        #[pin]
        inner: B,
        log: Arc<CallLog>,
        is_response: bool,
        // `None` when messages are not logged (DEBUG disabled).
        reader: Option<FrameReader>,
        decode: Option<DecodeFn>,
    }
}

impl<B> LoggedBody<B> {
    /// `decode` is `None` when messages are not logged, `Some(None)` when they are but
    /// without content.
    fn new(
        inner: B,
        log: Arc<CallLog>,
        is_response: bool,
        decode: Option<Option<DecodeFn>>,
    ) -> Self {
        let (reader, decode) = match decode {
            None => (None, None),
            Some(None) => (Some(FrameReader::new()), None),
            Some(decode) => (Some(FrameReader::capturing()), decode),
        };
        Self {
            inner,
            log,
            is_response,
            reader,
            decode,
        }
    }
}

impl<B> http_body::Body for LoggedBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Some(reader) = this.reader.as_mut() {
                        let log = &**this.log;
                        let direction = if *this.is_response {
                            log.side.response_direction()
                        } else {
                            log.side.request_direction()
                        };
                        let decode = this.decode.as_deref();
                        let total = if *this.is_response {
                            &log.responses
                        } else {
                            &log.requests
                        };
                        let mut chunk = data.chunk();
                        while let Some(step) = reader.read(&mut chunk) {
                            if let Step::Message(m) = step {
                                total.store(m.index(), Ordering::Relaxed);
                                log_message(log, direction, &m, decode);
                            }
                        }
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    if *this.is_response {
                        this.log.end(
                            lookup(trailers, &GRPC_STATUS).map(|v| v.as_bytes()),
                            lookup(trailers, &GRPC_MESSAGE).map(|v| v.as_bytes()),
                        );
                    }
                }
            }
            Some(Err(_)) => {
                if *this.is_response {
                    this.log.fail(&"the response body failed");
                }
            }
            None => {
                if this.reader.as_ref().is_some_and(|r| r.pending() > 0) {
                    tracing::debug!(method = %this.log.uri.path(), "the body ended inside a message");
                }
                if *this.is_response {
                    this.log.end(None, None);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn log_message(log: &CallLog, direction: &str, m: &Message<'_>, decode: Option<&Decoder>) {
    let content = match (decode, m.bytes()) {
        (Some(decode), Some(bytes)) if !m.compressed() => Some(decode(bytes)),
        _ => None,
    };
    let content = content.map_or_else(String::new, |c| format!(": {c}"));
    tracing::debug!(
        method = %log.uri.path(),
        trace_id = %Opt(log.trace_id.as_deref()),
        direction,
        index = m.index(),
        size = m.len(),
        compressed = m.compressed(),
        "{direction} message {} ({} bytes){content}",
        m.index(),
        m.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_authorization_and_binary_values() {
        let layer = LoggingLayer::new().redact("X-Api-Key");
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        headers.insert("x-api-key", "k3y".parse().unwrap());
        headers.insert("trace-bin", "AAEC".parse().unwrap());
        headers.insert("x-tenant", "blue".parse().unwrap());
        let text = Redacted {
            headers: &headers,
            config: &layer.config,
        }
        .to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("k3y") && !text.contains("AAEC"),
            "{text}"
        );
        assert!(text.contains("x-tenant: \"blue\""), "{text}");
        let open = LoggingLayer::new().redact_only([]).redact_binary(false);
        let text = Redacted {
            headers: &headers,
            config: &open.config,
        }
        .to_string();
        assert!(text.contains("s3cret") && text.contains("AAEC"), "{text}");
    }
}
