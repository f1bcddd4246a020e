//! The chaos proxy between real tonic clients and servers, in memory on one paused
//! clock: pass-through in all four shapes with metadata intact, each fault at its exact
//! virtual instant, the client's deadline enforced by the proxy, and upstream failures
//! mapped as the spec says.

use std::time::Duration;

use grpc_chaos::fake::{method, FakeServer, Reason, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::proxy::{Fault, FaultRule, Proxy, Upstream};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::proxy_support::*;
use crate::support::*;

#[grpc_chaos::test]
async fn every_shape_passes_through_with_metadata_byte_for_byte() {
    let server = upstream();
    let (_proxy, mut client) = through(&server, vec![]);

    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(Duration::from_secs(2));
    request
        .metadata_mut()
        .insert("x-tenant", "blue".parse().unwrap());
    request.metadata_mut().insert_bin(
        "x-key-bin",
        tonic::metadata::MetadataValue::from_bytes(&[7, 0, 7]),
    );
    let response = client.say_hello(request).await.unwrap();
    let md = response.metadata();
    assert_eq!(md.get("x-region").unwrap(), "eu");
    assert_eq!(
        md.get_bin("x-trace-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0, 1, 2, 255]
    );
    assert_eq!(md.get("x-cost").unwrap(), "3");
    assert_eq!(
        md.get_bin("x-sig-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [9, 8]
    );
    assert_eq!(response.into_inner().message, "hi");

    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.grpc_timeout.as_deref(), Some("2000000u"));
    assert_eq!(call.header("x-tenant"), Some("blue"));
    assert_eq!(
        call.metadata
            .get_bin("x-key-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [7, 0, 7]
    );
    // The client's own user-agent, not one the proxy added to.
    let agent = call.header("user-agent").unwrap();
    assert!(
        agent.starts_with("tonic/") && !agent.contains(' '),
        "{agent}"
    );

    let (got, at, end) = stream_messages(&mut client).await;
    assert_eq!(got, ["one", "two", "three"]);
    assert_eq!(at, [ms(0), ms(100), ms(200)], "each message as it arrives");
    end.unwrap();

    let names = tokio_stream::iter([hello("a"), hello("b")]);
    let all = client
        .say_hello_client_stream(names)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.message, "all of them");
    let mut bidi = client
        .say_hello_bidi_stream(tokio_stream::iter([hello("x")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bidi.message().await.unwrap().unwrap().message, "a");
    assert_eq!(bidi.message().await.unwrap().unwrap().message, "b");
    assert!(bidi.message().await.unwrap().is_none());
    assert_eq!(
        server.wait_for_ended_calls(4).await[1]
            .request_messages
            .len(),
        1
    );
}

#[grpc_chaos::test]
async fn a_delay_before_forwarding_and_before_the_response_headers() {
    let server = upstream();
    let fault = Fault::new().delay(ms(250)).delay_response(ms(100));
    let (_proxy, mut client) = through(&server, on(SAY_HELLO, fault));
    let start = Instant::now();
    client.say_hello(hello("Ada")).await.unwrap();
    assert_eq!(start.elapsed(), ms(350));
    let call = &server.received_calls()[0];
    assert_eq!(call.arrived_at - start, ms(250));
}

#[grpc_chaos::test]
async fn a_status_without_calling_the_upstream() {
    let server = upstream();
    let fault = Fault::new()
        .delay(ms(50))
        .answer(Status::unavailable("injected"));
    let (_proxy, mut client) = through(&server, on(SAY_HELLO, fault));
    let start = Instant::now();
    let status = client.say_hello(hello("Ada")).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "injected")
    );
    assert_eq!(start.elapsed(), ms(50));
    assert!(server.received_calls().is_empty());
    // Other methods pass.
    client
        .say_hello_client_stream(tokio_stream::iter([hello("a")]))
        .await
        .unwrap();
}

#[grpc_chaos::test]
async fn the_third_message_is_delayed() {
    let server = upstream();
    let fault = Fault::new().delay_messages(ms(500), Some(3));
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, fault));
    let (got, at, end) = stream_messages(&mut client).await;
    assert_eq!(got, ["one", "two", "three"]);
    assert_eq!(at, [ms(0), ms(100), ms(700)]);
    end.unwrap();
}

#[grpc_chaos::test]
async fn an_abort_after_two_messages_cancels_the_upstream_call() {
    let server = upstream();
    let fault = Fault::new().abort_after(2, Status::unavailable("cut"));
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, fault));
    let (got, at, end) = stream_messages(&mut client).await;
    assert_eq!(got, ["one", "two"]);
    let status = end.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "cut")
    );
    // The third message is what told the proxy the second was not the last.
    assert_eq!(at, [ms(0), ms(100)]);
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.ending.at().map(|t| t - call.arrived_at), Some(ms(200)));
}

#[grpc_chaos::test]
async fn a_reset_after_one_message_reaches_the_client_as_its_code() {
    let server = upstream();
    let fault = Fault::new().reset_after(1, Reason::REFUSED_STREAM);
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, fault));
    let (got, _, end) = stream_messages(&mut client).await;
    assert_eq!(got, ["one"]);
    assert_eq!(end.unwrap_err().code(), Code::Unavailable);
}

#[grpc_chaos::test]
async fn metadata_is_edited_both_ways_and_trailers_can_be_dropped() {
    let server = upstream();
    let fault = Fault::new()
        .set_request_header("x-tenant", b"red")
        .unwrap()
        .remove_response_header("x-region")
        .unwrap()
        .set_response_header("x-added", b"1")
        .unwrap()
        .set_response_trailer("x-cost", b"99")
        .unwrap();
    let (_proxy, mut client) = through(&server, on(SAY_HELLO, fault));
    let mut request = tonic::Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("x-tenant", "blue".parse().unwrap());
    let response = client.say_hello(request).await.unwrap();
    assert!(response.metadata().get("x-region").is_none());
    assert_eq!(response.metadata().get("x-added").unwrap(), "1");
    assert_eq!(response.metadata().get("x-cost").unwrap(), "99");
    assert_eq!(server.received_calls()[0].header("x-tenant"), Some("red"));

    let server = upstream();
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, Fault::new().drop_trailers()));
    let (got, _, end) = stream_messages(&mut client).await;
    assert_eq!(got.len(), 3);
    let status = end.unwrap_err();
    assert_eq!(status.code(), Code::Unknown, "no grpc-status: {status:?}");
}

#[grpc_chaos::test]
async fn the_deadline_sent_upstream_is_stripped_or_shrunk_and_still_enforced() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .mount(&server);
    let cases = [
        (Fault::new().strip_timeout(), None),
        (Fault::new().timeout_at_most(ms(100)), Some("100000u")),
        (Fault::new().scale_timeout(0.25), Some("250000u")),
    ];
    for (i, (fault, sent)) in cases.into_iter().enumerate() {
        let (_proxy, mut client) = through(&server, on(SAY_HELLO, fault));
        let start = Instant::now();
        let mut request = tonic::Request::new(hello("Ada"));
        request.set_timeout(Duration::from_secs(1));
        client.say_hello(request).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        let call = &server.wait_for_ended_calls(i + 1).await[i];
        assert_eq!(call.grpc_timeout.as_deref(), sent, "case {i}");
        // The proxy ended the upstream call at the client's deadline.
        assert_eq!(
            call.cancelled_at().map(|t| t - call.arrived_at),
            Some(Duration::from_secs(1)),
            "case {i}"
        );
    }
}

#[grpc_chaos::test]
async fn upstream_failures_map_as_the_spec_says() {
    let server = FakeServer::in_memory();
    for (name, reason) in [
        ("refused", Reason::REFUSED_STREAM),
        ("cancel", Reason::CANCEL),
        ("calm", Reason::ENHANCE_YOUR_CALM),
        ("internal", Reason::INTERNAL_ERROR),
    ] {
        Stub::given(method(SAY_HELLO))
            .and(grpc_chaos::fake::message_eq(hello(name)))
            .respond_with(Reply::reset(reason))
            .mount(&server);
    }
    let (_proxy, mut client) = through(&server, vec![]);
    for (name, code) in [
        ("refused", Code::Unavailable),
        ("cancel", Code::Cancelled),
        ("calm", Code::ResourceExhausted),
        ("internal", Code::Internal),
    ] {
        let status = client.say_hello(hello(name)).await.unwrap_err();
        assert_eq!(status.code(), code, "{name}: {status:?}");
    }

    // Nothing listens on port 1.
    let proxy = Proxy::builder(Upstream::tcp("127.0.0.1:1".parse().unwrap())).in_memory();
    let status = GreeterClient::new(proxy.channel())
        .say_hello(hello("Ada"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("upstream unreachable"),
        "{status:?}"
    );
}

#[grpc_chaos::test]
async fn a_percentage_is_seeded_and_replays() {
    let pattern = |seed: u64| async move {
        let server = upstream();
        let rule = FaultRule::given(method(SAY_HELLO))
            .percentage(30.0)
            .with(Fault::new().answer(Status::unavailable("x")));
        let proxy = Proxy::builder(Upstream::fake(&server))
            .rule(rule)
            .seed(seed)
            .in_memory();
        let mut client = GreeterClient::new(proxy.channel());
        let mut failed = Vec::new();
        for _ in 0..100 {
            failed.push(client.say_hello(hello("Ada")).await.is_err());
        }
        failed
    };
    let first = pattern(7).await;
    assert_eq!(first, pattern(7).await);
    assert_ne!(first, pattern(8).await);
    let hits = first.iter().filter(|f| **f).count();
    assert!((15..=45).contains(&hits), "{hits}");
}

#[grpc_chaos::test]
async fn a_bandwidth_limit_paces_the_response_and_slicing_cuts_its_frames() {
    let server = upstream();
    // "one" and "two" encode in 5 bytes and "three" in 7, each with a 5-byte prefix:
    // at 100 bytes a second that is 100, 100 and 120 ms, each message paced from when
    // it left the upstream (at 0, 100 and 200 ms).
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, Fault::new().bandwidth(100)));
    let (got, at, end) = stream_messages(&mut client).await;
    assert_eq!(got, ["one", "two", "three"]);
    end.unwrap();
    assert_eq!(at, [ms(100), ms(200), ms(320)]);

    // Sliced into 3-byte frames, every message still arrives whole.
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_STREAM, Fault::new().slice(3)));
    let (got, at, end) = stream_messages(&mut client).await;
    assert_eq!((got.len(), at), (3, vec![ms(0), ms(100), ms(200)]));
    end.unwrap();
}

#[grpc_chaos::test]
async fn a_dropped_connection_ends_every_call_on_it() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(Reply::stream().then_message(&reply("first")).then_hang())
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("hi")))
        .mount(&server);
    let rules = vec![FaultRule::given(method(SAY_HELLO))
        .and(grpc_chaos::fake::metadata("x-drop", "yes"))
        .with(Fault::new().delay(ms(50)).drop_connection())];
    let (_proxy, mut client) = through(&server, rules);
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().message, "first");

    let start = Instant::now();
    let mut dropping = tonic::Request::new(hello("Ada"));
    dropping
        .metadata_mut()
        .insert("x-drop", "yes".parse().unwrap());
    let mut other = client.clone();
    let status = other.say_hello(dropping).await.unwrap_err();
    assert_eq!(start.elapsed(), ms(50));
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Unknown),
        "{status:?}"
    );
    // The stream on the same connection ends too, at the same instant.
    let ended = stream.message().await.unwrap_err();
    assert!(
        matches!(
            ended.code(),
            Code::Unknown | Code::Unavailable | Code::Internal
        ),
        "{ended:?}"
    );
    assert_eq!(start.elapsed(), ms(50));
    // The upstream saw its stream call cancelled then.
    let calls = server.wait_for_ended_calls(1).await;
    assert_eq!(calls[0].cancelled_at().map(|t| t - start), Some(ms(50)));
}

#[grpc_chaos::test]
async fn past_the_cap_on_active_faults_calls_pass_untouched() {
    let server = upstream();
    let rule = FaultRule::given(method(SAY_HELLO)).with(Fault::new().delay(ms(1_000)));
    let proxy = Proxy::builder(Upstream::fake(&server))
        .rule(rule)
        .max_active_faults(2)
        .in_memory();
    let client = GreeterClient::new(proxy.channel());
    let start = Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client.say_hello(hello("Ada")).await.unwrap();
                Instant::now()
            })
        })
        .collect();
    let mut ended = Vec::new();
    for call in calls {
        ended.push(call.await.unwrap() - start);
    }
    ended.sort();
    assert_eq!(
        ended,
        [ms(0), ms(1_000), ms(1_000)],
        "two delayed, the third untouched"
    );
    // Once those end, the cap has room again.
    let start = Instant::now();
    let mut client = client;
    client.say_hello(hello("Ada")).await.unwrap();
    assert_eq!(start.elapsed(), ms(1_000));
}

#[grpc_chaos::test]
async fn a_request_message_is_held_on_its_way_upstream() {
    let server = FakeServer::in_memory();
    // The upstream answers with when (since the call began) each request arrived.
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::handler(
            |mut call: grpc_chaos::fake::CallHandle| async move {
                let start = Instant::now();
                let mut arrivals = Vec::new();
                while call.next::<grpc_chaos::pb::HelloRequest>().await?.is_some() {
                    arrivals.push(start.elapsed().as_millis().to_string());
                }
                call.send(&reply(&arrivals.join(","))).await;
                Ok(())
            },
        ))
        .mount(&server);
    let fault = Fault::new().delay_request_messages(ms(300), Some(2));
    let (_proxy, mut client) = through(&server, on(SAY_HELLO_CLIENT_STREAM, fault));
    let start = Instant::now();
    let names = tokio_stream::iter([hello("a"), hello("b"), hello("c")]);
    let answer = client
        .say_hello_client_stream(names)
        .await
        .unwrap()
        .into_inner();
    // The second is held 300 ms, and the third, behind it, with it.
    assert_eq!(answer.message, "0,300,300");
    assert_eq!(start.elapsed(), ms(300));
}

#[grpc_chaos::test]
async fn a_rule_matches_on_the_first_request_message() {
    let server = upstream();
    let rules = vec![FaultRule::given(method(SAY_HELLO))
        .and(grpc_chaos::fake::message_eq(hello("slow")))
        .with(Fault::new().delay(ms(200)))];
    let (proxy, mut client) = through(&server, rules);
    let start = Instant::now();
    client.say_hello(hello("slow")).await.unwrap();
    client.say_hello(hello("fast")).await.unwrap();
    let calls = server.wait_for_ended_calls(2).await;
    assert_eq!(arrivals(&calls, start), [ms(200), ms(200)]);
    // Read ahead, the message still reaches the upstream whole, once.
    assert_eq!(
        calls[0].requests::<grpc_chaos::pb::HelloRequest>().unwrap(),
        [hello("slow")]
    );
    let journal = proxy.wait_for_ended_calls(2).await;
    assert!(journal[0].fault.is_some() && journal[1].fault.is_none());
    assert_eq!(journal[0].call.request_messages.len(), 1);
}

#[grpc_chaos::test]
async fn the_proxy_reads_ahead_only_for_a_rule_that_needs_the_message() {
    let server = upstream();
    // A scenario rule on the message of SayHelloClientStream alone.
    let mut scenario = grpc_chaos::scenario::Scenario::parse(
        "faults.toml",
        r#"
[[fault]]
method = "/pb.Greeter/SayHelloClientStream"
match = { message_contains = { name = "late" } }
status = { code = "NOT_FOUND", message = "no late ones" }
"#,
        0,
    )
    .unwrap();
    let (_proxy, mut client) = through(&server, scenario.take_faults());
    let start = Instant::now();
    // The first message comes 100 ms after the call opens.
    let late = || {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            tokio::time::sleep(ms(100)).await;
            for name in ["late", "later"] {
                let _ = tx.send(hello(name)).await;
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    };
    let status = client.say_hello_client_stream(late()).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "no late ones")
    );
    assert_eq!(start.elapsed(), ms(100));
    assert!(server.received_calls().is_empty());
    let start = Instant::now();
    // The other shapes are forwarded as soon as they open: nothing to read ahead for.
    let streamed = client.say_hello_bidi_stream(late()).await.unwrap();
    let calls = server.wait_for_calls(1).await;
    assert_eq!(arrivals(&calls, start), [ms(0)]);
    drop(streamed);
}

#[grpc_chaos::test]
async fn a_message_table_on_a_method_no_proto_defines_names_the_closest() {
    let error = grpc_chaos::scenario::Scenario::parse(
        "faults.toml",
        "[[fault]]\nmethod = \"/pb.Greeter/SayHelo\"\nmatch = { message_contains = { name = \"x\" } }\ndelay_ms = 1\n",
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("faults.toml:2:10: ")
            && error.contains("the closest is \"/pb.Greeter/SayHello\""),
        "{error}"
    );
}
