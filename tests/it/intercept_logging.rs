//! The logging layer, on a tonic server and on a client channel, read back from a
//! subscriber that captures the log on the test's thread.

use grpc_chaos::fake::FakeServer;
use grpc_chaos::intercept::{LoggingLayer, SetTraceIdLayer};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Level;

use crate::support::*;

/// Five greetings per stream, and a joined greeting for a client stream.
struct Streamer;

const GREETINGS: usize = 5;

fn greeting(i: usize, name: &str) -> HelloReply {
    reply(&format!("Hello #{i}, {name}!"))
}

#[tonic::async_trait]
impl Greeter for Streamer {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if name == "nobody" {
            return Err(Status::not_found("no such person"));
        }
        Ok(Response::new(reply(&format!("Hello, {}!", name.len()))))
    }

    type SayHelloStreamStream = ReplyStream;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let name = request.into_inner().name;
        let replies = (1..=GREETINGS).map(move |i| Ok(greeting(i, &name)));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn say_hello_client_stream(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut stream = request.into_inner();
        let mut names = Vec::new();
        while let Some(m) = stream.message().await? {
            names.push(m.name);
        }
        Ok(Response::new(reply(&format!(
            "Hello, {}!",
            names.join(", ")
        ))))
    }

    unused_greeter_methods!(bidi);
}

fn logged_server(layer: LoggingLayer) -> GreeterClient<tonic::transport::Channel> {
    GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .layer(layer)
            .add_service(GreeterServer::new(Streamer))
            .serve_with_incoming(incoming)
    }))
}

/// The "received message 1 (5 bytes)" parts of the lines about `path`, in order.
fn message_log(logs: &LogCapture, path: &str) -> Vec<String> {
    logs.lines_with(&format!("method={path} "))
        .iter()
        .filter_map(|line| {
            let start = line
                .find("received message")
                .or_else(|| line.find("sent message"))?;
            let end = start + line[start..].find(')')? + 1;
            Some(line[start..end].to_string())
        })
        .collect()
}

fn sized(direction: &str, index: usize, message: &impl Message) -> String {
    format!(
        "{direction} message {index} ({} bytes)",
        message.encoded_len()
    )
}

#[grpc_chaos::test]
async fn a_server_logs_every_stream_message_in_order_both_ways() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    // The shapes come from the built-in protos' generated table.
    let mut client = logged_server(LoggingLayer::new().shapes(grpc_chaos::pb::shapes()));

    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let mut replies = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        replies.push(m);
    }
    let names = ["Ada", "Grace", "Barbara"];
    client
        .say_hello_client_stream(tokio_stream::iter(names.map(hello)))
        .await
        .unwrap();

    assert_eq!(replies.len(), GREETINGS);
    let mut want = vec![sized("received", 1, &hello("Ada"))];
    want.extend((1..=GREETINGS).map(|i| sized("sent", i, &greeting(i, "Ada"))));
    assert_eq!(
        message_log(&logs, SAY_HELLO_STREAM),
        want,
        "{}",
        logs.text()
    );
    let mut want: Vec<String> = (0..3)
        .map(|i| sized("received", i + 1, &hello(names[i])))
        .collect();
    want.push(sized("sent", 1, &reply("Hello, Ada, Grace, Barbara!")));
    assert_eq!(
        message_log(&logs, SAY_HELLO_CLIENT_STREAM),
        want,
        "{}",
        logs.text()
    );

    let started = logs.lines_with("call started");
    assert!(started[0].contains(&format!("method={SAY_HELLO_STREAM} ")));
    assert!(started[0].contains("client_streaming=false server_streaming=true"));
    assert!(started[1].contains("client_streaming=true server_streaming=false"));
    let ended = logs.lines_with("call ended");
    assert_eq!(ended.len(), 2, "{}", logs.text());
    assert!(
        ended[0].contains("call ended: Ok (0) after"),
        "{}",
        ended[0]
    );
    assert!(ended[0].contains("requests=1 responses=5"), "{}", ended[0]);
    assert!(ended[1].contains("requests=3 responses=1"), "{}", ended[1]);
}

#[grpc_chaos::test]
async fn a_client_channel_logs_decoded_messages_sent_and_received() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    let fake = FakeServer::in_memory();
    grpc_chaos::builtin::mount_greeter(&fake);
    let layer = LoggingLayer::client()
        .decode::<HelloRequest, HelloReply>(SAY_HELLO_STREAM)
        .streaming("/pb.Greeter/Custom", true, true);
    let mut client = GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(layer)
            .service(fake.channel()),
    );

    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().is_some() {}
    client
        .say_hello_client_stream(tokio_stream::iter(["Ada", "Grace"].map(hello)))
        .await
        .unwrap();

    let lines = logs.lines_with(&format!("method={SAY_HELLO_STREAM} "));
    let messages: Vec<&String> = lines.iter().filter(|l| l.contains(" message ")).collect();
    assert_eq!(messages.len(), 4, "{}", logs.text());
    assert!(messages[0].contains(&format!(
        "{}: HelloRequest {{ name: \"Ada\" }}",
        sized("sent", 1, &hello("Ada"))
    )));
    for (i, line) in messages.iter().enumerate().skip(1) {
        let m = greeting(i, "Ada");
        assert!(
            line.contains(&format!(
                "{}: HelloReply {{ message: \"{}\" }}",
                sized("received", i, &m),
                m.message
            )),
            "{line}"
        );
    }
    assert!(lines[0].contains("side=\"client\""), "{}", lines[0]);
    let mut want: Vec<String> = ["Ada", "Grace"]
        .iter()
        .enumerate()
        .map(|(i, n)| sized("sent", i + 1, &hello(n)))
        .collect();
    want.push(sized("received", 1, &reply("Hello, Ada and Grace!")));
    assert_eq!(
        message_log(&logs, SAY_HELLO_CLIENT_STREAM),
        want,
        "{}",
        logs.text()
    );
}

#[grpc_chaos::test]
async fn a_message_split_over_many_http2_frames_is_counted_once() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    let mut client = logged_server(LoggingLayer::new());
    let big = hello(&"x".repeat(100_000)); // over six 16 KiB DATA frames

    client.say_hello(big.clone()).await.unwrap();

    assert_eq!(
        message_log(&logs, SAY_HELLO),
        [
            sized("received", 1, &big),
            sized("sent", 1, &reply("Hello, 100000!"))
        ]
    );
}

#[grpc_chaos::test]
async fn the_status_of_a_trailers_only_error_is_logged() {
    let (logs, _guard) = LogCapture::start(Level::INFO);
    let mut client = logged_server(LoggingLayer::new());

    let status = client.say_hello(hello("nobody")).await.unwrap_err();

    assert_eq!(status.code(), Code::NotFound);
    let ended = logs.lines_with("call ended");
    assert_eq!(ended.len(), 1, "{}", logs.text());
    assert!(
        ended[0].contains("call ended: NotFound (5)"),
        "{}",
        ended[0]
    );
    assert!(
        ended[0].contains("grpc_message=no such person"),
        "{}",
        ended[0]
    );
    assert!(
        message_log(&logs, SAY_HELLO).is_empty(),
        "messages are DEBUG"
    );
}

/// A fake answering SayHelloStream with `reply`.
fn streaming_fake(reply: grpc_chaos::fake::Reply) -> FakeServer {
    let fake = FakeServer::in_memory();
    grpc_chaos::fake::Stub::given(grpc_chaos::fake::method(SAY_HELLO_STREAM))
        .respond_with(reply)
        .mount(&fake);
    fake
}

/// A client channel, with or without layers.
type Boxed = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    tonic::transport::Error,
>;

/// SayHelloStream opened on `channel`, with its first message read.
async fn stream_past_its_first_message(channel: Boxed) -> Streaming<HelloReply> {
    let mut stream = GreeterClient::new(channel)
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    stream
}

/// `fake`'s channel behind the client-side logging layer.
fn logged_channel(fake: &FakeServer) -> grpc_chaos::intercept::Logging<tonic::transport::Channel> {
    tower::ServiceBuilder::new()
        .layer(LoggingLayer::client())
        .service(fake.channel())
}

#[grpc_chaos::test]
async fn a_stream_dropped_mid_way_is_logged_as_dropped() {
    let (logs, _guard) = LogCapture::start(Level::INFO);
    let fake = streaming_fake(
        grpc_chaos::fake::Reply::stream()
            .then_message_after(ms(10), &reply("one"))
            .then_hang(),
    );
    let stream = stream_past_its_first_message(Boxed::new(logged_channel(&fake))).await;

    drop(stream);

    let dropped = logs.lines_with("call dropped before its status");
    assert_eq!(dropped.len(), 1, "{}", logs.text());
    assert!(logs.lines_with("call ended").is_empty());
}

#[grpc_chaos::test]
async fn a_stream_reset_mid_way_fails_with_the_same_status_through_the_layer() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    let fake = streaming_fake(
        grpc_chaos::fake::Reply::stream()
            .then_message(&reply("one"))
            .then_reset(grpc_chaos::fake::Reason::INTERNAL_ERROR)
            .end_after(ms(10)),
    );
    let second_message = |channel| async move {
        let mut stream = stream_past_its_first_message(channel).await;
        stream.message().await.unwrap_err()
    };
    let direct = second_message(Boxed::new(fake.channel())).await;
    let logged = second_message(Boxed::new(logged_channel(&fake))).await;

    assert_eq!(logged.code(), direct.code(), "{logged:?}");
    assert_eq!(logged.message(), direct.message());
    assert_eq!(
        logs.lines_with("call failed without a status").len(),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        message_log(&logs, SAY_HELLO_STREAM).len(),
        2,
        "{}",
        logs.text()
    );
}

#[grpc_chaos::test]
async fn authorization_and_binary_values_never_reach_the_log() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    let channel = memory::serve(|incoming| {
        Server::builder()
            .layer(LoggingLayer::new().redact("X-Api-Key"))
            .add_service(GreeterServer::new(Streamer))
            .serve_with_incoming(incoming)
    });
    let mut client = GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(LoggingLayer::client().redact("x-api-key"))
            .service(channel),
    );
    let secret_bytes = [0xde, 0xad, 0xbe, 0xef, 0x01];
    let mut request = Request::new(hello("Ada"));
    let md = request.metadata_mut();
    md.insert("authorization", "Bearer s3cret-token".parse().unwrap());
    md.insert("x-api-key", "k3y-value".parse().unwrap());
    md.insert("x-tenant", "blue".parse().unwrap());
    md.insert_bin("trace-bin", MetadataValue::from_bytes(&secret_bytes));
    let on_the_wire = grpc_chaos::metadata::encode_binary(&secret_bytes);

    client.say_hello(request).await.unwrap();

    let text = logs.text();
    let started = logs.lines_with("call started");
    assert_eq!(started.len(), 2, "client and server: {text}");
    for line in &started {
        assert!(line.contains("x-tenant: \"blue\""), "{line}");
        assert!(line.contains("authorization: [redacted]"), "{line}");
        assert!(line.contains("trace-bin: [redacted]"), "{line}");
        assert!(line.contains("x-api-key: [redacted]"), "{line}");
    }
    for secret in ["s3cret-token", "k3y-value", &on_the_wire[..6]] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[grpc_chaos::test]
async fn with_the_level_disabled_nothing_is_logged_and_calls_pass() {
    let (logs, _guard) = LogCapture::start(Level::WARN);
    let mut client =
        logged_server(LoggingLayer::new().decode::<HelloRequest, HelloReply>(SAY_HELLO));
    let fake = FakeServer::in_memory();
    grpc_chaos::builtin::mount_greeter(&fake);
    let mut through_client_layer = GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(LoggingLayer::client())
            .service(fake.channel()),
    );

    let unary = client.say_hello(hello("Ada")).await.unwrap().into_inner();
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    let error = client.say_hello(hello("nobody")).await.unwrap_err();
    let via_client = through_client_layer
        .say_hello(hello("Ada"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(unary.message, "Hello, 3!");
    assert_eq!(n, GREETINGS);
    assert_eq!(error.code(), Code::NotFound);
    assert_eq!(via_client.message, "Hello, Ada!");
    assert_eq!(logs.text(), "");
}

#[grpc_chaos::test]
async fn every_line_carries_the_trace_id_when_the_trace_layer_is_outside() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    let mut client = GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .layer(
                tower::ServiceBuilder::new()
                    .layer(SetTraceIdLayer::new())
                    .layer(LoggingLayer::new())
                    .into_inner(),
            )
            .add_service(GreeterServer::new(Streamer))
            .serve_with_incoming(incoming)
    }));
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("trace-id", "abc123".parse().unwrap());

    client.say_hello(request).await.unwrap();

    let lines = logs.lines_with("tonic_layers::intercept::logging");
    assert_eq!(lines.len(), 4, "start, 2 messages, end: {}", logs.text());
    for line in lines {
        assert!(line.contains("trace_id=abc123"), "{line}");
    }
}
