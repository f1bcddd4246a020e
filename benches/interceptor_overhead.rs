//! What each interceptor layer costs: a unary Greeter call over the in-memory transport
//! on a current-thread runtime, bare and behind each layer alone and the whole chain,
//! and a server stream of 1,000 messages, bare and logged. Each group prints its ratios
//! to the bare baseline measured in the same run.
//!
//! "sink" subscribers accept the logging layer's events (target `grpc_chaos`) and drop
//! them: they measure the layer itself. "fmt" subscribers format every event to
//! `io::sink()`: they add what writing real log lines costs.

mod common;

use std::time::Duration;

use criterion::Criterion;
use grpc_chaos::deadline::{EnforceDeadlineLayer, PropagateDeadlineLayer};
use grpc_chaos::intercept::{
    AuthLayer, LoggingLayer, PropagateTraceIdLayer, SetTraceIdLayer, StaticTokens,
};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::GreeterServer;
use grpc_chaos::pb::HelloRequest;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Server};
use tonic::Request;
use tower::Layer;

use common::greeter::{HandWritten, STREAM_MESSAGES};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const UNARY: &str = "interceptor_unary";
const STREAM: &str = "interceptor_stream";
const TOKEN: &str = "bench-t0k3n-0123456789abcdef";

/// Accepts the harness's and the layers' events and spans up to a level, and drops them.
struct Sink(tracing::Level);

impl Subscriber for Sink {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.target().starts_with("tonic_layers")
            || metadata.target().starts_with("grpc_chaos"))
            && *metadata.level() <= self.0
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Formats this crate's events at DEBUG into `io::sink()`.
fn fmt_sink() -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "tonic_layers=debug,grpc_chaos=debug",
        ))
        .with_writer(std::io::sink)
        .with_ansi(false)
        .finish()
}

/// A subscriber whose level (WARN) leaves the logging layer disabled.
fn level_off() -> impl Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::sink)
        .finish()
}

fn request() -> Request<HelloRequest> {
    let mut request = Request::new(HelloRequest { name: "Ada".into() });
    // Every variant sends the token, so only the server's layers differ.
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    request
}

fn tokens() -> StaticTokens {
    StaticTokens::new().token(TOKEN, "bench")
}

/// One unary benchmark: `client` called in a loop, with `subscriber` as the thread's
/// default while it runs.
fn unary<C>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    id: &str,
    subscriber: Option<tracing::Dispatch>,
    client: &mut GreeterClient<C>,
) where
    C: tonic::client::GrpcService<tonic::body::Body>,
    C::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <C::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _guard = subscriber.as_ref().map(tracing::dispatcher::set_default);
    c.bench_function(id, |b| b.iter(|| call(rt, client)));
}

fn call<C>(rt: &Runtime, client: &mut GreeterClient<C>)
where
    C: tonic::client::GrpcService<tonic::body::Body>,
    C::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <C::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    rt.block_on(client.say_hello(request())).unwrap();
}

/// A paired check that drift on a shared machine cannot skew: `rounds` of `n` calls of
/// `base` then `n` of `other`, alternating, and the median of the per-round ratios.
fn paired(label: &str, n: usize, base: &mut dyn FnMut(), other: &mut dyn FnMut()) {
    const ROUNDS: usize = 31;
    let mut ratios = Vec::with_capacity(ROUNDS);
    let mut extra = Vec::with_capacity(ROUNDS);
    let time = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    for _ in 0..ROUNDS {
        let b = time(base);
        let o = time(other);
        ratios.push(o / b);
        extra.push(o - b);
    }
    ratios.sort_by(f64::total_cmp);
    extra.sort_by(f64::total_cmp);
    println!(
        "paired {label}: {:.3}x, {:+.0} ns per call (median of {ROUNDS} alternating rounds of {n})",
        ratios[ROUNDS / 2],
        extra[ROUNDS / 2]
    );
}

/// Which subscriber a set of measurements runs under. Each set has its own bare
/// baseline: a subscriber slows h2, hyper and tower's own `tracing` call sites too, and
/// that is not the layers' cost. Sets run one after another, never interleaved, so the
/// callsite caches stay the same within a set. The measurements without a subscriber
/// (trace id, auth) run first, before any subscriber was ever set.
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

fn chain_server() -> Channel {
    memory::serve(|incoming| {
        Server::builder()
            .layer(
                tower::ServiceBuilder::new()
                    .layer(SetTraceIdLayer::new())
                    .layer(LoggingLayer::new())
                    .layer(AuthLayer::new(tokens()))
                    .layer(EnforceDeadlineLayer::new())
                    .into_inner(),
            )
            .add_service(GreeterServer::new(HandWritten))
            .serve_with_incoming(incoming)
    })
}

type ChainClient = GreeterClient<
    grpc_chaos::intercept::PropagateTraceId<
        grpc_chaos::deadline::PropagateDeadline<grpc_chaos::intercept::Logging<Channel>>,
    >,
>;

fn chain_client(channel: Channel) -> ChainClient {
    GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(PropagateTraceIdLayer::new())
            .layer(PropagateDeadlineLayer::new())
            .layer(LoggingLayer::client())
            .service(channel),
    )
}

fn bench_unary(c: &mut Criterion, rt: &Runtime) {
    let _enter = rt.enter();
    let plain = || GreeterServer::new(HandWritten);
    let bare: Channel = memory::serve(|incoming| {
        Server::builder()
            .add_service(plain())
            .serve_with_incoming(incoming)
    });
    let trace: Channel = memory::serve(|incoming| {
        Server::builder()
            .layer(SetTraceIdLayer::new())
            .add_service(plain())
            .serve_with_incoming(incoming)
    });
    let logged: Channel = memory::serve(|incoming| {
        Server::builder()
            .layer(LoggingLayer::new())
            .add_service(plain())
            .serve_with_incoming(incoming)
    });
    let auth: Channel = memory::serve(|incoming| {
        Server::builder()
            .layer(AuthLayer::new(tokens()))
            .add_service(plain())
            .serve_with_incoming(incoming)
    });
    let chain = chain_server();

    let mut bare = GreeterClient::new(bare);
    let mut trace = GreeterClient::new(trace);
    let mut auth = GreeterClient::new(auth);
    let mut logged = GreeterClient::new(logged);
    let mut chain = chain_client(chain);
    let mut group = c.benchmark_group(UNARY);
    unary(&mut group, rt, "bare", None, &mut bare);
    unary(&mut group, rt, "trace_id", None, &mut trace);
    unary(&mut group, rt, "auth", None, &mut auth);
    for subscribers in [Subscribers::Sink, Subscribers::Fmt, Subscribers::LevelOff] {
        let dispatch = subscribers.dispatch();
        let id = |name: &str| format!("{name}{}", subscribers.suffix());
        unary(&mut group, rt, &id("bare"), dispatch.clone(), &mut bare);
        unary(
            &mut group,
            rt,
            &id("logging"),
            dispatch.clone(),
            &mut logged,
        );
        unary(&mut group, rt, &id("chain"), dispatch.clone(), &mut chain);
    }
    group.finish();

    // The same comparisons, interleaved (see `paired`).
    let mut base = || call(rt, &mut bare);
    paired("unary trace_id", 200, &mut base, &mut || {
        call(rt, &mut trace)
    });
    paired("unary auth", 200, &mut base, &mut || call(rt, &mut auth));
    {
        let _guard =
            tracing::dispatcher::set_default(&tracing::Dispatch::new(Sink(tracing::Level::INFO)));
        paired("unary logging_sink_info_only", 200, &mut base, &mut || {
            call(rt, &mut logged)
        });
    }
    for subscribers in [Subscribers::Sink, Subscribers::LevelOff] {
        let dispatch = subscribers.dispatch();
        let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
        let suffix = subscribers.suffix();
        paired(
            &format!("unary logging{suffix}"),
            200,
            &mut base,
            &mut || call(rt, &mut logged),
        );
        paired(&format!("unary chain{suffix}"), 200, &mut base, &mut || {
            call(rt, &mut chain)
        });
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

fn read_stream(rt: &Runtime, client: &mut GreeterClient<Channel>) -> usize {
    rt.block_on(async {
        let mut stream = client
            .say_hello_stream(HelloRequest { name: "Ada".into() })
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while stream.message().await.unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, STREAM_MESSAGES);
        n
    })
}

fn bench_stream(c: &mut Criterion, rt: &Runtime) {
    let _enter = rt.enter();
    let bare: Channel = memory::serve(|incoming| {
        Server::builder()
            .add_service(GreeterServer::new(HandWritten))
            .serve_with_incoming(incoming)
    });
    let logged: Channel = memory::serve(|incoming| {
        Server::builder()
            .layer(LoggingLayer::new())
            .add_service(GreeterServer::new(HandWritten))
            .serve_with_incoming(incoming)
    });

    let mut group = c.benchmark_group(STREAM);
    for subscribers in [Subscribers::Sink, Subscribers::Fmt, Subscribers::LevelOff] {
        let dispatch = subscribers.dispatch();
        let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
        let suffix = subscribers.suffix();
        for (name, channel) in [("bare", &bare), ("logged", &logged)] {
            let mut client = GreeterClient::new(channel.clone());
            group.bench_function(format!("{name}{suffix}"), |b| {
                b.iter(|| read_stream(rt, &mut client))
            });
        }
    }
    group.finish();

    let mut bare = GreeterClient::new(bare);
    let mut logged = GreeterClient::new(logged);
    for subscribers in [Subscribers::Sink, Subscribers::LevelOff] {
        let dispatch = subscribers.dispatch();
        let _guard = dispatch.as_ref().map(tracing::dispatcher::set_default);
        paired(
            &format!("stream of {STREAM_MESSAGES} logged{}", subscribers.suffix()),
            5,
            &mut || {
                read_stream(rt, &mut bare);
            },
            &mut || {
                read_stream(rt, &mut logged);
            },
        );
    }
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
    bench_unary(&mut c, &rt);
    bench_stream(&mut c, &rt);
    c.final_summary();
    common::print_ratios(LAYER_ONLY, "bare", &["trace_id", "auth"]);
    common::print_ratios(LAYER_ONLY, "bare_sink", &["logging_sink"]);
    common::print_ratios(LAYER_ONLY, "bare_level_off", &["logging_level_off"]);
    if let Some(round_trip) = common::median_ns(UNARY, "bare") {
        for (base, id) in [
            ("bare", "trace_id"),
            ("bare", "auth"),
            ("bare_sink", "logging_sink"),
            ("bare_level_off", "logging_level_off"),
        ] {
            if let (Some(b), Some(l)) = (
                common::median_ns(LAYER_ONLY, base),
                common::median_ns(LAYER_ONLY, id),
            ) {
                println!(
                    "{LAYER_ONLY}: {id} adds {:.0} ns, {:.1}% of a bare unary round trip",
                    l - b,
                    100.0 * (l - b) / round_trip
                );
            }
        }
    }
    common::print_ratios(UNARY, "bare", &["trace_id", "auth"]);
    for suffix in ["_sink", "_fmt", "_level_off"] {
        let id = |name: &str| format!("{name}{suffix}");
        common::print_ratios(UNARY, &id("bare"), &[&id("logging"), &id("chain")]);
        common::print_ratios(UNARY, "bare", &[&id("bare")]);
    }
    for suffix in ["_sink", "_fmt", "_level_off"] {
        let (bare, logged) = (format!("bare{suffix}"), format!("logged{suffix}"));
        common::print_ratios(STREAM, &bare, &[&logged]);
        if let (Some(b), Some(l)) = (
            common::median_ns(STREAM, &bare),
            common::median_ns(STREAM, &logged),
        ) {
            println!(
                "{STREAM}: {logged} adds {:.1} ns per message",
                (l - b) / STREAM_MESSAGES as f64
            );
        }
    }
}
