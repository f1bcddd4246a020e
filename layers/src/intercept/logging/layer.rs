//! [`LoggingLayer`]: the configuration a logging layer carries (side, redaction, method
//! shapes and decoders) and its builder methods.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use http::HeaderName;
use tower::Layer;

use super::Logging;
use crate::method::MethodShape;

/// Turns one message's bytes into text for the log.
pub(super) type DecodeFn = Arc<Decoder>;
pub(super) type Decoder = dyn Fn(&[u8]) -> String + Send + Sync;

/// Which end of the call the layer sits on: it decides which way is "received".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Server,
    Client,
}

impl Side {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }

    /// The direction of the request body as seen from this side.
    pub(super) fn request_direction(self) -> &'static str {
        match self {
            Side::Server => "received",
            Side::Client => "sent",
        }
    }

    pub(super) fn response_direction(self) -> &'static str {
        match self {
            Side::Server => "sent",
            Side::Client => "received",
        }
    }
}

/// What the layer knows about one method.
#[derive(Clone, Default)]
pub(super) struct MethodInfo {
    pub(super) shape: Option<(bool, bool)>,
    pub(super) decode_request: Option<DecodeFn>,
    pub(super) decode_response: Option<DecodeFn>,
}

#[derive(Clone)]
pub(super) struct Config {
    pub(super) side: Side,
    pub(super) redact: Vec<HeaderName>,
    pub(super) redact_binary: bool,
    pub(super) methods: HashMap<String, MethodInfo>,
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
#[must_use = "a layer does nothing until it wraps a service"]
pub struct LoggingLayer {
    pub(super) config: Arc<Config>,
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
        if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            && !self.config.redact.contains(&name)
        {
            self.config().redact.push(name);
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
        Logging::new(inner, self.config.clone())
    }
}
