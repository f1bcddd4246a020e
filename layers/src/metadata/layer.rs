//! A size check on request metadata, for servers and for client channels.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tower::{Layer, Service};

use super::{header_list_size, DEFAULT_SIZE_LIMIT};

type GrpcResponse = http::Response<tonic::body::Body>;

/// Answers a request whose header list is over a limit with RESOURCE_EXHAUSTED, on the
/// server (instead of HTTP 431 or a GOAWAY that kills the connection; raise the server's
/// HTTP/2 `max_header_list_size` above the limit so the request reaches this layer) or
/// on a client channel (the call fails before it is sent).
///
/// ```
/// use tonic_layers::metadata::MetadataLimitLayer;
/// let layer = MetadataLimitLayer::new(); // 8 KiB, the spec's suggestion
/// let layer = MetadataLimitLayer::with_limit(16 * 1024);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct MetadataLimitLayer {
    limit: usize,
}

impl Default for MetadataLimitLayer {
    fn default() -> Self {
        Self {
            limit: DEFAULT_SIZE_LIMIT,
        }
    }
}

impl MetadataLimitLayer {
    /// The spec's 8 KiB limit.
    ///
    /// ```
    /// let layer = tonic_layers::metadata::MetadataLimitLayer::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A limit of `bytes`, counted as HTTP/2 counts a header list.
    ///
    /// ```
    /// let layer = tonic_layers::metadata::MetadataLimitLayer::with_limit(4096);
    /// ```
    pub fn with_limit(bytes: usize) -> Self {
        Self { limit: bytes }
    }
}

impl<S> Layer<S> for MetadataLimitLayer {
    type Service = MetadataLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetadataLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`MetadataLimitLayer`] makes.
///
/// ```
/// use tonic_layers::metadata::{MetadataLimit, MetadataLimitLayer};
/// use tower::Layer;
/// let svc: MetadataLimit<()> = MetadataLimitLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct MetadataLimit<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<http::Request<B>> for MetadataLimit<S>
where
    S: Service<http::Request<B>, Response = GrpcResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<GrpcResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Err(status) = check_request_size(request.headers(), self.limit) {
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        Box::pin(self.inner.call(request))
    }
}

/// The check [`MetadataLimit`] applies to a request's headers: RESOURCE_EXHAUSTED when
/// they are over `limit` bytes as HTTP/2 counts them. Servers that read requests
/// themselves, such as the harness's fake, call it to apply the same rule.
///
/// # Errors
/// The status the call is refused with.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-big", "x".repeat(100).parse().unwrap());
/// assert!(tonic_layers::metadata::check_request_size(&headers, 1024).is_ok());
/// let status = tonic_layers::metadata::check_request_size(&headers, 64).unwrap_err();
/// assert_eq!(status.code(), tonic::Code::ResourceExhausted);
/// assert!(status.message().contains("137 bytes"));
/// ```
pub fn check_request_size(headers: &http::HeaderMap, limit: usize) -> Result<(), Status> {
    let size = header_list_size(headers);
    if size > limit {
        return Err(Status::resource_exhausted(format!(
            "request metadata is {size} bytes as HTTP/2 counts it, over the limit of {limit}"
        )));
    }
    Ok(())
}
