//! The gRPC interop suite's `grpc.testing.TestService`, with the server semantics of
//! interop-test-descriptions.md.

use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::BUILTIN_PRIORITY;
use crate::fake::{
    method, CallHandle, FakeServer, Reply, Stub, INTEROP_ECHO_INITIAL, INTEROP_ECHO_TRAILING,
};
use crate::pb::grpc::testing::{
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

const SERVICE: &str = "/grpc.testing.TestService/";

/// Mounts `grpc.testing.TestService`: `EmptyCall`, `UnaryCall`, `CacheableUnaryCall`,
/// `StreamingOutputCall`, `StreamingInputCall`, `FullDuplexCall` and `HalfDuplexCall`.
/// `UnimplementedCall` and `grpc.testing.UnimplementedService` stay unimplemented.
///
/// ```
/// use grpc_chaos::{builtin, fake::FakeServer};
/// use grpc_chaos::pb::grpc::testing::{test_service_client::TestServiceClient, SimpleRequest};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let server = FakeServer::in_memory();
/// builtin::mount_test_service(&server);
/// let mut client = TestServiceClient::new(server.channel());
/// let reply = client.unary_call(SimpleRequest { response_size: 10, ..Default::default() }).await.unwrap();
/// assert_eq!(reply.into_inner().payload.unwrap().body.len(), 10);
/// # }
/// ```
pub fn mount_test_service(server: &FakeServer) {
    mount(server, "EmptyCall", Reply::handler(empty_call));
    mount(server, "UnaryCall", Reply::handler(unary_call));
    mount(server, "CacheableUnaryCall", Reply::handler(unary_call));
    mount(
        server,
        "StreamingOutputCall",
        Reply::handler(streaming_output_call),
    );
    mount(
        server,
        "StreamingInputCall",
        Reply::handler(streaming_input_call),
    );
    mount(server, "FullDuplexCall", Reply::handler(full_duplex_call));
    mount(server, "HalfDuplexCall", Reply::handler(half_duplex_call));
}

fn mount(server: &FakeServer, name: &str, reply: Reply) {
    Stub::given(method(format!("{SERVICE}{name}")))
        .respond_with(reply)
        .with_priority(BUILTIN_PRIORITY)
        .named(format!("built-in grpc.testing.TestService/{name}"))
        .mount(server);
}

/// Whether a method sends its response headers before any message, as a tonic server
/// does for streaming responses (a client may wait for them before it sends).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Headers {
    WithFirstMessage,
    AtOnce,
}

/// Sends the initial echo (and the headers, for streaming responses) and returns the
/// trailing metadata to end with.
async fn echo(call: &mut CallHandle, headers: Headers) -> MetadataMap {
    let metadata = call.request().metadata.clone();
    let mut initial = MetadataMap::new();
    if let Some(value) = metadata.get(INTEROP_ECHO_INITIAL) {
        initial.insert(INTEROP_ECHO_INITIAL, value.clone());
    }
    if headers == Headers::AtOnce || !initial.is_empty() {
        call.send_headers(initial).await;
    }
    let mut trailing = MetadataMap::new();
    if let Some(value) = metadata.get_bin(INTEROP_ECHO_TRAILING) {
        trailing.insert_bin(INTEROP_ECHO_TRAILING, value.clone());
    }
    trailing
}

/// Ends the call with `result`, carrying the trailing echo on success and on failure.
fn end_with(result: Result<(), Status>, trailing: MetadataMap) -> Result<(), Status> {
    let (code, message, details) = match result {
        Ok(()) if trailing.is_empty() => return Ok(()),
        Ok(()) => (Code::Ok, String::new(), Default::default()),
        Err(status) => (
            status.code(),
            status.message().to_string(),
            status.details().to_vec(),
        ),
    };
    Err(Status::with_details_and_metadata(
        code,
        message,
        details.into(),
        trailing,
    ))
}

/// The status a request asks for, if any (code 0 asks for none).
fn requested_status(echo: Option<&EchoStatus>) -> Result<(), Status> {
    match echo {
        Some(s) if s.code != 0 => Err(Status::new(Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

/// The largest payload a request may ask for: a small request must not make the server
/// allocate gigabytes.
const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

fn payload(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("response size {size} is negative")))?;
    if size > MAX_PAYLOAD {
        return Err(Status::resource_exhausted(format!(
            "response size {size} is over the limit of {MAX_PAYLOAD} bytes"
        )));
    }
    Ok(Payload {
        r#type: PayloadType::Compressable as i32,
        body: vec![0; size],
    })
}

async fn empty_call(mut call: CallHandle) -> Result<(), Status> {
    let trailing = echo(&mut call, Headers::WithFirstMessage).await;
    let result = async {
        call.next::<Empty>().await?;
        call.send(&Empty {}).await;
        Ok(())
    }
    .await;
    end_with(result, trailing)
}

async fn unary_call(mut call: CallHandle) -> Result<(), Status> {
    let trailing = echo(&mut call, Headers::WithFirstMessage).await;
    let result = async {
        let request: SimpleRequest = call
            .next()
            .await?
            .ok_or_else(|| Status::internal("missing request message"))?;
        if request.expect_compressed.is_some_and(|b| b.value) {
            return Err(Status::invalid_argument(
                "grpc-chaos does not support compressed requests",
            ));
        }
        requested_status(request.response_status.as_ref())?;
        let response = SimpleResponse {
            payload: Some(payload(request.response_size)?),
            ..Default::default()
        };
        call.send(&response).await;
        Ok(())
    }
    .await;
    end_with(result, trailing)
}

/// Sends one response per parameter, sleeping `interval_us` before each.
async fn respond(call: &mut CallHandle, parameters: &[ResponseParameters]) -> Result<(), Status> {
    for p in parameters {
        if p.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
        }
        call.send(&StreamingOutputCallResponse {
            payload: Some(payload(p.size)?),
        })
        .await;
    }
    Ok(())
}

async fn streaming_output_call(mut call: CallHandle) -> Result<(), Status> {
    let trailing = echo(&mut call, Headers::AtOnce).await;
    let result = async {
        let request: StreamingOutputCallRequest = call
            .next()
            .await?
            .ok_or_else(|| Status::internal("missing request message"))?;
        respond(&mut call, &request.response_parameters).await?;
        requested_status(request.response_status.as_ref())
    }
    .await;
    end_with(result, trailing)
}

async fn streaming_input_call(mut call: CallHandle) -> Result<(), Status> {
    let trailing = echo(&mut call, Headers::WithFirstMessage).await;
    let result = async {
        let mut total = 0usize;
        while let Some(request) = call.next::<StreamingInputCallRequest>().await? {
            total += request.payload.map_or(0, |p| p.body.len());
        }
        let aggregated_payload_size = i32::try_from(total).map_err(|_| {
            Status::out_of_range(format!("aggregated size {total} overflows int32"))
        })?;
        call.send(&StreamingInputCallResponse {
            aggregated_payload_size,
        })
        .await;
        Ok(())
    }
    .await;
    end_with(result, trailing)
}

async fn full_duplex_call(mut call: CallHandle) -> Result<(), Status> {
    let trailing = echo(&mut call, Headers::AtOnce).await;
    let result = async {
        while let Some(request) = call.next::<StreamingOutputCallRequest>().await? {
            requested_status(request.response_status.as_ref())?;
            respond(&mut call, &request.response_parameters).await?;
        }
        Ok(())
    }
    .await;
    end_with(result, trailing)
}

async fn half_duplex_call(mut call: CallHandle) -> Result<(), Status> {
    let trailing = echo(&mut call, Headers::AtOnce).await;
    let result = async {
        let mut requests = Vec::new();
        while let Some(request) = call.next::<StreamingOutputCallRequest>().await? {
            requests.push(request);
        }
        for request in &requests {
            requested_status(request.response_status.as_ref())?;
            respond(&mut call, &request.response_parameters).await?;
        }
        Ok(())
    }
    .await;
    end_with(result, trailing)
}
