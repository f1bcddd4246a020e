//! Deadline layers through real tonic calls, in memory under paused time: propagation
//! across hops, enforcement mid-stream on both sides, the guard, and fail-fast.

use std::time::Duration;

use grpc_chaos::deadline::{
    current, scope, Deadline, EnforceDeadlineLayer, PropagateDeadline, PropagateDeadlineLayer,
};
use grpc_chaos::fake::{method, CallEnding, CallHandle, FakeServer, Reply, Stub};
use grpc_chaos::memory;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::support::*;

type Propagating = GreeterClient<PropagateDeadline<Channel>>;

fn propagating(channel: Channel) -> Propagating {
    GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(PropagateDeadlineLayer::new())
            .service(channel),
    )
}

/// Service A of the walkthrough: it works for a second, then calls B.
struct ServiceA {
    b: Propagating,
    /// Per-hop timeouts (the walkthrough's mistake) instead of propagation.
    per_hop: Option<Duration>,
}

#[tonic::async_trait]
impl Greeter for ServiceA {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        assert_eq!(request.extensions().get::<Deadline>().copied(), current());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut outbound = Request::new(request.into_inner());
        let mut b = self.b.clone();
        if let Some(timeout) = self.per_hop {
            outbound.set_timeout(timeout);
            // A fresh timeout, outside the incoming deadline's scope.
            return tokio::spawn(async move { b.say_hello(outbound).await })
                .await
                .unwrap();
        }
        b.say_hello(outbound).await
    }

    type SayHelloStreamStream = ReplyStream;

    async fn say_hello_stream(
        &self,
        _: Request<HelloRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let forever = tokio_stream::iter((1..).map(|i| {
            Ok(HelloReply {
                message: format!("#{i}"),
            })
        }));
        Ok(Response::new(Box::pin(forever.throttle(ms(100)))))
    }

    async fn say_hello_client_stream(
        &self,
        request: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut stream = request.into_inner();
        let mut n = 0;
        while stream.message().await?.is_some() {
            n += 1;
        }
        Ok(Response::new(HelloReply {
            message: n.to_string(),
        }))
    }

    unused_greeter_methods!(bidi);
}

fn service_a(
    b: &FakeServer,
    per_hop: Option<Duration>,
    layer: EnforceDeadlineLayer,
) -> GreeterClient<Channel> {
    let a = ServiceA {
        b: propagating(b.channel()),
        per_hop,
    };
    GreeterClient::new(memory::serve(|incoming| {
        Server::builder()
            .layer(layer)
            .add_service(GreeterServer::new(a))
            .serve_with_incoming(incoming)
    }))
}

fn fake_b() -> FakeServer {
    let b = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("from B")))
        .mount(&b);
    b
}

#[grpc_chaos::test]
async fn the_walkthrough_chain_leaves_b_exactly_three_seconds() {
    let b = fake_b();
    let mut a = service_a(&b, None, EnforceDeadlineLayer::new());
    let t0 = Instant::now();
    let deadline = Deadline::after(Duration::from_secs(5));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(deadline.remaining());
    let response = a.say_hello(request).await.unwrap();

    assert_eq!(response.into_inner().message, "from B");
    let call = &b.wait_for_ended_calls(1).await[0];
    assert_eq!(call.arrived_at, t0 + Duration::from_secs(2));
    assert_eq!(call.timeout, Some(Ok(Duration::from_secs(3))));
    assert_eq!(call.grpc_timeout.as_deref(), Some("3000000u"));
    assert_eq!(call.deadline, Some(t0 + Duration::from_secs(5)));
}

#[grpc_chaos::test]
async fn per_hop_timeouts_give_b_a_deadline_past_the_callers() {
    let b = fake_b();
    let mut a = service_a(
        &b,
        Some(Duration::from_secs(5)),
        EnforceDeadlineLayer::new(),
    );
    let t0 = Instant::now();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(Duration::from_secs(4));
    a.say_hello(request).await.unwrap();

    let call = &b.wait_for_ended_calls(1).await[0];
    assert_eq!(call.timeout, Some(Ok(Duration::from_secs(5))));
    // B may work until +7 s: two seconds after the client has given up.
    assert_eq!(call.deadline, Some(t0 + Duration::from_secs(7)));
}

#[grpc_chaos::test]
async fn a_spent_budget_fails_locally_and_is_never_sent() {
    let b = fake_b();
    let mut client = propagating(b.channel());
    let spent = Deadline::after(Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(10)).await;

    let status = scope(Some(spent), client.say_hello(hello("Ada")))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(b.received_calls().is_empty());
}

#[grpc_chaos::test]
async fn the_client_layer_ends_a_server_stream_at_its_deadline_and_the_fake_sees_the_cancel() {
    let b = FakeServer::in_memory();
    let slow = (0..50).fold(Reply::stream(), |r, i| {
        r.then_message_after(ms(100), &reply(&i.to_string()))
    });
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(slow)
        .mount(&b);
    let t0 = Instant::now();
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(ms(250));

    let mut stream = propagating(b.channel())
        .say_hello_stream(request)
        .await
        .unwrap()
        .into_inner();
    let (messages, status) = read_until_error(&mut stream).await;
    let got = messages.len();

    assert_eq!(
        (status.code(), got, t0.elapsed()),
        (Code::DeadlineExceeded, 2, ms(250))
    );
    let call = &b.wait_for_ended_calls(1).await[0];
    assert_eq!(
        call.ending,
        CallEnding::Cancelled {
            at: t0 + ms(250),
            requests_received: 1,
            responses_sent: 2
        }
    );
}

#[grpc_chaos::test]
async fn the_client_layer_ends_client_and_bidi_streams_at_their_deadline() {
    let b = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::hang())
        .mount(&b);
    Stub::given(method(SAY_HELLO_BIDI))
        .respond_with(Reply::handler(|mut call: CallHandle| async move {
            call.send_headers(Default::default()).await;
            while let Some(r) = call.next::<HelloRequest>().await? {
                call.send(&HelloReply { message: r.name }).await;
            }
            Ok(())
        }))
        .mount(&b);
    let mut client = propagating(b.channel());
    let t0 = Instant::now();

    let uploads = tokio_stream::iter((0..100).map(|i| hello(&i.to_string()))).throttle(ms(100));
    let mut request = Request::new(uploads);
    request.set_timeout(ms(250));
    let status = client.say_hello_client_stream(request).await.unwrap_err();
    assert_eq!(
        (status.code(), t0.elapsed()),
        (Code::DeadlineExceeded, ms(250))
    );

    let t1 = Instant::now();
    let pings = tokio_stream::iter((0..100).map(|i| hello(&i.to_string()))).throttle(ms(100));
    let mut request = Request::new(pings);
    request.set_timeout(ms(250));
    let mut stream = client
        .say_hello_bidi_stream(request)
        .await
        .unwrap()
        .into_inner();
    let (messages, status) = read_until_error(&mut stream).await;
    let echoed = messages.len();
    assert_eq!(
        (status.code(), echoed, t1.elapsed()),
        (Code::DeadlineExceeded, 3, ms(250))
    );

    let calls = b.wait_for_ended_calls(2).await;
    assert_eq!(
        calls[0].ending,
        CallEnding::Cancelled {
            at: t0 + ms(250),
            requests_received: 3,
            responses_sent: 0
        }
    );
    assert_eq!(
        calls[1].ending,
        CallEnding::Cancelled {
            at: t1 + ms(250),
            requests_received: 3,
            responses_sent: 3
        }
    );
}

#[grpc_chaos::test]
async fn the_server_layer_ends_a_stream_after_headers_with_status_4() {
    let b = fake_b();
    let mut a = service_a(&b, None, EnforceDeadlineLayer::new());
    let t0 = Instant::now();
    // A plain tonic client: it times only the response headers, so the end of this
    // stream is the server layer's doing.
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(ms(350));

    let mut stream = a.say_hello_stream(request).await.unwrap().into_inner();
    let (messages, status) = read_until_error(&mut stream).await;
    let got: Vec<String> = messages.into_iter().map(|m| m.message).collect();

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(t0.elapsed(), ms(350));
    assert_eq!(got, ["#1", "#2", "#3", "#4"]);
}

#[grpc_chaos::test]
async fn before_headers_a_plain_tonic_client_reads_its_own_cancelled_and_the_client_layer_reads_4()
{
    // A spends a second before it answers; every client below gives it 500 ms.
    let b = fake_b();
    let mut a = service_a(&b, None, EnforceDeadlineLayer::new());

    // A plain tonic client times the call itself, and its timer fires at the same
    // instant as the server layer's: it reads its own CANCELLED.
    let t0 = Instant::now();
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(ms(500));
    let status = a.say_hello(request).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message(), t0.elapsed()),
        (Code::Cancelled, "Timeout expired", ms(500))
    );

    // tonic's channel times any `grpc-timeout` it sends, even one written by hand.
    let t0 = Instant::now();
    let mut request = Request::new(hello("Ada"));
    let timeout = tonic::metadata::MetadataValue::from_static("500m");
    request.metadata_mut().insert("grpc-timeout", timeout);
    let status = a.say_hello(request).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message(), t0.elapsed()),
        (Code::Cancelled, "Timeout expired", ms(500))
    );

    // Through PropagateDeadlineLayer, tonic's timer reads as DEADLINE_EXCEEDED too.
    let a_channel = memory::serve(|incoming| {
        let a = ServiceA {
            b: propagating(b.channel()),
            per_hop: None,
        };
        Server::builder()
            .layer(EnforceDeadlineLayer::new())
            .add_service(GreeterServer::new(a))
            .serve_with_incoming(incoming)
    });
    let mut through_layer = propagating(a_channel);
    let t0 = Instant::now();
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(ms(500));
    let status = through_layer.say_hello(request).await.unwrap_err();
    assert_eq!(
        (status.code(), t0.elapsed()),
        (Code::DeadlineExceeded, ms(500))
    );
}

#[grpc_chaos::test]
async fn the_guard_refuses_calls_with_too_little_time_left() {
    let b = fake_b();
    let layer = EnforceDeadlineLayer::new()
        .min_budget(ms(100))
        .min_budget_for("/pb.Greeter/SayHelloStream", ms(500));
    let mut a = service_a(&b, None, layer);
    let with_timeout = |t: Duration| {
        let mut r = Request::new(hello("Ada"));
        r.set_timeout(t);
        r
    };

    let refused = a.say_hello(with_timeout(ms(99))).await.unwrap_err();
    assert_eq!(refused.code(), Code::DeadlineExceeded);
    assert!(
        refused.message().starts_with("not enough time to process"),
        "{}",
        refused.message()
    );
    assert!(b.received_calls().is_empty());
    assert_eq!(
        a.say_hello(with_timeout(Duration::from_secs(3)))
            .await
            .unwrap()
            .into_inner()
            .message,
        "from B"
    );
    // Per method: the stream needs 500 ms.
    let refused = a.say_hello_stream(with_timeout(ms(400))).await.unwrap_err();
    assert_eq!(refused.code(), Code::DeadlineExceeded);
}

#[grpc_chaos::test]
async fn malformed_timeouts_are_internal_unless_lenient() {
    let b = fake_b();
    let mut strict = service_a(&b, None, EnforceDeadlineLayer::new());
    let mut lenient = service_a(&b, None, EnforceDeadlineLayer::new().lenient_timeouts(true));
    let malformed = || {
        let mut r = Request::new(hello("Ada"));
        // tonic's own server reads "+1S" as one second, so lenient mode is shown with a
        // value tonic ignores too; the strict layer rejects both.
        r.metadata_mut()
            .insert("grpc-timeout", "abc".parse().unwrap());
        r
    };

    let err = strict.say_hello(malformed()).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().contains("grpc-timeout"), "{}", err.message());
    assert_eq!(
        lenient
            .say_hello(malformed())
            .await
            .unwrap()
            .into_inner()
            .message,
        "from B"
    );
}
