//! The built-in methods: their paths, message types and call shapes.

/// One built-in method.
#[derive(Debug)]
pub(crate) struct BuiltinMethod {
    pub(crate) path: &'static str,
    pub(crate) request: &'static str,
    pub(crate) response: &'static str,
    pub(crate) client_streaming: bool,
    pub(crate) server_streaming: bool,
}

const fn m(
    path: &'static str,
    request: &'static str,
    response: &'static str,
    client_streaming: bool,
    server_streaming: bool,
) -> BuiltinMethod {
    BuiltinMethod {
        path,
        request,
        response,
        client_streaming,
        server_streaming,
    }
}

const HELLO: (&str, &str) = ("pb.HelloRequest", "pb.HelloReply");
const EMPTY: &str = "grpc.testing.Empty";
const OUT_REQ: &str = "grpc.testing.StreamingOutputCallRequest";
const OUT_RES: &str = "grpc.testing.StreamingOutputCallResponse";

/// Every method of `proto/`.
const METHODS: [BuiltinMethod; 13] = [
    m("/pb.Greeter/SayHello", HELLO.0, HELLO.1, false, false),
    m("/pb.Greeter/SayHelloStream", HELLO.0, HELLO.1, false, true),
    m(
        "/pb.Greeter/SayHelloClientStream",
        HELLO.0,
        HELLO.1,
        true,
        false,
    ),
    m(
        "/pb.Greeter/SayHelloBidiStream",
        HELLO.0,
        HELLO.1,
        true,
        true,
    ),
    m(
        "/grpc.testing.TestService/EmptyCall",
        EMPTY,
        EMPTY,
        false,
        false,
    ),
    m(
        "/grpc.testing.TestService/UnaryCall",
        "grpc.testing.SimpleRequest",
        "grpc.testing.SimpleResponse",
        false,
        false,
    ),
    m(
        "/grpc.testing.TestService/CacheableUnaryCall",
        "grpc.testing.SimpleRequest",
        "grpc.testing.SimpleResponse",
        false,
        false,
    ),
    m(
        "/grpc.testing.TestService/StreamingOutputCall",
        OUT_REQ,
        OUT_RES,
        false,
        true,
    ),
    m(
        "/grpc.testing.TestService/StreamingInputCall",
        "grpc.testing.StreamingInputCallRequest",
        "grpc.testing.StreamingInputCallResponse",
        true,
        false,
    ),
    m(
        "/grpc.testing.TestService/FullDuplexCall",
        OUT_REQ,
        OUT_RES,
        true,
        true,
    ),
    m(
        "/grpc.testing.TestService/HalfDuplexCall",
        OUT_REQ,
        OUT_RES,
        true,
        true,
    ),
    m(
        "/grpc.testing.TestService/UnimplementedCall",
        EMPTY,
        EMPTY,
        false,
        false,
    ),
    m(
        "/grpc.testing.UnimplementedService/UnimplementedCall",
        EMPTY,
        EMPTY,
        false,
        false,
    ),
];

/// The built-in method at `path`, if it is one.
pub(crate) fn find(path: &str) -> Option<&'static BuiltinMethod> {
    METHODS.iter().find(|m| m.path == path)
}
