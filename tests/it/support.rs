//! Shared helpers: clients of the fake server and the Greeter's requests. The CLI crate's
//! tests include this file too (`cli/tests/it/main.rs`).

use std::time::Duration;

use grpc_chaos::deadline::GrpcTimeoutError;
use grpc_chaos::fake::{FakeServer, ReceivedCall};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tonic::transport::Channel;

pub fn greeter(server: &FakeServer) -> GreeterClient<Channel> {
    GreeterClient::new(server.channel())
}

pub fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

pub fn reply(message: &str) -> HelloReply {
    HelloReply {
        message: message.into(),
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// When each call arrived, from `t0`.
pub fn arrivals(calls: &[ReceivedCall], t0: tokio::time::Instant) -> Vec<Duration> {
    calls.iter().map(|c| c.arrived_at - t0).collect()
}

/// Each call's `grpc-previous-rpc-attempts`, if it had one.
pub fn previous_attempts(calls: &[ReceivedCall]) -> Vec<Option<String>> {
    let header = |c: &ReceivedCall| c.header("grpc-previous-rpc-attempts").map(str::to_string);
    calls.iter().map(header).collect()
}

/// Each call's `grpc-timeout`, parsed, if it had one.
pub fn timeouts(calls: &[ReceivedCall]) -> Vec<Option<Result<Duration, GrpcTimeoutError>>> {
    calls.iter().map(|c| c.timeout.clone()).collect()
}

/// A fake for throttling tests: SayHello fails with UNAVAILABLE when the request says
/// `x-case: down` (see [`hello_in_case`]) and answers "ok" otherwise.
pub fn down_or_up_fake() -> FakeServer {
    use grpc_chaos::fake::{metadata, method, Reply, Stub};
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .and(metadata("x-case", "down"))
        .respond_with(Reply::error(tonic::Code::Unavailable, "down"))
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("ok")))
        .with_priority(9)
        .mount(&server);
    server
}

/// A SayHello request carrying `x-case: case`, for [`down_or_up_fake`].
pub fn hello_in_case(case: &'static str) -> tonic::Request<HelloRequest> {
    let mut request = tonic::Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-case", tonic::metadata::MetadataValue::from_static(case));
    request
}

pub const SAY_HELLO: &str = "/pb.Greeter/SayHello";
pub const SAY_HELLO_STREAM: &str = "/pb.Greeter/SayHelloStream";
pub const SAY_HELLO_CLIENT_STREAM: &str = "/pb.Greeter/SayHelloClientStream";
pub const SAY_HELLO_BIDI: &str = "/pb.Greeter/SayHelloBidiStream";

/// Reads a response stream that must fail: its messages, then the status that ended it.
pub async fn read_until_error<T>(stream: &mut tonic::Streaming<T>) -> (Vec<T>, tonic::Status) {
    let mut messages = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(m)) => messages.push(m),
            Ok(None) => panic!("the stream ended normally; it must fail"),
            Err(status) => return (messages, status),
        }
    }
}

/// The response stream type the tests' hand-written Greeter services return.
pub type ReplyStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<grpc_chaos::pb::HelloReply, tonic::Status>> + Send>,
>;

/// Fills in the Greeter methods a test service does not use: each answers UNIMPLEMENTED.
/// Name them: `unused_greeter_methods!(stream, client_stream, bidi);`. The methods are
/// written as `#[async_trait]` expands them, since that attribute runs before this macro.
macro_rules! unused_greeter_methods {
    (@method $name:ident, $request:ty, $response:ty) => {
        fn $name<'life0, 'async_trait>(
            &'life0 self,
            _: tonic::Request<$request>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<tonic::Response<$response>, tonic::Status>> + Send + 'async_trait>,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(tonic::Status::unimplemented("not used")) })
        }
    };
    () => {};
    (stream $(, $rest:ident)*) => {
        type SayHelloStreamStream = $crate::support::ReplyStream;
        unused_greeter_methods!(@method say_hello_stream, grpc_chaos::pb::HelloRequest, $crate::support::ReplyStream);
        unused_greeter_methods!($($rest),*);
    };
    (client_stream $(, $rest:ident)*) => {
        unused_greeter_methods!(
            @method say_hello_client_stream,
            tonic::Streaming<grpc_chaos::pb::HelloRequest>,
            grpc_chaos::pb::HelloReply
        );
        unused_greeter_methods!($($rest),*);
    };
    (bidi $(, $rest:ident)*) => {
        type SayHelloBidiStreamStream = $crate::support::ReplyStream;
        unused_greeter_methods!(
            @method say_hello_bidi_stream,
            tonic::Streaming<grpc_chaos::pb::HelloRequest>,
            $crate::support::ReplyStream
        );
        unused_greeter_methods!($($rest),*);
    };
}
pub(crate) use unused_greeter_methods;

/// Captures what `tracing` logs on the current thread, as plain text lines.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Sets a fmt subscriber at `level` as this thread's default (tests run on parallel
    /// threads, so no global default), writing here until the guard drops.
    pub fn start(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(level)
            .with_ansi(false)
            .without_time()
            .finish();
        (capture, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The captured lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Reads a TCP connection until the server closes it; how long that took.
pub async fn until_closed(socket: &mut tokio::net::TcpStream) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut sink = [0u8; 1024];
    while socket.read(&mut sink).await.unwrap_or(0) > 0 {}
    started.elapsed()
}
