//! Every way a call can end, in every call shape, observed on both sides: what the
//! client sees, and what the fake's journal records (how, when, after how many
//! messages each way). One test per (shape × ending); the table is in the README.

use std::time::Duration;

use grpc_chaos::deadline::PropagateDeadlineLayer;
use grpc_chaos::fake::{CallEnding, FakeServer, Reason, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use rstest::rstest;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

impl Shape {
    fn path(self) -> &'static str {
        match self {
            Shape::Unary => SAY_HELLO,
            Shape::ServerStreaming => SAY_HELLO_STREAM,
            Shape::ClientStreaming => SAY_HELLO_CLIENT_STREAM,
            Shape::Bidi => SAY_HELLO_BIDI,
        }
    }
    fn streams_responses(self) -> bool {
        matches!(self, Shape::ServerStreaming | Shape::Bidi)
    }
    fn streams_requests(self) -> bool {
        matches!(self, Shape::ClientStreaming | Shape::Bidi)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    ClientDrops,
    /// tonic's `Request::cancellation_handle().cancel()`.
    ClientCancels,
    DeadlinePasses,
    ServerAborts,
    ServerResets,
    ConnectionDrops,
}

/// The moment the client, its deadline or the network ends the call.
const END_AT: Duration = Duration::from_millis(250);
/// Requests go out every 90 ms (0, 90, 180, 270 …); responses every 100 ms.
const REQUEST_EVERY: Duration = Duration::from_millis(90);
const RESPONSE_EVERY: Duration = Duration::from_millis(100);

fn reply_for(shape: Shape, end: End) -> Reply {
    let stream = (0..20).fold(Reply::stream(), |r, i| {
        r.then_message_after(RESPONSE_EVERY, &reply(&i.to_string()))
    });
    match (shape.streams_responses(), end) {
        (true, End::ServerAborts) => stream.abort_after(2, Status::unavailable("server aborts")),
        (false, End::ServerAborts) => Reply::stream()
            .delay(RESPONSE_EVERY)
            .abort_after(0, Status::unavailable("server aborts")),
        (true, End::ServerResets) => stream
            .abort_after(2, Status::ok(""))
            .then_reset(Reason::CANCEL)
            .end_after(ms(50)),
        (false, End::ServerResets) => Reply::reset(Reason::CANCEL).delay(END_AT),
        (true, _) => stream.then_hang(),
        (false, _) => Reply::hang(),
    }
}

/// When a cancel through tonic's handle did nothing, the client drops the call here.
const DROP_AT: Duration = Duration::from_millis(450);

/// Where the case's cancellation handle waits for the moment to cancel.
type Handle = std::sync::Arc<std::sync::Mutex<Option<tonic::CancellationHandle>>>;

/// A request carrying the deadline when the case is about deadlines, and handing out
/// its cancellation handle when the case is about that.
fn request<T>(message: T, end: End, handle: &Handle) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if end == End::DeadlinePasses {
        r.set_timeout(END_AT);
    }
    if end == End::ClientCancels {
        *handle.lock().unwrap() = Some(r.cancellation_handle());
    }
    r
}

/// Runs one call in `shape`; returns how many responses arrived and how it ended
/// (`None` when the client dropped it).
async fn drive(shape: Shape, end: End, server: &FakeServer) -> (usize, Option<Status>) {
    let channel = tower::ServiceBuilder::new()
        .layer(PropagateDeadlineLayer::new())
        .service(server.channel());
    let mut client = GreeterClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let sender = tokio::spawn(async move {
        for i in 0.. {
            if tx.send(hello(&i.to_string())).await.is_err() {
                break;
            }
            tokio::time::sleep(REQUEST_EVERY).await;
        }
    });
    let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
    let handle = Handle::default();

    let mut received = 0;
    let call = async {
        let stream = match shape {
            Shape::Unary => {
                return client
                    .say_hello(request(hello("one"), end, &handle))
                    .await
                    .map(|_| 1)
                    .map_err(Some)
            }
            Shape::ClientStreaming => {
                return client
                    .say_hello_client_stream(request(requests, end, &handle))
                    .await
                    .map(|_| 1)
                    .map_err(Some)
            }
            Shape::ServerStreaming => {
                client
                    .say_hello_stream(request(hello("one"), end, &handle))
                    .await
            }
            Shape::Bidi => {
                client
                    .say_hello_bidi_stream(request(requests, end, &handle))
                    .await
            }
        };
        let mut stream = stream.map_err(Some)?.into_inner();
        loop {
            match stream.message().await {
                Ok(Some(_)) => received += 1,
                Ok(None) => return Ok(received),
                Err(status) => return Err(Some(status)),
            }
        }
    };
    let outcome = match end {
        End::ClientDrops => match tokio::time::timeout(END_AT, call).await {
            Ok(done) => done,
            Err(_) => Err(None),
        },
        End::ClientCancels => {
            let cancel = async {
                tokio::time::sleep(END_AT).await;
                if let Some(handle) = handle.lock().unwrap().take() {
                    handle.cancel();
                }
            };
            // The handle only cancels a request stream still open: after that, drop.
            match tokio::time::timeout(DROP_AT, async { tokio::join!(call, cancel).0 }).await {
                Ok(done) => done,
                Err(_) => Err(None),
            }
        }
        End::ConnectionDrops => {
            let cut = async {
                tokio::time::sleep(END_AT).await;
                server.drop_connections();
            };
            tokio::join!(call, cut).0
        }
        _ => call.await,
    };
    // Dropping a call in tonic takes both halves: the request stream stops too.
    sender.abort();
    match outcome {
        Ok(n) => (n, None),
        Err(status) => (received, status),
    }
}

#[rstest]
#[grpc_chaos::test]
async fn every_shape_and_ending_is_seen_on_both_sides(
    #[values(
        Shape::Unary,
        Shape::ServerStreaming,
        Shape::ClientStreaming,
        Shape::Bidi
    )]
    shape: Shape,
    #[values(
        End::ClientDrops,
        End::ClientCancels,
        End::DeadlinePasses,
        End::ServerAborts,
        End::ServerResets,
        End::ConnectionDrops
    )]
    end: End,
) {
    let server = FakeServer::in_memory();
    Stub::given(grpc_chaos::fake::method(shape.path()))
        .respond_with(reply_for(shape, end))
        .mount(&server);
    let t0 = Instant::now();

    let (_, status) = drive(shape, end, &server).await;

    // What the client sees.
    let code = status.map(|s| s.code());
    let expected_code = match end {
        End::ClientDrops => None,
        End::ClientCancels if shape.streams_requests() => Some(Code::Cancelled),
        // tonic's handle cancels only an open request stream: a unary or
        // server-streaming request is already complete, so nothing happens until the
        // client drops the call.
        End::ClientCancels => None,
        End::DeadlinePasses => Some(Code::DeadlineExceeded),
        End::ServerAborts => Some(Code::Unavailable),
        End::ServerResets => Some(Code::Cancelled),
        // The spec's mapping, which the client's PropagateDeadlineLayer applies: a plain
        // tonic 0.14 client reads UNKNOWN here (`connection_lost.rs` pins that).
        End::ConnectionDrops => Some(Code::Unavailable),
    };
    assert_eq!(code, expected_code, "{shape:?} × {end:?}: client");

    // What the journal records.
    let call = server.wait_for_ended_calls(1).await.remove(0);
    let requests = if shape.streams_requests() { 3 } else { 1 };
    let responses = if shape.streams_responses() { 2 } else { 0 };
    let expected = match end {
        End::ServerAborts if shape.streams_responses() => CallEnding::Status {
            code: Code::Unavailable,
            message: "server aborts".into(),
            at: t0 + 2 * RESPONSE_EVERY,
        },
        End::ServerAborts => CallEnding::Status {
            code: Code::Unavailable,
            message: "server aborts".into(),
            at: t0 + RESPONSE_EVERY,
        },
        End::ServerResets => CallEnding::Reset {
            reason: Reason::CANCEL,
            at: t0 + END_AT,
        },
        End::ClientCancels if !shape.streams_requests() => {
            // The cancel did nothing; the drop did. Responses went out at 100, 200, 300
            // and 400 ms.
            let responses = if shape.streams_responses() { 4 } else { 0 };
            CallEnding::Cancelled {
                at: t0 + DROP_AT,
                requests_received: 1,
                responses_sent: responses,
            }
        }
        _ => CallEnding::Cancelled {
            at: t0 + END_AT,
            requests_received: requests,
            responses_sent: responses,
        },
    };
    assert_eq!(call.ending, expected, "{shape:?} × {end:?}: journal");
    server.wait_for_idle().await;
    assert_eq!(
        server.live_calls(),
        0,
        "{shape:?} × {end:?}: a handler leaked"
    );
}
