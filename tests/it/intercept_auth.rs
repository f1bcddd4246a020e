//! The auth layer and the interceptor forms, through real tonic calls to an in-memory
//! tonic server.

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::intercept::{
    auth_interceptor, propagate_trace_id_interceptor, trace_id_interceptor, with_trace_id,
    AuthError, AuthLayer, Identity, LoggingLayer, StaticTokens, TokenValidator, TraceId,
};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tracing::Level;

use crate::support::*;

/// The identity the closure validator hands out.
#[derive(Clone, Debug, PartialEq)]
struct User {
    name: String,
}

/// Answers with whoever the auth put in the extensions (and the trace id, if any).
struct WhoAmI;

fn who(request: &Request<HelloRequest>) -> String {
    let e = request.extensions();
    let user = e.get::<User>().map(|u| u.name.clone());
    let identity = e.get::<Identity>().map(|i| i.subject.clone());
    let trace = e.get::<TraceId>().map(|t| format!(" trace={}", t.0));
    format!(
        "{}{}",
        user.or(identity).unwrap_or_else(|| "nobody".into()),
        trace.unwrap_or_default()
    )
}

#[tonic::async_trait]
impl Greeter for WhoAmI {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(reply(&who(&request))))
    }

    type SayHelloStreamStream = ReplyStream;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let one = reply(&who(&request));
        Ok(Response::new(Box::pin(tokio_stream::iter([Ok(one)]))))
    }

    unused_greeter_methods!(client_stream, bidi);
}

/// Tokens: `good` is alice everywhere; `reader` is bob, unary only; `old` has expired.
fn validator() -> impl TokenValidator<Identity = User> {
    |token: &str, path: &str| match token {
        "good" => Ok(User {
            name: "alice".into(),
        }),
        "reader" if path == SAY_HELLO => Ok(User { name: "bob".into() }),
        "reader" => Err(AuthError::Denied("bob may only say hello".into())),
        "old" => Err(AuthError::Expired),
        _ => Err(AuthError::Invalid),
    }
}

fn authed_server() -> GreeterClient<Channel> {
    GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .layer(AuthLayer::new(validator()))
            .add_service(GreeterServer::new(WhoAmI))
            .serve_with_incoming(incoming)
    }))
}

fn with_authorization(value: &str) -> Request<HelloRequest> {
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    request
}

#[grpc_chaos::test]
async fn missing_malformed_wrong_and_expired_tokens_are_unauthenticated() {
    let mut client = authed_server();

    let missing = client.say_hello(hello("Ada")).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(missing.message(), "missing bearer token");
    for (value, message) in [
        ("Basic YWRhOnB3", "malformed authorization header"),
        ("Bearer", "malformed authorization header"),
        ("Bearer ", "malformed authorization header"),
        ("Bearer two words", "malformed authorization header"),
        ("Bearer wrong", "invalid token"),
        ("Bearer old", "token expired"),
    ] {
        let status = client
            .say_hello(with_authorization(value))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{value}");
        assert!(
            status.message().starts_with(message),
            "{value}: {}",
            status.message()
        );
        assert!(!status.message().contains("wrong") && !status.message().contains("old"));
    }
}

#[grpc_chaos::test]
async fn a_valid_token_passes_with_its_identity_in_the_handler() {
    let mut client = authed_server();

    let unary = client
        .say_hello(with_authorization("Bearer good"))
        .await
        .unwrap();
    let lowercase_scheme = client
        .say_hello(with_authorization("bearer reader"))
        .await
        .unwrap();
    let mut stream = client
        .say_hello_stream(with_authorization("Bearer good"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(unary.into_inner().message, "alice");
    assert_eq!(lowercase_scheme.into_inner().message, "bob");
    assert_eq!(stream.message().await.unwrap().unwrap().message, "alice");
}

#[grpc_chaos::test]
async fn a_valid_token_not_allowed_for_the_method_is_permission_denied() {
    let mut client = authed_server();

    let status = client
        .say_hello_stream(with_authorization("Bearer reader"))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "permission denied: bob may only say hello"
    );
}

#[grpc_chaos::test]
async fn static_tokens_through_the_layer() {
    let tokens = StaticTokens::new().token("admin-t0k3n", "root").token_for(
        "greeter-t0k3n",
        "carol",
        ["/pb.Greeter/SayHello"],
    );
    let mut client = GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .layer(AuthLayer::new(tokens))
            .add_service(GreeterServer::new(WhoAmI))
            .serve_with_incoming(incoming)
    }));

    let root = client
        .say_hello(with_authorization("Bearer admin-t0k3n"))
        .await
        .unwrap();
    let carol = client
        .say_hello(with_authorization("Bearer greeter-t0k3n"))
        .await
        .unwrap();
    let denied = client
        .say_hello_stream(with_authorization("Bearer greeter-t0k3n"))
        .await
        .unwrap_err();
    let prefix = client
        .say_hello(with_authorization("Bearer admin-t0k3"))
        .await
        .unwrap_err();

    assert_eq!(root.into_inner().message, "root");
    assert_eq!(carol.into_inner().message, "carol");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(prefix.code(), Code::Unauthenticated);
}

#[grpc_chaos::test]
async fn the_auth_interceptor_gives_the_same_codes_and_identity() {
    let svc = GreeterServer::with_interceptor(
        WhoAmI,
        auth_interceptor(StaticTokens::new().token("t0k3n", "dave")),
    );
    let mut client = GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
    }));

    let ok = client
        .say_hello(with_authorization("Bearer t0k3n"))
        .await
        .unwrap();
    let missing = client.say_hello(hello("Ada")).await.unwrap_err();
    let wrong = client
        .say_hello(with_authorization("Bearer nope"))
        .await
        .unwrap_err();

    assert_eq!(ok.into_inner().message, "dave");
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(wrong.code(), Code::Unauthenticated);
}

#[grpc_chaos::test]
async fn trace_id_interceptors_read_generate_and_propagate() {
    // Server form: reads the id, or generates one, into the extensions.
    let svc = GreeterServer::with_interceptor(WhoAmI, trace_id_interceptor());
    let mut a = GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
    }));
    let mut given = Request::new(hello("Ada"));
    given
        .metadata_mut()
        .insert("trace-id", "abc123".parse().unwrap());
    let seen = a.say_hello(given).await.unwrap().into_inner().message;
    let generated = a
        .say_hello(hello("Ada"))
        .await
        .unwrap()
        .into_inner()
        .message;
    assert_eq!(seen, "nobody trace=abc123");
    let id = generated.strip_prefix("nobody trace=").unwrap();
    assert_eq!(id.len(), 32, "{generated}");

    // Client form: the current id goes out on the call.
    let b = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("from B")))
        .mount(&b);
    let mut to_b = GreeterClient::with_interceptor(b.channel(), propagate_trace_id_interceptor());
    with_trace_id("t-42".into(), to_b.say_hello(hello("Ada")))
        .await
        .unwrap();
    to_b.say_hello(hello("Ada")).await.unwrap();
    let calls = b.wait_for_ended_calls(2).await;
    assert_eq!(calls[0].metadata.get("trace-id").unwrap(), "t-42");
    assert!(
        calls[1].metadata.get("trace-id").is_none(),
        "no current id, no header"
    );
}

#[grpc_chaos::test]
async fn logging_outside_auth_logs_the_refusal_but_no_token_and_no_message() {
    let (logs, _guard) = LogCapture::start(Level::DEBUG);
    let mut client = GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .layer(
                tower::ServiceBuilder::new()
                    .layer(LoggingLayer::new().decode::<HelloRequest, HelloReply>(SAY_HELLO))
                    .layer(AuthLayer::new(validator()))
                    .into_inner(),
            )
            .add_service(GreeterServer::new(WhoAmI))
            .serve_with_incoming(incoming)
    }));

    let mut refused = Request::new(hello("secret-name"));
    refused
        .metadata_mut()
        .insert("authorization", "Bearer wrong-token".parse().unwrap());
    let status = client.say_hello(refused).await.unwrap_err();
    client
        .say_hello(with_authorization("Bearer good"))
        .await
        .unwrap();

    assert_eq!(status.code(), Code::Unauthenticated);
    let text = logs.text();
    let ended = logs.lines_with("call ended");
    assert!(
        ended[0].contains("call ended: Unauthenticated (16)"),
        "{text}"
    );
    assert!(ended[1].contains("call ended: Ok (0)"), "{text}");
    assert!(
        !text.contains("wrong-token") && !text.contains("Bearer good"),
        "{text}"
    );
    assert!(
        !text.contains("secret-name"),
        "a refused call's body is never read: {text}"
    );
    assert_eq!(logs.lines_with("received message").len(), 1, "{text}");
}

#[grpc_chaos::test]
async fn a_refusal_is_trailers_only_and_the_service_never_sees_the_call() {
    use http_body::Body as _;
    use tower::{Layer, ServiceExt};
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = reached.clone();
    let inner = tower::service_fn(move |_: http::Request<tonic::body::Body>| {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
        async { Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty())) }
    });
    let request = |authorization: Option<&str>| {
        let mut request = http::Request::new(tonic::body::Body::empty());
        *request.uri_mut() = SAY_HELLO_STREAM.parse().unwrap();
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    };

    for (authorization, code) in [(None, "16"), (Some("Bearer reader"), "7")] {
        let service = AuthLayer::new(validator()).layer(inner.clone());
        let response = service.oneshot(request(authorization)).await.unwrap();

        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], code);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert!(response.body().is_end_stream(), "no body: Trailers-Only");
    }
    assert!(!reached.load(std::sync::atomic::Ordering::SeqCst));
}
