//! What a `.proto` says of one method that the HTTP/2 request does not: whether each
//! side streams. Logs name it; tables of these come from generated code (the harness
//! builds one from its protos) or from the user.

use std::borrow::Cow;

/// The path of one gRPC method and whether its request and response stream.
///
/// ```
/// use tonic_layers::method::MethodShape;
/// let watch = MethodShape::new("/shop.Inventory/Watch").server_streaming(true);
/// assert!(!watch.client_streaming && watch.server_streaming);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub struct MethodShape {
    /// `/package.Service/Method`.
    pub path: Cow<'static, str>,
    /// Whether the client sends a stream.
    pub client_streaming: bool,
    /// Whether the server answers with a stream.
    pub server_streaming: bool,
}

impl MethodShape {
    /// A unary method at `path` (a `&'static str` or a `String`).
    pub fn new(path: impl Into<Cow<'static, str>>) -> Self {
        Self {
            path: path.into(),
            client_streaming: false,
            server_streaming: false,
        }
    }

    /// Sets whether the client streams.
    pub fn client_streaming(mut self, streams: bool) -> Self {
        self.client_streaming = streams;
        self
    }

    /// Sets whether the server streams.
    pub fn server_streaming(mut self, streams: bool) -> Self {
        self.server_streaming = streams;
        self
    }
}
