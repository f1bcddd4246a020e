//! The bench kit as a user would use it (`grpc_chaos::bench`): a tonic interceptor that
//! adds a header and a tower layer that counts response messages, each measured against
//! the same rig without it, in criterion and as a paired ratio.
//!
//! `cargo bench --bench kit_example`

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use criterion::Criterion;
use grpc_chaos::bench::Bench;

// ---- The user's own code: what is being measured. ----

/// Adds `x-tenant: blue` to every call.
fn add_tenant(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    request
        .metadata_mut()
        .insert("x-tenant", "blue".parse().unwrap());
    Ok(request)
}

/// Counts the response messages (HTTP/2 data frames) of every call through it.
#[derive(Clone, Default)]
struct CountMessagesLayer(Arc<AtomicU64>);

impl<S> tower::Layer<S> for CountMessagesLayer {
    type Service = CountMessages<S>;
    fn layer(&self, inner: S) -> CountMessages<S> {
        CountMessages(inner, self.0.clone())
    }
}

#[derive(Clone)]
struct CountMessages<S>(S, Arc<AtomicU64>);

type Fut<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S, R> tower::Service<R> for CountMessages<S>
where
    S: tower::Service<R, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Counted>;
    type Error = S::Error;
    type Future = Fut<Self::Response, S::Error>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, request: R) -> Self::Future {
        let (call, count) = (self.0.call(request), self.1.clone());
        Box::pin(async move { Ok(call.await?.map(|body| Counted(body, count))) })
    }
}

struct Counted(tonic::body::Body, Arc<AtomicU64>);

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = tonic::Status;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        let frame = Pin::new(&mut self.0).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &frame
            && f.is_data()
        {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
        frame
    }
}

// ---- The bench: the kit does the rest. ----

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let header = Bench::unary().client_interceptor(add_tenant).start();
    c.bench_function("kit/unary bare", |b| b.iter(|| header.baseline()));
    c.bench_function("kit/unary add_tenant", |b| b.iter(|| header.candidate()));
    let counting = Bench::server_streaming(100)
        .client_layer(CountMessagesLayer::default())
        .start();
    c.bench_function("kit/stream bare", |b| b.iter(|| counting.baseline()));
    c.bench_function("kit/stream counted", |b| b.iter(|| counting.candidate()));
    c.final_summary();
    println!("add_tenant (client interceptor): {}", header.paired());
    println!(
        "CountMessagesLayer (100-message stream): {}",
        counting.paired()
    );
}
