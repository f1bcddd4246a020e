//! The call as matchers and responders see it: [`CallRequest`].

use std::time::Duration;

use bytes::Bytes;
use tonic::metadata::MetadataMap;

use crate::deadline::GrpcTimeoutError;
use crate::metadata::decode_base64;

/// What matchers see of a call: its path, metadata, timeout and first request message.
///
/// ```
/// use grpc_chaos::fake::{CallRequest, FakeServer, Reply, Stub};
///
/// # fn f(server: &FakeServer) {
/// // Any closure taking a `&CallRequest` is a matcher.
/// Stub::given(|req: &CallRequest| req.method.ends_with("/SayHello"))
///     .respond_with(Reply::empty())
///     .mount(server);
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct CallRequest {
    /// The request path, `/package.Service/Method`.
    pub method: String,
    /// Every request header.
    pub metadata: MetadataMap,
    /// The `grpc-timeout` header, parsed strictly, when present.
    pub timeout: Option<Result<Duration, GrpcTimeoutError>>,
    /// The first request message, when some mounted stub asked for it (message matchers
    /// do): the fake then reads up to the first message, or the end of the request,
    /// before matching.
    pub first_message: Option<Bytes>,
}

impl CallRequest {
    /// A call to `method` with no metadata, no timeout and no message, for unit tests of
    /// matchers and responders; refine it with the `with_` methods.
    ///
    /// ```
    /// use grpc_chaos::fake::{method, metadata, CallRequest, Match};
    /// use grpc_chaos::pb::HelloRequest;
    /// let req = CallRequest::new("/pb.Greeter/SayHello")
    ///     .with_metadata("x-tenant", "blue")
    ///     .with_grpc_timeout("5S")
    ///     .with_first_message(&HelloRequest { name: "Ada".into() });
    /// assert!(method("/pb.Greeter/SayHello").matches(&req));
    /// assert!(metadata("x-tenant", "blue").matches(&req));
    /// assert_eq!(req.timeout, Some(Ok(std::time::Duration::from_secs(5))));
    /// ```
    pub fn new(method: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            metadata: MetadataMap::new(),
            timeout: None,
            first_message: None,
        }
    }

    /// Adds a request header. A key or value the fake could never receive (invalid as
    /// HTTP/2 metadata) is ignored.
    #[must_use]
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        let mut headers = std::mem::take(&mut self.metadata).into_headers();
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
        self.metadata = MetadataMap::from_headers(headers);
        self
    }

    /// Sets the `grpc-timeout` header's value, parsed strictly as the fake parses it.
    #[must_use]
    pub fn with_grpc_timeout(mut self, value: &str) -> Self {
        self.timeout = Some(crate::deadline::parse_grpc_timeout(value));
        self.with_metadata("grpc-timeout", value)
    }

    /// Sets the first request message, encoded.
    #[must_use]
    pub fn with_first_message(self, message: &impl prost::Message) -> Self {
        self.with_first_message_bytes(message.encode_to_vec())
    }

    /// Sets the first request message as raw bytes.
    #[must_use]
    pub fn with_first_message_bytes(mut self, message: impl Into<Bytes>) -> Self {
        self.first_message = Some(message.into());
        self
    }

    /// Every ASCII value of a metadata key, in order (none for an invalid or `-bin` key).
    ///
    /// ```
    /// # use grpc_chaos::fake::CallRequest;
    /// # fn f(req: &CallRequest) {
    /// let tenants: Vec<&str> = req.ascii_values("x-tenant");
    /// # }
    /// ```
    pub fn ascii_values(&self, key: &str) -> Vec<&str> {
        if key.ends_with("-bin") {
            return Vec::new();
        }
        self.metadata
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// Every decoded value of a `-bin` metadata key, in order (padded or unpadded base64;
    /// values that do not decode are skipped).
    ///
    /// ```
    /// # use grpc_chaos::fake::CallRequest;
    /// # fn f(req: &CallRequest) {
    /// let ids: Vec<Vec<u8>> = req.binary_values("trace-bin");
    /// # }
    /// ```
    pub fn binary_values(&self, key: &str) -> Vec<Vec<u8>> {
        if !key.ends_with("-bin") {
            return Vec::new();
        }
        self.metadata
            .get_all_bin(key)
            .iter()
            .flat_map(|v| {
                // Several values may share one header, joined with ','.
                v.as_encoded_bytes()
                    .split(|b| *b == b',')
                    .filter_map(|part| decode_base64(part.trim_ascii()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
