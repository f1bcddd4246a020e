//! Unary calls against the in-memory fake, under paused time, at exact instants.

use std::time::Duration;

use grpc_chaos::fake::{
    deadline_absent, deadline_at_most, message, metadata, metadata_bin, method, CallEnding,
    FakeServer, Reason, Reply, Stub,
};
use grpc_chaos::pb::HelloRequest;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::support::*;

#[grpc_chaos::test]
async fn a_delay_before_headers_holds_the_reply_for_exactly_that_long() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("Hello, Ada!")).delay(Duration::from_secs(30)))
        .expect(1)
        .mount(&server);
    let start = Instant::now();

    let response = greeter(&server).say_hello(hello("Ada")).await.unwrap();

    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(response.into_inner().message, "Hello, Ada!");
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.arrived_at, start);
    assert_eq!(call.request::<HelloRequest>(0).unwrap().name, "Ada");
    assert_eq!(
        call.response::<grpc_chaos::pb::HelloReply>(0)
            .unwrap()
            .message,
        "Hello, Ada!"
    );
    assert!(
        matches!(call.ending, CallEnding::Status { code: Code::Ok, at, .. } if at == start + Duration::from_secs(30))
    );
}

#[grpc_chaos::test]
async fn headers_and_trailers_reach_the_client_even_on_a_successful_unary_reply() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(
            Reply::message(&reply("hi"))
                .header("x-region", "eu-west")
                .header_bin("trace-bin", [0u8, 1, 254, 255])
                .trailer("x-cost-units", "42")
                .trailer_bin("checksum-bin", b"\x00\xff"),
        )
        .mount(&server);

    let response = greeter(&server).say_hello(hello("Ada")).await.unwrap();

    // tonic merges unary trailers into the response metadata.
    let md = response.metadata();
    assert_eq!(md.get("x-region").unwrap(), "eu-west");
    assert_eq!(
        md.get_bin("trace-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        [0u8, 1, 254, 255]
    );
    assert_eq!(md.get("x-cost-units").unwrap(), "42");
    assert_eq!(
        md.get_bin("checksum-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        b"\x00\xff"
    );
}

#[grpc_chaos::test]
async fn an_injected_status_arrives_with_code_message_details_and_metadata() {
    let server = FakeServer::in_memory();
    let mut status = Status::with_details(
        Code::ResourceExhausted,
        "quota: 100%\n¡over! 🚀",
        vec![8, 1].into(),
    );
    status
        .metadata_mut()
        .insert("x-quota", "daily".parse().unwrap());
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::status(status).delay(Duration::from_millis(250)))
        .mount(&server);
    let start = Instant::now();

    let err = greeter(&server).say_hello(hello("Ada")).await.unwrap_err();

    assert_eq!(start.elapsed(), Duration::from_millis(250));
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(err.message(), "quota: 100%\n¡over! 🚀");
    assert_eq!(err.details(), [8, 1]);
    assert_eq!(err.metadata().get("x-quota").unwrap(), "daily");
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.status_code(), Some(Code::ResourceExhausted));
    // The server read the request before answering, as a tonic handler does.
    assert_eq!(call.request_messages.len(), 1);
}

#[grpc_chaos::test]
async fn a_hang_ends_when_the_client_deadline_passes_and_the_journal_has_the_instant() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .mount(&server);
    let start = Instant::now();
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(Duration::from_millis(1500));

    let err = greeter(&server).say_hello(request).await.unwrap_err();

    // tonic reports its own deadline as CANCELLED (the deadline module maps it to 4).
    assert_eq!(err.code(), Code::Cancelled);
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.grpc_timeout.as_deref(), Some("1500000u"));
    assert_eq!(call.timeout, Some(Ok(Duration::from_millis(1500))));
    assert_eq!(call.deadline, Some(start + Duration::from_millis(1500)));
    assert_eq!(
        call.ending,
        CallEnding::Cancelled {
            at: start + Duration::from_millis(1500),
            requests_received: 1,
            responses_sent: 0
        }
    );
    assert_eq!(server.live_calls(), 0);
}

#[grpc_chaos::test]
async fn a_client_that_drops_its_call_is_recorded_as_cancelled_at_that_instant() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .mount(&server);
    let start = Instant::now();
    let mut client = greeter(&server);

    let outcome =
        tokio::time::timeout(Duration::from_secs(7), client.say_hello(hello("Ada"))).await;

    assert!(outcome.is_err(), "the hang must not answer");
    let call = &server.wait_for_ended_calls(1).await[0];
    assert_eq!(call.cancelled_at(), Some(start + Duration::from_secs(7)));
    assert_eq!(call.timeout, None);
    assert_eq!(server.live_calls(), 0);
}

#[grpc_chaos::test]
async fn a_reset_reaches_the_client_as_the_status_its_reason_maps_to() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .and(metadata("x-case", "refused"))
        .respond_with(Reply::reset(Reason::REFUSED_STREAM))
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .and(metadata("x-case", "calm"))
        .respond_with(Reply::reset(Reason::ENHANCE_YOUR_CALM).delay(Duration::from_millis(5)))
        .mount(&server);
    let mut client = greeter(&server);
    let call_with = |case: &str| {
        let mut request = tonic::Request::new(hello("Ada"));
        request
            .metadata_mut()
            .insert("x-case", case.parse().unwrap());
        request
    };

    let refused = client.say_hello(call_with("refused")).await.unwrap_err();
    let calm = client.say_hello(call_with("calm")).await.unwrap_err();

    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(calm.code(), Code::ResourceExhausted, "{calm:?}");
    let calls = server.wait_for_ended_calls(2).await;
    assert!(
        matches!(
            calls[0].ending,
            CallEnding::Reset {
                reason: Reason::REFUSED_STREAM,
                ..
            }
        ),
        "{:?}",
        calls[0].ending
    );
    assert!(
        matches!(
            calls[1].ending,
            CallEnding::Reset {
                reason: Reason::ENHANCE_YOUR_CALM,
                ..
            }
        ),
        "{:?}",
        calls[1].ending
    );
    // The connection survives a stream reset.
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("still here")))
        .with_priority(1)
        .mount(&server);
    assert_eq!(
        client
            .say_hello(hello("Ada"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "still here"
    );
}

#[grpc_chaos::test]
async fn a_sequence_fails_twice_then_succeeds() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            Reply::error(Code::Unavailable, "warming up").delay(Duration::from_millis(10)),
            Reply::error(Code::Unavailable, "warming up").delay(Duration::from_millis(20)),
            Reply::message(&reply("ready")),
        ]))
        .expect(4)
        .mount(&server);
    let mut client = greeter(&server);
    let start = Instant::now();

    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(
            client
                .say_hello(hello("Ada"))
                .await
                .map(|r| r.into_inner().message)
                .map_err(|s| s.code()),
        );
    }

    assert_eq!(
        outcomes,
        [
            Err(Code::Unavailable),
            Err(Code::Unavailable),
            Ok("ready".to_string()),
            Ok("ready".to_string())
        ]
    );
    let arrivals: Vec<Duration> = server
        .received_calls()
        .iter()
        .map(|c| c.arrived_at - start)
        .collect();
    assert_eq!(arrivals, [ms(0), ms(10), ms(30), ms(30)]);
}

async fn outcomes_for_seed(seed: u64) -> Vec<Code> {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::chance(
            seed,
            0.3,
            Reply::error(Code::Unavailable, "flaky"),
            Reply::message(&reply("ok")),
        ))
        .mount(&server);
    let mut client = greeter(&server);
    let mut codes = Vec::new();
    for _ in 0..200 {
        codes.push(
            client
                .say_hello(hello("Ada"))
                .await
                .map_or_else(|s| s.code(), |_| Code::Ok),
        );
    }
    codes
}

#[grpc_chaos::test]
async fn a_seeded_chance_reproduces_from_its_seed() {
    let first = outcomes_for_seed(7).await;
    let again = outcomes_for_seed(7).await;
    let other = outcomes_for_seed(8).await;

    assert_eq!(first, again);
    assert_ne!(first, other);
    let failures = first.iter().filter(|c| **c == Code::Unavailable).count();
    // 30% of 200 calls; SplitMix64 with seed 7 gives a fixed count, well inside 3 sigma.
    assert!((40..=80).contains(&failures), "{failures} failures");
}

#[grpc_chaos::test]
async fn matchers_pick_by_metadata_message_and_deadline() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .and(message(|r: &HelloRequest| r.name == "Grace"))
        .respond_with(Reply::message(&reply("by message")))
        .named("grace")
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .and(metadata_bin("tenant-bin", [7u8, 7]))
        .respond_with(Reply::message(&reply("by binary metadata")))
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .and(deadline_at_most(Duration::from_millis(100)))
        .respond_with(Reply::message(&reply("by short deadline")))
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .and(deadline_absent())
        .respond_with(Reply::message(&reply("fallback")))
        .with_priority(9)
        .mount(&server);
    let mut client = greeter(&server);
    let text = |r: Result<tonic::Response<grpc_chaos::pb::HelloReply>, Status>| {
        r.unwrap().into_inner().message
    };

    assert_eq!(text(client.say_hello(hello("Grace")).await), "by message");
    let mut bin = tonic::Request::new(hello("Ada"));
    bin.metadata_mut().insert_bin(
        "tenant-bin",
        tonic::metadata::MetadataValue::from_bytes(&[7, 7]),
    );
    assert_eq!(text(client.say_hello(bin).await), "by binary metadata");
    let mut short = tonic::Request::new(hello("Ada"));
    short.set_timeout(Duration::from_millis(100));
    assert_eq!(text(client.say_hello(short).await), "by short deadline");
    assert_eq!(text(client.say_hello(hello("Ada")).await), "fallback");
    let mut long = tonic::Request::new(hello("Ada"));
    long.set_timeout(Duration::from_secs(5));
    let unmatched = client.say_hello(long).await.unwrap_err();
    assert_eq!(unmatched.code(), Code::Unimplemented);
    assert!(unmatched
        .message()
        .starts_with("grpc-chaos: no stub matched /pb.Greeter/SayHello; closest stubs: "));
    assert!(
        unmatched.message().contains("deadline at most 100ms"),
        "{}",
        unmatched.message()
    );
    assert_eq!(server.received_calls()[0].stub.as_deref(), Some("grace"));
}

#[grpc_chaos::test]
async fn the_closest_stub_shows_what_the_call_carried_with_secrets_redacted() {
    use grpc_chaos::fake::{deadline_at_most, message_eq, metadata, metadata_bin, metadata_regex};
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .and(metadata("x-tenant", "blue"))
        .and(metadata_regex("authorization", "^Bearer admin-"))
        .and(metadata_bin("trace-bin", [1, 2, 3]))
        .and(deadline_at_most(ms(100)))
        .respond_with(Reply::message(&reply("admin")))
        .named("admin")
        .mount(&server);
    // The first message is read only when a stub's other matchers all hold, as here.
    Stub::given(method(SAY_HELLO))
        .and(message_eq(hello("Ada")))
        .respond_with(Reply::message(&reply("Ada")))
        .named("ada")
        .mount(&server);
    let mut request = tonic::Request::new(hello("Grace"));
    let metadata = request.metadata_mut();
    metadata.insert("x-tenant", "red".parse().unwrap());
    metadata.insert("authorization", "Bearer user-s3cr3t".parse().unwrap());
    metadata.insert_bin(
        "trace-bin",
        tonic::metadata::MetadataValue::from_bytes(&[9, 9]),
    );
    request.set_timeout(Duration::from_secs(5));

    let status = greeter(&server).say_hello(request).await.unwrap_err();

    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        status.message(),
        "grpc-chaos: no stub matched /pb.Greeter/SayHello; closest stubs: \"admin\" (1 of 5 \
         matchers hold; failing: metadata \"x-tenant\" == \"blue\" (received \"red\"), metadata \
         \"authorization\" matches /^Bearer admin-/ (received <redacted, 18 bytes>), binary \
         metadata \"trace-bin\" == [1, 2, 3] (received <2 bytes>), deadline at most 100ms \
         (received a timeout of 5s)); \"ada\" (1 of 2 matchers hold; failing: message == \
         HelloRequest { name: \"Ada\" } (received HelloRequest { name: \"Grace\" }))"
    );
    assert!(!status.message().contains("s3cr3t"));
}

#[test]
#[should_panic(expected = "grpc-chaos: metadata_regex: regex parse error")]
fn a_pattern_that_does_not_compile_fails_the_test_where_it_is_written() {
    let _ = grpc_chaos::fake::metadata_regex("x-tenant", "(");
}

#[grpc_chaos::test]
async fn an_invalid_reply_header_fails_the_call_with_internal_instead_of_panicking() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::empty().header("bad key!", "v"))
        .mount(&server);

    let err = greeter(&server).say_hello(hello("Ada")).await.unwrap_err();

    assert_eq!(err.code(), Code::Internal);
    assert!(
        err.message().contains("header key \"bad key!\""),
        "{}",
        err.message()
    );
}

#[grpc_chaos::test]
async fn a_reply_built_from_the_request_sees_its_message_and_metadata() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::from_message(|req: &HelloRequest| {
            Reply::message(&reply(&format!("Hello, {}!", req.name)))
        }))
        .mount(&server);
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(Reply::from_request(|req| {
            let tenant = req
                .ascii_values("x-tenant")
                .first()
                .map_or("none".to_string(), |t| t.to_string());
            Reply::empty()
                .header("x-tenant-seen", &tenant)
                .delay(Duration::from_millis(tenant.len() as u64))
        }))
        .mount(&server);
    let mut client = greeter(&server);
    let start = Instant::now();

    assert_eq!(
        client
            .say_hello(hello("Grace"))
            .await
            .unwrap()
            .into_inner()
            .message,
        "Hello, Grace!"
    );
    let mut request = tonic::Request::new(hello("x"));
    request
        .metadata_mut()
        .insert("x-tenant", "blue".parse().unwrap());
    let response = client.say_hello_stream(request).await.unwrap();
    assert_eq!(response.metadata().get("x-tenant-seen").unwrap(), "blue");
    assert_eq!(start.elapsed(), Duration::from_millis(4));
}

#[grpc_chaos::test]
async fn any_stub_can_echo_the_interop_test_metadata() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("hi")).echo_test_metadata())
        .mount(&server);
    let mut request = tonic::Request::new(hello("Ada"));
    request.metadata_mut().insert(
        "x-grpc-test-echo-initial",
        "test_initial_metadata_value".parse().unwrap(),
    );
    request.metadata_mut().insert_bin(
        "x-grpc-test-echo-trailing-bin",
        tonic::metadata::MetadataValue::from_bytes(&[0xab, 0xab, 0xab]),
    );

    let response = greeter(&server).say_hello(request).await.unwrap();

    let md = response.metadata();
    assert_eq!(
        md.get("x-grpc-test-echo-initial").unwrap(),
        "test_initial_metadata_value"
    );
    let trailing = md
        .get_bin("x-grpc-test-echo-trailing-bin")
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(trailing.as_ref(), [0xab, 0xab, 0xab]);
}

#[grpc_chaos::test]
async fn indexed_and_fallback_stubs_keep_priority_then_mount_order() {
    use grpc_chaos::fake::{path_regex, service};
    let server = FakeServer::in_memory();
    // 500 stubs on other methods, indexed away from SayHello.
    for i in 0..500 {
        Stub::given(method(format!("/other.S{}/M{}", i % 50, i)))
            .respond_with(Reply::message(&reply("other")))
            .mount(&server);
    }
    // A service-level stub (in the fallback list) mounted before an exact one of the
    // same priority wins: mount order, not the index, breaks the tie.
    Stub::given(service("pb.Greeter"))
        .respond_with(Reply::message(&reply("service")))
        .up_to_n_times(1)
        .mount(&server);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("exact")))
        .up_to_n_times(1)
        .mount(&server);
    Stub::given(path_regex("^/pb\\.Greeter/Say"))
        .respond_with(Reply::message(&reply("regex")))
        .with_priority(9)
        .mount(&server);
    let mut client = greeter(&server);
    let mut answer = async || {
        client
            .say_hello(hello("Ada"))
            .await
            .unwrap()
            .into_inner()
            .message
    };

    assert_eq!(answer().await, "service");
    assert_eq!(answer().await, "exact");
    assert_eq!(answer().await, "regex");
    // A lower number wins wherever the stub is kept.
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("first")))
        .with_priority(1)
        .mount(&server);
    assert_eq!(answer().await, "first");
}
