//! Trace ids: read or generate on the server, propagate on the client.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::Entry;
use http::{HeaderName, HeaderValue};
use tokio::task::futures::TaskLocalFuture;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;

use crate::rng::SplitMix64;

/// The header trace ids travel in by default, as in the walkthrough.
pub const DEFAULT_TRACE_HEADER: &str = "trace-id";

tokio::task_local! {
    // Shared, not copied: the layer hands the same id to the call's scope, its
    // synchronous `call` and the span.
    static CURRENT: Arc<str>;
}

/// The trace id of the call being served on this task, if any.
///
/// ```
/// assert_eq!(tonic_layers::intercept::current_trace_id(), None);
/// ```
pub fn current_trace_id() -> Option<String> {
    CURRENT.try_with(|id| id.to_string()).ok()
}

/// Runs `work` with `id` as [`current_trace_id`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let id = tonic_layers::intercept::with_trace_id("t-1".into(), async { tonic_layers::intercept::current_trace_id() }).await;
/// assert_eq!(id.as_deref(), Some("t-1"));
/// # }
/// ```
pub async fn with_trace_id<F: Future>(id: String, work: F) -> F::Output {
    CURRENT.scope(id.into(), work).await
}

/// The trace id of a call, in its request extensions.
///
/// The id is shared, not copied: the extension, [`current_trace_id`]'s scope and the
/// call's span hold the same allocation.
///
/// ```
/// let id = tonic_layers::intercept::TraceId("abc".into());
/// assert_eq!(id.as_str(), "abc");
/// assert_eq!(id.to_string(), "abc");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TraceId(pub Arc<str>);

impl TraceId {
    /// The id as text.
    ///
    /// ```
    /// assert_eq!(tonic_layers::intercept::TraceId("t-1".into()).as_str(), "t-1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new random id: 32 lowercase hex digits, unique within the process.
///
/// The process seeds once from the clock; each id then mixes a counter through
/// SplitMix64, so a call pays no clock read and no formatting machinery.
fn generate() -> [[u8; 2]; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SplitMix64::process_seed();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut rng = SplitMix64::new(seed ^ n.rotate_left(32));
    // Sixteen digits in one cache line: a 256-entry table of digit pairs took fewer
    // instructions but missed the cache on most calls (callgrind's cache simulation).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    let mut digits = [[0u8; 2]; 16];
    for (pair, byte) in digits.iter_mut().zip(bits.to_be_bytes()) {
        *pair = [HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]];
    }
    digits
}

/// `generate`'s digits as text: they are ASCII, so the conversion cannot fail.
fn as_text(digits: &[[u8; 2]; 16]) -> &str {
    std::str::from_utf8(digits.as_flattened()).unwrap_or_default()
}

fn header_name(name: &str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes()).unwrap_or(HeaderName::from_static(DEFAULT_TRACE_HEADER))
}

/// The id in a request's trace header, or (when it is missing, empty or not text) a
/// generated one, set in the header: one look-up of the header either way.
fn read_or_generate(header: Entry<'_, HeaderValue>) -> Arc<str> {
    if let Entry::Occupied(given) = &header
        && let Ok(id) = given.get().to_str()
        && !id.is_empty()
    {
        return id.into();
    }
    let digits = generate();
    // Hex digits are always a valid header value.
    if let Ok(value) = HeaderValue::from_bytes(digits.as_flattened()) {
        match header {
            Entry::Occupied(mut given) => {
                given.insert(value);
            }
            Entry::Vacant(missing) => {
                missing.insert(value);
            }
        }
    }
    as_text(&digits).into()
}

/// Reads or generates each call's trace id on a server.
///
/// [`current_trace_id`] and the span cover the handler's future (and inner layers'
/// `call`). A response stream is polled by hyper after the handler has returned, outside
/// that scope: code in a stream should take the id from the request's [`TraceId`]
/// before returning the stream.
///
/// ```
/// let layer = tonic_layers::intercept::SetTraceIdLayer::new().header("x-trace-id");
/// // tonic::transport::Server::builder().layer(layer) …
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct SetTraceIdLayer {
    header: HeaderName,
}

impl Default for SetTraceIdLayer {
    fn default() -> Self {
        Self {
            header: HeaderName::from_static(DEFAULT_TRACE_HEADER),
        }
    }
}

impl SetTraceIdLayer {
    /// Reads `trace-id`.
    ///
    /// ```
    /// let layer = tonic_layers::intercept::SetTraceIdLayer::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads another header (an invalid name keeps `trace-id`).
    ///
    /// ```
    /// let layer = tonic_layers::intercept::SetTraceIdLayer::new().header("x-request-id");
    /// ```
    pub fn header(mut self, name: &str) -> Self {
        self.header = header_name(name);
        self
    }
}

impl<S> Layer<S> for SetTraceIdLayer {
    type Service = SetTraceId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetTraceId {
            inner,
            header: self.header.clone(),
        }
    }
}

/// The service [`SetTraceIdLayer`] makes.
///
/// ```
/// use tonic_layers::intercept::{SetTraceId, SetTraceIdLayer};
/// use tower::Layer;
/// let svc: SetTraceId<()> = SetTraceIdLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct SetTraceId<S> {
    inner: S,
    header: HeaderName,
}

impl<S, B> Service<http::Request<B>> for SetTraceId<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let shared = read_or_generate(request.headers_mut().entry(&self.header));
        request.extensions_mut().insert(TraceId(shared.clone()));
        let span =
            tracing::info_span!("grpc_call", trace_id = %shared, method = %request.uri().path());
        // Inner layers' synchronous `call` code sees the id and the span too.
        let inner = &mut self.inner;
        let future = span.in_scope(|| CURRENT.sync_scope(shared.clone(), || inner.call(request)));
        ResponseFuture {
            inner: CURRENT.scope(shared, future).instrument(span),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SetTraceId`]: the inner service's, with the call's trace id as
    /// [`current_trace_id`] and its span entered whenever it is polled.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Instrumented<TaskLocalFuture<Arc<str>, F>>,
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Adds the current trace id to outbound calls that do not carry one.
///
/// ```
/// let layer = tonic_layers::intercept::PropagateTraceIdLayer::new();
/// // tower::ServiceBuilder::new().layer(layer).service(channel)
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct PropagateTraceIdLayer {
    header: HeaderName,
}

impl Default for PropagateTraceIdLayer {
    fn default() -> Self {
        Self {
            header: HeaderName::from_static(DEFAULT_TRACE_HEADER),
        }
    }
}

impl PropagateTraceIdLayer {
    /// Sends `trace-id`.
    ///
    /// ```
    /// let layer = tonic_layers::intercept::PropagateTraceIdLayer::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends another header (an invalid name keeps `trace-id`).
    ///
    /// ```
    /// let layer = tonic_layers::intercept::PropagateTraceIdLayer::new().header("x-request-id");
    /// ```
    pub fn header(mut self, name: &str) -> Self {
        self.header = header_name(name);
        self
    }
}

impl<S> Layer<S> for PropagateTraceIdLayer {
    type Service = PropagateTraceId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateTraceId {
            inner,
            header: self.header.clone(),
        }
    }
}

/// The service [`PropagateTraceIdLayer`] makes.
///
/// ```
/// use tonic_layers::intercept::{PropagateTraceId, PropagateTraceIdLayer};
/// use tower::Layer;
/// let svc: PropagateTraceId<()> = PropagateTraceIdLayer::new().layer(());
/// ```
#[derive(Clone, Debug)]
pub struct PropagateTraceId<S> {
    inner: S,
    header: HeaderName,
}

impl<S, B> Service<http::Request<B>> for PropagateTraceId<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !request.headers().contains_key(&self.header)
            && let Some(value) = CURRENT
                .try_with(|id| HeaderValue::from_str(id))
                .ok()
                .and_then(Result::ok)
        {
            request.headers_mut().insert(self.header.clone(), value);
        }
        self.inner.call(request)
    }
}

/// A metadata key for an interceptor (an invalid or `-bin` name keeps `trace-id`).
fn metadata_key(name: &str) -> AsciiMetadataKey {
    AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
        .unwrap_or(AsciiMetadataKey::from_static(DEFAULT_TRACE_HEADER))
}

/// The client-side tonic [`Interceptor`](tonic::service::Interceptor) form of
/// [`PropagateTraceIdLayer`], made by [`propagate_trace_id_interceptor`].
///
/// ```
/// use tonic_layers::intercept::propagate_trace_id_interceptor;
/// let interceptor = propagate_trace_id_interceptor().header("x-request-id");
/// ```
#[derive(Clone, Debug)]
pub struct PropagateTraceIdInterceptor {
    key: AsciiMetadataKey,
}

impl PropagateTraceIdInterceptor {
    /// Sends another header (an invalid name keeps `trace-id`).
    ///
    /// ```
    /// let interceptor = tonic_layers::intercept::propagate_trace_id_interceptor().header("x-request-id");
    /// ```
    pub fn header(mut self, name: &str) -> Self {
        self.key = metadata_key(name);
        self
    }
}

/// Adds the current trace id ([`current_trace_id`]) to outbound calls that do not carry
/// one: `GreeterClient::with_interceptor(channel, propagate_trace_id_interceptor())`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tonic_layers::intercept::{propagate_trace_id_interceptor, with_trace_id};
/// use tonic::service::Interceptor;
///
/// let mut interceptor = propagate_trace_id_interceptor();
/// let request = with_trace_id("abc".into(), async { interceptor.call(tonic::Request::new(())) })
///     .await
///     .unwrap();
/// assert_eq!(request.metadata().get("trace-id").unwrap(), "abc");
/// # }
/// ```
pub fn propagate_trace_id_interceptor() -> PropagateTraceIdInterceptor {
    PropagateTraceIdInterceptor {
        key: AsciiMetadataKey::from_static(DEFAULT_TRACE_HEADER),
    }
}

impl tonic::service::Interceptor for PropagateTraceIdInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if !request.metadata().contains_key(&self.key)
            && let Some(value) = CURRENT
                .try_with(|id| AsciiMetadataValue::try_from(&**id))
                .ok()
                .and_then(Result::ok)
        {
            request.metadata_mut().insert(self.key.clone(), value);
        }
        Ok(request)
    }
}

/// The server-side tonic [`Interceptor`](tonic::service::Interceptor) form of
/// [`SetTraceIdLayer`], made by [`trace_id_interceptor`]: it reads or generates the id and
/// puts a [`TraceId`] in the request extensions.
///
/// An interceptor cannot wrap the handler's future, so it cannot set
/// [`current_trace_id`] or a span: use [`SetTraceIdLayer`] for those.
///
/// ```
/// let interceptor = tonic_layers::intercept::trace_id_interceptor().header("x-request-id");
/// ```
#[derive(Clone, Debug)]
pub struct TraceIdInterceptor {
    key: AsciiMetadataKey,
}

impl TraceIdInterceptor {
    /// Reads another header (an invalid name keeps `trace-id`).
    ///
    /// ```
    /// let interceptor = tonic_layers::intercept::trace_id_interceptor().header("x-request-id");
    /// ```
    pub fn header(mut self, name: &str) -> Self {
        self.key = metadata_key(name);
        self
    }
}

/// Reads or generates each call's trace id in a tonic interceptor:
/// `GreeterServer::with_interceptor(svc, trace_id_interceptor())`.
///
/// ```
/// use tonic_layers::intercept::{trace_id_interceptor, TraceId};
/// use tonic::service::Interceptor;
///
/// let request = trace_id_interceptor().call(tonic::Request::new(())).unwrap();
/// let id = request.extensions().get::<TraceId>().unwrap();
/// assert_eq!(id.0.len(), 32);
/// assert_eq!(request.metadata().get("trace-id").unwrap(), id.as_str());
/// ```
pub fn trace_id_interceptor() -> TraceIdInterceptor {
    TraceIdInterceptor {
        key: AsciiMetadataKey::from_static(DEFAULT_TRACE_HEADER),
    }
}

impl tonic::service::Interceptor for TraceIdInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let given = request
            .metadata()
            .get(&self.key)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(Arc::<str>::from);
        let id = match given {
            Some(id) => id,
            None => {
                let digits = generate();
                if let Ok(value) = AsciiMetadataValue::try_from(digits.as_flattened()) {
                    request.metadata_mut().insert(self.key.clone(), value);
                }
                as_text(&digits).into()
            }
        };
        request.extensions_mut().insert(TraceId(id));
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_128_bits_in_lowercase_hex_and_differ() {
        let (a, b) = (generate(), generate());
        let (a, b) = (as_text(&a), as_text(&b));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let bits = u128::from_str_radix(a, 16).unwrap();
        assert_eq!(format!("{bits:032x}"), a);
    }
}
