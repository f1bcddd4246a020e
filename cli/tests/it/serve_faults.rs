//! `grpc-chaos serve` in a subprocess: fault headers, deadlines on the wire, and
//! malformed `grpc-timeout`, seen by a tonic client over TCP 127.0.0.1.

use std::time::{Duration, Instant};

use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::grpc::testing::{ResponseParameters, StreamingOutputCallRequest};
use prost::Message as _;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::raw_client;
use crate::served::Served;
use crate::support::*;

async fn greeter_of(served: &Served) -> GreeterClient<Channel> {
    GreeterClient::connect(served.uri()).await.unwrap()
}

/// A SayHello request carrying these headers (repeated names append).
fn with_headers(pairs: &[(&'static str, &str)]) -> Request<grpc_chaos::pb::HelloRequest> {
    let mut request = Request::new(hello("Ada"));
    for (k, v) in pairs {
        request.metadata_mut().append(*k, v.parse().unwrap());
    }
    request
}

#[grpc_chaos::test(paused = false)]
async fn delay_status_and_message_headers() {
    let served = Served::start(&[]).await;
    let mut client = greeter_of(&served).await;

    let start = Instant::now();
    let ok = client
        .say_hello(with_headers(&[("x-chaos-delay-ms", "80")]))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ok.into_inner().message, "Hello, Ada!");

    let start = Instant::now();
    let err = client
        .say_hello(with_headers(&[
            ("x-chaos-status", "7"),
            ("x-chaos-message", "not for you"),
            ("x-chaos-delay-ms", "30"),
        ]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (Code::PermissionDenied, "not for you")
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[grpc_chaos::test(paused = false)]
async fn abort_after_ends_a_stream_with_the_status_or_unavailable() {
    let served = Served::start(&[]).await;
    let mut client = greeter_of(&served).await;

    for (headers, code) in [
        (vec![("x-chaos-abort-after", "2")], Code::Unavailable),
        (
            vec![("x-chaos-abort-after", "1"), ("x-chaos-status", "9")],
            Code::FailedPrecondition,
        ),
    ] {
        let mut request = Request::new(hello("Ada"));
        for (k, v) in &headers {
            request.metadata_mut().insert(*k, v.parse().unwrap());
        }
        let expected = headers[0].1.parse::<usize>().unwrap();
        let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
        let (messages, status) = read_until_error(&mut stream).await;
        let got = messages.len();
        assert_eq!((got, status.code()), (expected, code));
    }
}

#[grpc_chaos::test(paused = false)]
async fn headers_and_trailers_are_added_ascii_and_binary() {
    let served = Served::start(&[]).await;
    let mut client = greeter_of(&served).await;

    let response = client
        .say_hello(with_headers(&[
            ("x-chaos-header", "x-region=eu"),
            ("x-chaos-header", "x-zone=b"),
            ("x-chaos-header", "blob-bin=AAEC"),
            ("x-chaos-trailer", "x-cost=7"),
            ("x-chaos-trailer", "sum-bin=//8="),
        ]))
        .await
        .unwrap();

    let md: &MetadataMap = response.metadata();
    assert_eq!(md.get("x-region").unwrap(), "eu");
    assert_eq!(md.get("x-zone").unwrap(), "b");
    assert_eq!(
        md.get_bin("blob-bin").unwrap().to_bytes().unwrap().as_ref(),
        [0, 1, 2]
    );
    assert_eq!(md.get("x-cost").unwrap(), "7");
    assert_eq!(
        md.get_bin("sum-bin").unwrap().to_bytes().unwrap().as_ref(),
        [0xff, 0xff]
    );
}

#[grpc_chaos::test(paused = false)]
async fn hang_lasts_until_the_deadline_and_the_server_answers_deadline_exceeded() {
    let served = Served::start(&[]).await;
    let request = hello("Ada").encode_to_vec();

    let start = Instant::now();
    let headers = [("x-chaos-hang", "true"), ("grpc-timeout", "120m")];
    let response = raw_client::call(&served.addr, SAY_HELLO, &headers, &request, true).await;

    assert_eq!(response.grpc_status(), Some(4), "{response:?}");
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert!(response.messages.is_empty());
}

#[grpc_chaos::test(paused = false)]
async fn fail_first_fails_n_calls_per_key_with_pushback_then_succeeds() {
    let served = Served::start(&[]).await;
    let mut client = greeter_of(&served).await;
    let headers = [
        ("x-chaos-fail-first", "2"),
        ("x-chaos-key", "retry-1"),
        ("x-chaos-pushback-ms", "250"),
    ];

    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(client.say_hello(with_headers(&headers)).await);
    }

    for failed in &outcomes[..2] {
        let status = failed.as_ref().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.metadata().get("grpc-retry-pushback-ms").unwrap(),
            "250"
        );
    }
    assert_eq!(
        outcomes[2].as_ref().unwrap().get_ref().message,
        "Hello, Ada!"
    );
    // Another key has its own count.
    let other = client
        .say_hello(with_headers(&[
            ("x-chaos-fail-first", "1"),
            ("x-chaos-key", "retry-2"),
            ("x-chaos-status", "8"),
        ]))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::ResourceExhausted);
}

#[grpc_chaos::test(paused = false)]
async fn the_raw_grpc_timeout_is_echoed_in_initial_metadata() {
    let served = Served::start(&[]).await;
    let mut client = greeter_of(&served).await;
    let mut request = Request::new(hello("Ada"));
    request.set_timeout(Duration::from_secs(2));

    let response = client.say_hello(request).await.unwrap();

    assert_eq!(
        response.metadata().get("x-chaos-grpc-timeout").unwrap(),
        "2000000u"
    );
}

#[grpc_chaos::test(paused = false)]
async fn invalid_fault_values_and_unknown_names_get_invalid_argument_naming_the_header() {
    let served = Served::start(&[]).await;
    let mut client = greeter_of(&served).await;

    for (header, value) in [
        ("x-chaos-delay-ms", "abc"),
        ("x-chaos-status", "17"),
        ("x-chaos-abort-after", "-1"),
        ("x-chaos-header", "no-equals-sign"),
        ("x-chaos-trailer", "data-bin=not base64!"),
        ("x-chaos-hang", "yes"),
        ("x-chaos-fail-first", "2"),
        ("x-chaos-dealy-ms", "5"),
        ("x-chaos-header", "connection=close"),
        ("x-chaos-trailer", "grpc-status=0"),
    ] {
        let err = client
            .say_hello(with_headers(&[(header, value)]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{header}: {err:?}");
        assert!(
            err.message().contains(header),
            "{header}: {}",
            err.message()
        );
    }
}

#[grpc_chaos::test(paused = false)]
async fn a_deadline_passing_mid_stream_ends_it_with_deadline_exceeded() {
    let served = Served::start(&[]).await;
    let params = (0..10)
        .map(|_| ResponseParameters {
            size: 1,
            interval_us: 40_000,
            compressed: None,
        })
        .collect();
    let request = StreamingOutputCallRequest {
        response_parameters: params,
        ..Default::default()
    }
    .encode_to_vec();

    let path = "/grpc.testing.TestService/FullDuplexCall";
    let response = raw_client::call(
        &served.addr,
        path,
        &[("grpc-timeout", "100m")],
        &request,
        true,
    )
    .await;

    assert_eq!(response.grpc_status(), Some(4), "{response:?}");
    assert_eq!(
        response.messages.len(),
        2,
        "responses at 40 and 80 ms come before the 100 ms deadline"
    );
}

#[grpc_chaos::test(paused = false)]
async fn malformed_grpc_timeouts_get_internal_unless_lenient() {
    let strict = Served::start(&[]).await;
    let lenient = Served::start(&["--lenient-timeouts"]).await;
    let mut strict_client = greeter_of(&strict).await;
    let mut lenient_client = greeter_of(&lenient).await;

    for raw in ["abc", "+1S", "123456789S", "1X", "1s", ""] {
        let mut request = Request::new(hello("Ada"));
        request
            .metadata_mut()
            .insert("grpc-timeout", MetadataValue::try_from(raw).unwrap());
        let err = strict_client.say_hello(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal, "{raw:?}: {err:?}");
        assert!(
            err.message().contains("grpc-timeout"),
            "{raw:?}: {}",
            err.message()
        );

        let mut request = Request::new(hello("Ada"));
        request
            .metadata_mut()
            .insert("grpc-timeout", MetadataValue::try_from(raw).unwrap());
        assert_eq!(
            lenient_client
                .say_hello(request)
                .await
                .unwrap()
                .into_inner()
                .message,
            "Hello, Ada!"
        );
    }
}

#[grpc_chaos::test(paused = false)]
async fn injected_bin_values_go_out_unpadded_whatever_form_they_came_in() {
    // A scenario with a padded -bin header, and fault headers with padded values: the raw
    // HTTP/2 read sees each as the spec says a sender should write it, unpadded.
    let dir = std::env::temp_dir().join(format!("grpc-chaos-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("bin.toml");
    std::fs::write(
        &scenario,
        "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n[stub.match]\nmetadata = { \"x-case\" = \"bin\" }\n\
         [stub.reply]\nheaders_bin = { \"scenario-bin\" = \"AQL+/w==\" }\n\
         trailers_bin = { \"scenario-trailer-bin\" = \"AQL+/w==\" }\n",
    )
    .unwrap();
    let served = Served::start(&["--scenario", scenario.to_str().unwrap()]).await;
    let request = hello("Ada").encode_to_vec();

    let faults = [
        ("x-chaos-header", "fault-bin=AQL+/w=="),
        ("x-chaos-trailer", "fault-trailer-bin=AQL+/w=="),
    ];
    let from_faults = raw_client::call(&served.addr, SAY_HELLO, &faults, &request, true).await;
    let from_scenario = raw_client::call(
        &served.addr,
        SAY_HELLO,
        &[("x-case", "bin")],
        &request,
        true,
    )
    .await;

    let raw = |map: &http::HeaderMap, key: &str| map.get(key).map(|v| v.as_bytes().to_vec());
    let unpadded = Some(b"AQL+/w".to_vec());
    assert_eq!(raw(&from_faults.headers, "fault-bin"), unpadded);
    assert_eq!(raw(&from_faults.trailers, "fault-trailer-bin"), unpadded);
    assert_eq!(raw(&from_scenario.headers, "scenario-bin"), unpadded);
    assert_eq!(
        raw(&from_scenario.trailers, "scenario-trailer-bin"),
        unpadded
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
