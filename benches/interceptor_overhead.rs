//! What each interceptor layer costs, measured with the bench kit (`grpc_chaos::bench`):
//! a unary Greeter call over the in-memory transport on a current-thread runtime, bare
//! and behind each layer alone and the whole chain, and a server stream of 1,000
//! messages, bare and logged. Each prints criterion's figures and a paired ratio to its
//! own bare baseline, measured in the same run. The layers alone, around a
//! `service_fn` with no transport, are measured too (`layer_only`).
//!
//! "sink" subscribers accept the logging layer's events (target `grpc_chaos`) and drop
//! them: they measure the layer itself. "fmt" subscribers format every event to
//! `io::sink()`: they add what writing real log lines costs.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::bench::Bench;
use grpc_chaos::deadline::{EnforceDeadlineLayer, PropagateDeadlineLayer};
use grpc_chaos::intercept::{
    AuthLayer, LoggingLayer, PropagateTraceIdLayer, SetTraceIdLayer, StaticTokens,
};
use tokio::runtime::Runtime;
use tower::Layer;

use common::subscribers::{fmt_sink, level_off, Sink};

const STREAM_MESSAGES: usize = 1_000;
const TOKEN: &str = "bench-t0k3n-0123456789abcdef";

fn tokens() -> StaticTokens {
    StaticTokens::new().token(TOKEN, "bench")
}

/// Every comparison: a name and the rig with the layers under test. Each has its own bare
/// baseline under the same subscriber: a subscriber slows h2, hyper and tower's own
/// `tracing` call sites too, and that is not the layers' cost. They run one after
/// another, so the callsite caches stay the same within each; the ones without a
/// subscriber run first, before any subscriber was ever set.
fn cases() -> Vec<(String, Bench)> {
    // Every call sends the token, so that only the server's layers differ.
    let unary = || Bench::unary().metadata("authorization", &format!("Bearer {TOKEN}"));
    let mut cases = vec![
        (
            "unary trace_id".to_string(),
            unary().server_layer(SetTraceIdLayer::new()),
        ),
        (
            "unary auth".to_string(),
            unary().server_layer(AuthLayer::new(tokens())),
        ),
    ];
    for subscribers in [Subscribers::Sink, Subscribers::Fmt, Subscribers::LevelOff] {
        let suffix = subscribers.suffix();
        let with = |bench: Bench| match subscribers.dispatch() {
            Some(dispatch) => bench.subscriber(dispatch),
            None => bench,
        };
        cases.push((
            format!("unary logging{suffix}"),
            with(unary().server_layer(LoggingLayer::new())),
        ));
        let server_chain = tower::ServiceBuilder::new()
            .layer(SetTraceIdLayer::new())
            .layer(LoggingLayer::new())
            .layer(AuthLayer::new(tokens()))
            .layer(EnforceDeadlineLayer::new())
            .into_inner();
        let client_chain = tower::ServiceBuilder::new()
            .layer(PropagateTraceIdLayer::new())
            .layer(PropagateDeadlineLayer::new())
            .layer(LoggingLayer::client())
            .into_inner();
        cases.push((
            format!("unary chain{suffix}"),
            with(
                unary()
                    .server_layer(server_chain)
                    .client_layer(client_chain),
            ),
        ));
        if !matches!(subscribers, Subscribers::Fmt) {
            cases.push((
                format!("stream of {STREAM_MESSAGES} logged{suffix}"),
                with(Bench::server_streaming(STREAM_MESSAGES).server_layer(LoggingLayer::new())),
            ));
        }
    }
    cases
}

/// Which subscriber a set of measurements runs under (see [`cases`]).
#[derive(Clone, Copy)]
enum Subscribers {
    /// [`Sink`]: the logging layer's events are built and dropped.
    Sink,
    /// [`fmt_sink`]: the events are formatted into `io::sink()`.
    Fmt,
    /// [`level_off`]: the logging layer's level is disabled.
    LevelOff,
}

impl Subscribers {
    fn dispatch(self) -> Option<tracing::Dispatch> {
        match self {
            Subscribers::Sink => Some(tracing::Dispatch::new(Sink(tracing::Level::TRACE))),
            Subscribers::Fmt => Some(tracing::Dispatch::new(fmt_sink())),
            Subscribers::LevelOff => Some(tracing::Dispatch::new(level_off())),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Subscribers::Sink => "_sink",
            Subscribers::Fmt => "_fmt",
            Subscribers::LevelOff => "_level_off",
        }
    }
}

const LAYER_ONLY: &str = "layer_only";

fn frame(message: &[u8]) -> bytes::Bytes {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out.into()
}

/// A unary call's request as the server's layers get it: one message, the token.
fn raw_request() -> http::Request<tonic::body::Body> {
    http::Request::post("/pb.Greeter/SayHello")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(tonic::body::Body::new(http_body_util::Full::new(frame(
            b"\n\x03Ada",
        ))))
        .unwrap()
}

/// Reads the request, answers one message and `grpc-status: 0` trailers.
async fn raw_handler(
    request: http::Request<tonic::body::Body>,
) -> Result<http::Response<tonic::body::Body>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let _ = request.into_body().collect().await;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let frames = [
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(frame(b"\n\x0bHello, Ada!"))),
        Ok(http_body::Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(tokio_stream::iter(frames));
    Ok(http::Response::new(tonic::body::Body::new(body)))
}

fn layer_only<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    id: &str,
    mut svc: S,
) where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    group.bench_function(id, |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = svc
                    .ready()
                    .await
                    .unwrap()
                    .call(raw_request())
                    .await
                    .unwrap();
                response.into_body().collect().await.unwrap()
            })
        })
    });
}

/// The layers without a network: what each adds to one unary call's request and
/// response (one message each, then trailers) around a `service_fn`. On a busy shared
/// machine this is steadier than the difference of two round trips.
fn bench_layer_only(c: &mut Criterion, rt: &Runtime) {
    let handler = || tower::service_fn(raw_handler);
    let mut group = c.benchmark_group(LAYER_ONLY);
    layer_only(&mut group, rt, "bare", handler());
    layer_only(
        &mut group,
        rt,
        "trace_id",
        SetTraceIdLayer::new().layer(handler()),
    );
    layer_only(
        &mut group,
        rt,
        "auth",
        AuthLayer::new(tokens()).layer(handler()),
    );
    for subscribers in [Subscribers::Sink, Subscribers::LevelOff] {
        let dispatch = subscribers.dispatch();
        let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
        let suffix = subscribers.suffix();
        layer_only(&mut group, rt, &format!("bare{suffix}"), handler());
        layer_only(
            &mut group,
            rt,
            &format!("logging{suffix}"),
            LoggingLayer::new().layer(handler()),
        );
    }
    group.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
        .configure_from_args();
    bench_layer_only(&mut c, &rt);
    let mut paired = Vec::new();
    for (name, bench) in cases() {
        let running = bench.start();
        let mut group = c.benchmark_group(name.replace(' ', "_"));
        group.bench_function("bare", |b| b.iter(|| running.baseline()));
        group.bench_function("layered", |b| b.iter(|| running.candidate()));
        group.finish();
        paired.push((name, running.paired()));
    }
    c.final_summary();
    common::print_ratios(LAYER_ONLY, "bare", &["trace_id", "auth"]);
    common::print_ratios(LAYER_ONLY, "bare_sink", &["logging_sink"]);
    common::print_ratios(LAYER_ONLY, "bare_level_off", &["logging_level_off"]);
    for (name, paired) in &paired {
        let group = name.replace(' ', "_");
        common::print_ratios(&group, "bare", &["layered"]);
        println!("paired {name}: {paired}");
    }
}
