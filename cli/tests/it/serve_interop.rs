//! The gRPC interop cases that concern `TestService`, run against `grpc-chaos serve`
//! in a subprocess (interop-test-descriptions.md), directly and through a pass-through
//! `grpc-chaos proxy`: every case passes the same both ways.

use std::time::Duration;

use grpc_chaos::pb::grpc::testing::test_service_client::TestServiceClient;
use grpc_chaos::pb::grpc::testing::unimplemented_service_client::UnimplementedServiceClient;
use grpc_chaos::pb::grpc::testing::{
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest,
};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::raw_client;
use crate::served::Served;

/// `serve`, alone or behind a `grpc-chaos proxy` with no rules.
struct Target {
    served: Served,
    proxy: Option<Served>,
}

impl Target {
    async fn start(through_proxy: bool) -> Self {
        let served = Served::start(&[]).await;
        let proxy = match through_proxy {
            true => Some(Served::start_proxy(&served.addr, &[]).await),
            false => None,
        };
        Self { served, proxy }
    }

    /// The address clients call.
    fn addr(&self) -> &str {
        &self.proxy.as_ref().unwrap_or(&self.served).addr
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr())
    }
}

async fn client(served: &Target) -> TestServiceClient<Channel> {
    TestServiceClient::connect(served.uri()).await.unwrap()
}

fn zeros(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: PayloadType::Compressable as i32,
        body: vec![0; size],
    })
}

fn params(sizes: &[i32]) -> Vec<ResponseParameters> {
    sizes
        .iter()
        .map(|&size| ResponseParameters {
            size,
            interval_us: 0,
            compressed: None,
        })
        .collect()
}

fn stream_request(response_size: i32, payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: params(&[response_size]),
        payload: zeros(payload_size),
        ..Default::default()
    }
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn empty_unary_and_large_unary(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;

    assert_eq!(
        client.empty_call(Empty {}).await.unwrap().into_inner(),
        Empty {}
    );
    let response = client
        .unary_call(SimpleRequest {
            response_type: PayloadType::Compressable as i32,
            response_size: 314_159,
            payload: zeros(271_828),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let payload = response.payload.unwrap();
    assert_eq!(payload.r#type, PayloadType::Compressable as i32);
    assert_eq!(payload.body, vec![0u8; 314_159]);
    // A small request cannot make the server allocate gigabytes.
    let huge = SimpleRequest {
        response_size: i32::MAX,
        ..Default::default()
    };
    assert_eq!(
        client.unary_call(huge).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn client_streaming_and_server_streaming(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;

    let uploads = [27_182, 8, 1_828, 45_904].map(|n| StreamingInputCallRequest {
        payload: zeros(n),
        expect_compressed: None,
    });
    let aggregated = client
        .streaming_input_call(tokio_stream::iter(uploads))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(aggregated.aggregated_payload_size, 74_922);

    let request = StreamingOutputCallRequest {
        response_parameters: params(&[31_415, 9, 2_653, 58_979]),
        ..Default::default()
    };
    let mut stream = client
        .streaming_output_call(request)
        .await
        .unwrap()
        .into_inner();
    let mut sizes = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        sizes.push(m.payload.unwrap().body.len());
    }
    assert_eq!(sizes, [31_415, 9, 2_653, 58_979]);
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn ping_pong_and_empty_stream(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;

    let (tx, rx) = mpsc::channel(1);
    let mut responses = client
        .full_duplex_call(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for (response_size, payload_size) in
        [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)]
    {
        tx.send(stream_request(response_size, payload_size))
            .await
            .unwrap();
        let response = responses.message().await.unwrap().unwrap();
        assert_eq!(response.payload.unwrap().body.len(), response_size as usize);
    }
    drop(tx);
    assert_eq!(responses.message().await.unwrap(), None);

    let mut empty = client
        .full_duplex_call(tokio_stream::empty())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(empty.message().await.unwrap(), None);
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn custom_metadata_is_echoed_on_unary_and_full_duplex(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;
    let initial = "test_initial_metadata_value";
    let trailing = [0xab_u8, 0xab, 0xab];
    let decorate = |md: &mut tonic::metadata::MetadataMap| {
        md.insert("x-grpc-test-echo-initial", initial.parse().unwrap());
        md.insert_bin(
            "x-grpc-test-echo-trailing-bin",
            MetadataValue::from_bytes(&trailing),
        );
    };

    let mut request = Request::new(SimpleRequest {
        response_size: 314_159,
        payload: zeros(271_828),
        ..Default::default()
    });
    decorate(request.metadata_mut());
    let response = client.unary_call(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-grpc-test-echo-initial").unwrap(),
        initial
    );
    let echoed = response
        .metadata()
        .get_bin("x-grpc-test-echo-trailing-bin")
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(echoed.as_ref(), trailing);

    let mut request = Request::new(tokio_stream::iter([stream_request(314_159, 271_828)]));
    decorate(request.metadata_mut());
    let response = client.full_duplex_call(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-grpc-test-echo-initial").unwrap(),
        initial
    );
    let mut stream = response.into_inner();
    while stream.message().await.unwrap().is_some() {}
    let trailers = stream.trailers().await.unwrap().unwrap();
    assert_eq!(
        trailers
            .get_bin("x-grpc-test-echo-trailing-bin")
            .unwrap()
            .to_bytes()
            .unwrap()
            .as_ref(),
        trailing
    );
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn status_code_and_message_and_special_status_message(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;

    for message in [
        "test status message",
        "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n",
    ] {
        let echo = Some(EchoStatus {
            code: 2,
            message: message.to_string(),
        });
        let err = client
            .unary_call(SimpleRequest {
                response_status: echo.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::Unknown, message));

        let request = StreamingOutputCallRequest {
            response_status: echo,
            ..Default::default()
        };
        let mut stream = client
            .full_duplex_call(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let err = stream.message().await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::Unknown, message));
    }
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn unimplemented_method_and_unimplemented_service(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;

    let err = client.unimplemented_call(Empty {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let mut other = UnimplementedServiceClient::connect(served.uri())
        .await
        .unwrap();
    assert_eq!(
        other.unimplemented_call(Empty {}).await.unwrap_err().code(),
        Code::Unimplemented
    );
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn cancel_after_begin_and_cancel_after_first_response(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let mut client = client(&served).await;

    // cancel_after_begin: the upload starts, nothing is sent, the client cancels.
    let (tx, rx) = mpsc::channel::<StreamingInputCallRequest>(1);
    let call = client.streaming_input_call(ReceiverStream::new(rx));
    let cancelled = tokio::time::timeout(Duration::from_millis(50), call).await;
    assert!(
        cancelled.is_err(),
        "the server must not answer before the client half-closes"
    );
    drop(tx);

    // cancel_after_first_response: one ping-pong, then the client drops both halves.
    let (tx, rx) = mpsc::channel(1);
    let mut responses = client
        .full_duplex_call(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(stream_request(31_415, 27_182)).await.unwrap();
    assert_eq!(
        responses
            .message()
            .await
            .unwrap()
            .unwrap()
            .payload
            .unwrap()
            .body
            .len(),
        31_415
    );
    drop(tx);
    drop(responses);

    // The connection and server are fine afterwards.
    assert_eq!(
        client.empty_call(Empty {}).await.unwrap().into_inner(),
        Empty {}
    );
}

#[rstest::rstest]
#[case::direct(false)]
#[case::through_the_proxy(true)]
#[grpc_chaos::test(paused = false)]
async fn timeout_on_sleeping_server(#[case] through_proxy: bool) {
    let served = Target::start(through_proxy).await;
    let request = StreamingOutputCallRequest {
        payload: zeros(27_182),
        ..Default::default()
    }
    .encode_to_vec();

    // The client never half-closes. tonic's client would time the call out itself and
    // report CANCELLED; a bare HTTP/2 client reads the server's own status instead.
    let path = "/grpc.testing.TestService/FullDuplexCall";
    let response = raw_client::call(
        served.addr(),
        path,
        &[("grpc-timeout", "1m")],
        &request,
        false,
    )
    .await;

    assert_eq!(response.grpc_status(), Some(4), "{response:?}");
}
