//! Trace ids across two hops: client → service A (SetTraceIdLayer) → fake B, with A's
//! outbound channel behind PropagateTraceIdLayer.

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::intercept::{
    current_trace_id, PropagateTraceId, PropagateTraceIdLayer, SetTraceIdLayer, TraceId,
};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

use crate::support::*;

struct ServiceA {
    b: GreeterClient<PropagateTraceId<Channel>>,
}

#[tonic::async_trait]
impl Greeter for ServiceA {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let in_extensions = request
            .extensions()
            .get::<TraceId>()
            .map(TraceId::to_string);
        let in_task = current_trace_id();
        assert_eq!(
            in_extensions, in_task,
            "the same id in the extensions and the task"
        );
        self.b
            .clone()
            .say_hello(HelloRequest {
                name: "from A".into(),
            })
            .await?;
        Ok(Response::new(HelloReply {
            message: in_task.unwrap_or_default(),
        }))
    }

    unused_greeter_methods!(stream, client_stream, bidi);
}

fn chain() -> (GreeterClient<Channel>, FakeServer) {
    let b = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("from B")))
        .mount(&b);
    let to_b = GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(PropagateTraceIdLayer::new())
            .service(b.channel()),
    );
    let a = memory::serve(|incoming| {
        Server::builder()
            .layer(SetTraceIdLayer::new())
            .add_service(GreeterServer::new(ServiceA { b: to_b }))
            .serve_with_incoming(incoming)
    });
    (GreeterClient::new(a), b)
}

/// A SayHello request carrying `id` as its trace id.
fn with_trace_id(id: &str) -> Request<HelloRequest> {
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("trace-id", id.parse().unwrap());
    request
}

#[grpc_chaos::test]
async fn a_given_trace_id_reaches_the_downstream_fake_through_two_hops() {
    let (mut a, b) = chain();
    let request = with_trace_id("abc123");

    let seen_by_a = a.say_hello(request).await.unwrap().into_inner().message;

    assert_eq!(seen_by_a, "abc123");
    let call = &b.wait_for_ended_calls(1).await[0];
    assert_eq!(call.metadata.get("trace-id").unwrap(), "abc123");
}

#[grpc_chaos::test]
async fn a_missing_trace_id_is_generated_and_propagated() {
    let (mut a, b) = chain();

    let first = a
        .say_hello(hello("Ada"))
        .await
        .unwrap()
        .into_inner()
        .message;
    let second = a
        .say_hello(hello("Ada"))
        .await
        .unwrap()
        .into_inner()
        .message;

    assert_eq!(first.len(), 32, "{first}");
    assert!(first.bytes().all(|c| c.is_ascii_hexdigit()), "{first}");
    assert_ne!(first, second, "each call gets its own id");
    let calls = b.wait_for_ended_calls(2).await;
    assert_eq!(calls[0].metadata.get("trace-id").unwrap(), first.as_str());
    assert_eq!(calls[1].metadata.get("trace-id").unwrap(), second.as_str());
}

#[grpc_chaos::test]
async fn an_empty_trace_id_is_replaced_by_a_generated_one() {
    let (mut a, b) = chain();
    let request = with_trace_id("");

    let seen_by_a = a.say_hello(request).await.unwrap().into_inner().message;

    assert_eq!(seen_by_a.len(), 32, "{seen_by_a}");
    let call = &b.wait_for_ended_calls(1).await[0];
    let sent: Vec<_> = call.metadata.get_all("trace-id").iter().collect();
    assert_eq!(sent, [seen_by_a.as_str()]);
}
