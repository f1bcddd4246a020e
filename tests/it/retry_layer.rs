//! `RetryLayer` on a tonic channel against the in-memory fake: the retry schedule, one
//! deadline budget, commit points, the replay buffer, and hedging with its losers
//! cancelled, all at exact virtual instants.

use std::time::Duration;

use grpc_chaos::fake::{method, CallEnding, FakeServer, ReceivedCall, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use grpc_chaos::retry::{HedgingPolicy, Retry, RetryLayer, RetryPolicy};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use prost::Message;
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::*;

type Client = GreeterClient<Retry<Channel>>;

fn retrying(server: &FakeServer, layer: RetryLayer) -> Client {
    GreeterClient::new(
        tower::ServiceBuilder::new()
            .layer(layer)
            .service(server.channel()),
    )
}

fn exact_policy(max: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max)
        .initial_backoff(ms(100))
        .max_backoff(ms(1000))
        .backoff_multiplier(2.0)
        .retryable_status_codes([Code::Unavailable])
        .build()
        .unwrap()
        .without_jitter()
}

fn hedging(max: u32, delay_ms: u64) -> RetryLayer {
    RetryLayer::hedging(
        HedgingPolicy::builder()
            .max_attempts(max)
            .hedging_delay(ms(delay_ms))
            .non_fatal_status_codes([Code::Unavailable])
            .build()
            .unwrap(),
    )
}

fn unavailable() -> Reply {
    Reply::error(Code::Unavailable, "down")
}

async fn say_hello(client: &Client, timeout: Option<Duration>) -> Result<String, Status> {
    let mut request = tonic::Request::new(hello("Ada"));
    if let Some(t) = timeout {
        request.set_timeout(t);
    }
    let reply = client.clone().say_hello(request).await?;
    Ok(reply.into_inner().message)
}

/// A fake answering every call to `path` with `reply`.
fn fake(path: &str, reply: Reply) -> FakeServer {
    let server = FakeServer::in_memory();
    Stub::given(method(path)).respond_with(reply).mount(&server);
    server
}

fn cancelled_at(call: &ReceivedCall) -> Option<Instant> {
    match call.ending {
        CallEnding::Cancelled { at, .. } => Some(at),
        _ => None,
    }
}

#[grpc_chaos::test]
async fn the_layer_keeps_the_exact_schedule_within_one_budget() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            unavailable(),
            unavailable(),
            Reply::message(&reply("third time")),
        ]))
        .expect(3)
        .mount(&server);
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));
    let t0 = Instant::now();

    let answer = say_hello(&client, Some(ms(2000))).await;

    assert_eq!(answer.unwrap(), "third time");
    assert_eq!(t0.elapsed(), ms(300));
    let calls = server.received_calls();
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100), ms(300)]);
    assert_eq!(
        previous_attempts(&calls),
        [None, Some("1".into()), Some("2".into())]
    );
    // Every attempt carried what was left of the caller's 2 s, not a fresh 2 s.
    assert_eq!(
        timeouts(&calls),
        [Some(Ok(ms(2000))), Some(Ok(ms(1900))), Some(Ok(ms(1700)))]
    );
}

#[grpc_chaos::test]
async fn the_first_attempt_keeps_the_callers_head_but_never_its_attempt_count() {
    let server = fake(
        SAY_HELLO,
        Reply::sequence([unavailable(), Reply::message(&reply("second"))]),
    );
    let client = retrying(&server, RetryLayer::new(exact_policy(3)));
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(ms(2000));
    let metadata = request.metadata_mut();
    metadata.insert("x-kept", "yes".parse().unwrap());
    // Not the caller's to send: each attempt says its own number.
    metadata.insert("grpc-previous-rpc-attempts", "7".parse().unwrap());

    client.clone().say_hello(request).await.unwrap();

    let calls = server.received_calls();
    assert_eq!(previous_attempts(&calls), [None, Some("1".into())]);
    let kept: Vec<_> = calls.iter().map(|c| c.header("x-kept")).collect();
    assert_eq!(kept, [Some("yes"), Some("yes")]);
    assert_eq!(timeouts(&calls), [Some(Ok(ms(2000))), Some(Ok(ms(1900)))]);
}

#[grpc_chaos::test]
async fn a_grpc_timeout_that_does_not_parse_is_not_sent_on() {
    let server = fake(SAY_HELLO, Reply::message(&reply("ok")));
    let client = retrying(&server, RetryLayer::new(exact_policy(3)));
    let mut request = tonic::Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("grpc-timeout", "soon".parse().unwrap());

    client.clone().say_hello(request).await.unwrap();

    let calls = server.received_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].timeout, None, "{:?}", calls[0].metadata);
}

#[grpc_chaos::test]
async fn a_spent_budget_ends_at_the_deadline_with_no_attempt_after() {
    let server = fake(SAY_HELLO, unavailable());
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));
    let t0 = Instant::now();

    let status = say_hello(&client, Some(ms(250))).await.unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(
        status.message().contains("Unavailable"),
        "the last attempt's status is named: {}",
        status.message()
    );
    assert_eq!(t0.elapsed(), ms(250));
    assert_eq!(arrivals(&server.received_calls(), t0), [ms(0), ms(100)]);
}

#[grpc_chaos::test]
async fn the_layer_never_retries_a_code_outside_the_policy() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::error(Code::InvalidArgument, "bad name").trailer("x-why", "empty"))
        .expect(1)
        .mount(&server);
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));

    let status = say_hello(&client, None).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "bad name");
    assert_eq!(status.metadata().get("x-why").unwrap(), "empty");
}

#[grpc_chaos::test]
async fn response_headers_commit_the_call() {
    let server = FakeServer::in_memory();
    // Headers first, then UNAVAILABLE in the trailers: A6 says the call is committed.
    Stub::given(method(SAY_HELLO))
        .respond_with(unavailable().header("x-started", "yes"))
        .expect(1)
        .mount(&server);
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));

    let status = say_hello(&client, None).await.unwrap_err();

    assert_eq!(status.code(), Code::Unavailable);
}

#[grpc_chaos::test]
async fn the_layer_obeys_pushback_to_the_millisecond_and_stops_on_a_negative_one() {
    let server = FakeServer::in_memory();
    let pushed = |v: &str| unavailable().trailer("grpc-retry-pushback-ms", v);
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            pushed("1234"),
            Reply::message(&reply("ok")),
        ]))
        .up_to_n_times(2)
        .mount(&server);
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));
    let t0 = Instant::now();

    assert_eq!(say_hello(&client, None).await.unwrap(), "ok");
    assert_eq!(arrivals(&server.received_calls(), t0), [ms(0), ms(1234)]);

    Stub::given(method(SAY_HELLO))
        .respond_with(pushed("-1"))
        .expect(1)
        .mount(&server);
    server.clear_received_calls();
    let status = say_hello(&client, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.received_calls().len(), 1);
}

/// Sends `names` as a client stream, the first at once and the rest after `gap`.
async fn client_stream(client: &Client, names: &[&str], gap: Duration) -> Result<String, Status> {
    let (tx, rx) = mpsc::channel(names.len());
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    tokio::spawn(async move {
        for (i, name) in names.into_iter().enumerate() {
            if i == 1 {
                sleep(gap).await;
            }
            if tx.send(HelloRequest { name }).await.is_err() {
                return;
            }
        }
    });
    let reply = client
        .clone()
        .say_hello_client_stream(ReceiverStream::new(rx))
        .await?;
    Ok(reply.into_inner().message)
}

fn encoded(names: &[&str]) -> Vec<Vec<u8>> {
    names.iter().map(|n| hello(n).encode_to_vec()).collect()
}

fn request_bytes(call: &ReceivedCall) -> Vec<Vec<u8>> {
    call.request_messages.iter().map(|m| m.to_vec()).collect()
}

#[grpc_chaos::test]
async fn a_client_stream_under_the_limit_is_replayed_byte_for_byte_as_it_goes_on() {
    let server = FakeServer::in_memory();
    // Attempt 1 fails at once, while the client is still sending; attempt 2 (at 100 ms)
    // gets the message sent so far from the buffer, then the rest as they come (300 ms).
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::sequence([
            unavailable().without_waiting_for_half_close(),
            Reply::message(&reply("all three")),
        ]))
        .expect(2)
        .mount(&server);
    let client = retrying(&server, RetryLayer::new(exact_policy(3)));
    let names = ["ann", "bob", "cy"];
    let t0 = Instant::now();

    let answer = client_stream(&client, &names, ms(300)).await;

    assert_eq!(answer.unwrap(), "all three");
    assert_eq!(t0.elapsed(), ms(300));
    let calls = server.received_calls();
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100)]);
    assert_eq!(request_bytes(&calls[1]), encoded(&names));
}

#[grpc_chaos::test]
async fn a_client_stream_over_the_limit_is_committed_and_not_retried() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(unavailable())
        .expect(1)
        .mount(&server);
    let names = ["alice", "brian", "chloe"];
    // What the three messages take on the wire, with their 5-byte frame headers.
    let framed: usize = encoded(&names).iter().map(|m| 5 + m.len()).sum();
    let client = retrying(
        &server,
        RetryLayer::new(exact_policy(3)).buffer_limit(framed - 1),
    );

    let status = client_stream(&client, &names, ms(10)).await.unwrap_err();

    assert_eq!(status.code(), Code::Unavailable);
    let calls = server.received_calls();
    assert_eq!(request_bytes(&calls[0]), encoded(&names));

    // At exactly the limit the call is still replayable.
    server.reset();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::sequence([
            unavailable(),
            Reply::message(&reply("ok")),
        ]))
        .expect(2)
        .mount(&server);
    let client = retrying(
        &server,
        RetryLayer::new(exact_policy(3)).buffer_limit(framed),
    );
    assert_eq!(client_stream(&client, &names, ms(10)).await.unwrap(), "ok");
    let calls = server.received_calls();
    assert_eq!(request_bytes(&calls[1]), encoded(&names));
}

#[grpc_chaos::test]
async fn hedges_go_out_at_the_delay_and_the_first_success_cancels_the_rest() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            Reply::hang(),
            Reply::message(&reply("second wins")).delay(ms(150)),
            Reply::hang(),
        ]))
        .expect(3)
        .mount(&server);
    let client = retrying(&server, hedging(4, 100));
    let t0 = Instant::now();

    let answer = say_hello(&client, Some(ms(2000))).await;

    assert_eq!(answer.unwrap(), "second wins");
    assert_eq!(t0.elapsed(), ms(250));
    let calls = server.wait_for_ended_calls(3).await;
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100), ms(200)]);
    assert_eq!(
        previous_attempts(&calls),
        [None, Some("1".into()), Some("2".into())]
    );
    let losers: Vec<_> = [&calls[0], &calls[2]]
        .iter()
        .map(|c| cancelled_at(c).map(|at| at - t0))
        .collect();
    assert_eq!(losers, [Some(ms(250)), Some(ms(250))]);
    assert_eq!(calls[1].status_code(), Some(Code::Ok));
}

#[grpc_chaos::test]
async fn a_non_fatal_failure_sends_the_next_hedge_at_once() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            unavailable().delay(ms(30)),
            Reply::message(&reply("ok")).delay(ms(10)),
        ]))
        .expect(2)
        .mount(&server);
    let client = retrying(&server, hedging(3, 100));
    let t0 = Instant::now();

    assert_eq!(say_hello(&client, None).await.unwrap(), "ok");

    assert_eq!(t0.elapsed(), ms(40));
    assert_eq!(arrivals(&server.received_calls(), t0), [ms(0), ms(30)]);
}

#[grpc_chaos::test]
async fn a_fatal_failure_ends_the_hedged_call_and_cancels_the_rest() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            Reply::hang(),
            Reply::error(Code::PermissionDenied, "no").delay(ms(10)),
        ]))
        .expect(2)
        .mount(&server);
    let client = retrying(&server, hedging(3, 50));
    let t0 = Instant::now();

    let status = say_hello(&client, None).await.unwrap_err();

    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(t0.elapsed(), ms(60));
    let calls = server.wait_for_ended_calls(2).await;
    assert_eq!(cancelled_at(&calls[0]).map(|at| at - t0), Some(ms(60)));
}

#[grpc_chaos::test]
async fn hedges_share_one_budget_and_all_are_cancelled_at_the_deadline() {
    let server = fake(SAY_HELLO, Reply::hang());
    let client = retrying(&server, hedging(5, 100));
    let t0 = Instant::now();

    let status = say_hello(&client, Some(ms(250))).await.unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(t0.elapsed(), ms(250));
    let calls = server.wait_for_ended_calls(3).await;
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100), ms(200)]);
    assert_eq!(
        timeouts(&calls),
        [Some(Ok(ms(250))), Some(Ok(ms(150))), Some(Ok(ms(50)))]
    );
    for call in &calls {
        assert_eq!(cancelled_at(call).map(|at| at - t0), Some(ms(250)));
    }
}

/// Client streams hedged every 20 ms, twice at most: attempt 1 hangs; attempt 2 sends
/// its headers `after` it arrives, and answers "second".
fn hedged_client_stream(after: Duration) -> (FakeServer, Client) {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO_CLIENT_STREAM))
        .respond_with(Reply::sequence([
            Reply::hang(),
            Reply::message(&reply("second")).delay(after),
        ]))
        .expect(2)
        .mount(&server);
    let client = retrying(&server, hedging(2, 20));
    (server, client)
}

#[grpc_chaos::test]
async fn hedged_client_streams_each_get_the_whole_request() {
    let (server, client) = hedged_client_stream(ms(80));
    let names = ["ann", "bob", "cy"];
    let t0 = Instant::now();

    // The first message goes out at once, the others at 50 ms: attempt 2 (at 20 ms)
    // replays the first from the buffer and waits with attempt 1 for the rest. It
    // answers at 100 ms.
    let answer = client_stream(&client, &names, ms(50)).await;

    assert_eq!(answer.unwrap(), "second");
    assert_eq!(t0.elapsed(), ms(100));
    let calls = server.wait_for_ended_calls(2).await;
    assert_eq!(request_bytes(&calls[0]), encoded(&names));
    assert_eq!(request_bytes(&calls[1]), encoded(&names));
    assert_eq!(cancelled_at(&calls[0]).map(|at| at - t0), Some(ms(100)));
}

/// What one hedged attempt meets at the fake, after `delay_ms`.
#[derive(Clone, Copy, Debug)]
enum Meets {
    Ok,
    NonFatal,
    Fatal,
    Hang,
}

fn hedge_reply((meets, delay_ms): (Meets, u64)) -> Reply {
    match meets {
        Meets::Ok => Reply::message(&reply("ok")).delay(ms(delay_ms)),
        Meets::NonFatal => unavailable().delay(ms(delay_ms)),
        Meets::Fatal => Reply::error(Code::Internal, "fatal").delay(ms(delay_ms)),
        Meets::Hang => Reply::hang(),
    }
}

/// One hedged call against `attempts`; its arrivals, result code, and elapsed time.
fn run_hedged(
    max: u32,
    delay_ms: u64,
    budget_ms: u64,
    attempts: &[(Meets, u64)],
) -> (Vec<Duration>, Code, Duration, Vec<ReceivedCall>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let server = FakeServer::in_memory();
        Stub::given(method(SAY_HELLO))
            .respond_with(Reply::sequence(attempts.iter().copied().map(hedge_reply)))
            .mount(&server);
        let client = retrying(&server, hedging(max, delay_ms));
        let t0 = Instant::now();
        let code = match say_hello(&client, Some(ms(budget_ms))).await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        };
        let elapsed = t0.elapsed();
        let calls = server.received_calls();
        let calls = server.wait_for_ended_calls(calls.len()).await;
        (arrivals(&calls, t0), code, elapsed, calls)
    })
}

fn meets() -> impl Strategy<Value = (Meets, u64)> {
    let kind = prop_oneof![
        Just(Meets::Ok),
        Just(Meets::NonFatal),
        Just(Meets::Fatal),
        Just(Meets::Hang)
    ];
    (kind, 0u64..400)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_hedged_calls_keep_a6s_rules_and_replay_exactly(
        max in 2u32..8,
        delay_ms in 0u64..200,
        budget_ms in 50u64..1500,
        attempts in proptest::collection::vec(meets(), 5),
    ) {
        let (times, code, elapsed, calls) = run_hedged(max, delay_ms, budget_ms, &attempts);

        prop_assert!(!calls.is_empty());
        prop_assert!(calls.len() as u32 <= max.min(5), "{} attempts", calls.len());
        prop_assert!(elapsed <= ms(budget_ms), "{elapsed:?}");
        // Each hedge goes out at most one delay after the one before (sooner after a
        // non-fatal failure).
        for gap in times.windows(2).map(|w| w[1] - w[0]) {
            prop_assert!(gap <= ms(delay_ms), "gap {gap:?}");
        }
        // The call's code is one an attempt ended with, or the budget's.
        let sent: Vec<Code> = calls.iter().filter_map(ReceivedCall::status_code).collect();
        prop_assert!(
            code == Code::DeadlineExceeded || sent.contains(&code),
            "{code:?} from {sent:?}"
        );
        // Every attempt has ended: with its own status, or cancelled by the winner.
        prop_assert!(calls.iter().all(|c| !c.ending.is_in_progress()));
        // One attempt succeeds, or several at the one instant the winner did: a hedge
        // answering at that same instant is past the client's cancel (as in the stored
        // case: OK after 359 ms, and a hedge sent at 189 ms, OK after 170 ms).
        let oks: Vec<_> = calls.iter().filter(|c| c.status_code() == Some(Code::Ok)).collect();
        prop_assert!(
            oks.iter().all(|c| c.ending.at() == oks[0].ending.at()),
            "{:?}",
            oks.iter().map(|c| c.ending.at()).collect::<Vec<_>>()
        );
        // Same inputs, same run.
        let again = run_hedged(max, delay_ms, budget_ms, &attempts);
        prop_assert_eq!((times, code, elapsed), (again.0, again.1, again.2));
    }
}

#[grpc_chaos::test]
async fn a_server_stream_is_retried_before_its_headers_and_committed_after() {
    let server = FakeServer::in_memory();
    let two = [reply("a"), reply("b")];
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(Reply::sequence([
            unavailable(),
            Reply::messages(&two).then_status(Status::unavailable("mid-stream")),
        ]))
        .up_to_n_times(2)
        .mount(&server);
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));

    let mut stream = client
        .clone()
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let (messages, status) = read_until_error(&mut stream).await;

    assert_eq!(messages, two);
    // The second attempt sent headers: its UNAVAILABLE in the trailers is final.
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "mid-stream");
    assert_eq!(server.received_calls().len(), 2);
}

#[grpc_chaos::test]
async fn inside_a_served_call_the_budget_is_that_calls_deadline() {
    let server = fake(SAY_HELLO, unavailable());
    let client = retrying(&server, RetryLayer::new(exact_policy(5)));
    let t0 = Instant::now();
    let incoming = grpc_chaos::deadline::Deadline::after(ms(300));

    // No timeout of its own: the deadline of the call being served bounds the retries.
    let status = grpc_chaos::deadline::scope(Some(incoming), say_hello(&client, None))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(t0.elapsed(), ms(300));
    let calls = server.received_calls();
    assert_eq!(arrivals(&calls, t0), [ms(0), ms(100)]);
    assert_eq!(calls[1].timeout, Some(Ok(ms(200))));
}

#[grpc_chaos::test]
async fn a_throttled_target_gets_no_further_hedges() {
    let server = fake(SAY_HELLO, unavailable().delay(ms(1)));
    let bucket = std::sync::Arc::new(grpc_chaos::retry::RetryThrottle::new(4, 1.0).unwrap());
    let policy = HedgingPolicy::builder()
        .max_attempts(5)
        .hedging_delay(ms(10))
        .non_fatal_status_codes([Code::Unavailable])
        .build()
        .unwrap()
        .throttled_by(bucket.clone());
    let client = retrying(&server, RetryLayer::hedging(policy));

    // 4 tokens: the first failure leaves 3 (the next hedge goes), the second 2 (stop).
    let status = say_hello(&client, None).await.unwrap_err();

    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.received_calls().len(), 2);
    assert_eq!(bucket.tokens(), 2.0);
}

#[grpc_chaos::test]
async fn a_hedged_call_over_the_limit_sends_no_further_hedges() {
    let server = fake(SAY_HELLO_CLIENT_STREAM, Reply::hang());
    let client = retrying(&server, hedging(3, 10).buffer_limit(8));
    let t0 = Instant::now();

    // Attempt 1 sends all three messages at once, past the 8-byte limit: the call is
    // committed to it, so no hedge follows, and the budget ends it.
    let mut request = tonic::Request::new(tokio_stream::iter([
        hello("ann"),
        hello("bob"),
        hello("cy"),
    ]));
    request.set_timeout(ms(100));
    let status = client
        .clone()
        .say_hello_client_stream(request)
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(t0.elapsed(), ms(100));
    let calls = server.wait_for_ended_calls(1).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(request_bytes(&calls[0]), encoded(&["ann", "bob", "cy"]));
}

#[grpc_chaos::test]
async fn only_the_named_methods_are_retried() {
    let server = FakeServer::in_memory();
    Stub::given(grpc_chaos::fake::any())
        .respond_with(unavailable())
        .mount(&server);
    let by_method = retrying(
        &server,
        RetryLayer::new(exact_policy(2)).only([SAY_HELLO_STREAM]),
    );
    let by_service = retrying(
        &server,
        RetryLayer::new(exact_policy(2)).only(["/pb.Greeter/"]),
    );
    let elsewhere = retrying(
        &server,
        RetryLayer::new(exact_policy(2)).only(["/pb.Other/"]),
    );

    let mut counts = Vec::new();
    for client in [&by_method, &by_service, &elsewhere] {
        server.clear_received_calls();
        let status = say_hello(client, None).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
        counts.push(server.received_calls().len());
    }

    assert_eq!(counts, [1, 2, 1]);
}

/// A server stream with a 300 ms budget: attempt 1 fails, attempt 2 (at 100 ms) sends
/// one message and would send another at 600 ms.
async fn committed_stream_outliving_its_budget<S>(server: &FakeServer, service: S)
where
    S: tonic::client::GrpcService<tonic::body::Body>,
    S::Error: Into<tower::BoxError>,
    S::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <S::ResponseBody as http_body::Body>::Error: Into<tower::BoxError> + Send,
{
    server.reset();
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(Reply::sequence([
            unavailable(),
            Reply::message(&reply("first")).then_message_after(ms(500), &reply("late")),
        ]))
        .mount(server);
    let t0 = Instant::now();
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(ms(300));

    let response = GreeterClient::new(service).say_hello_stream(request).await;
    let (messages, status) = read_until_error(&mut response.unwrap().into_inner()).await;

    assert_eq!(messages, [reply("first")]);
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(t0.elapsed(), ms(300));
    assert_eq!(arrivals(&server.received_calls(), t0), [ms(0), ms(100)]);
}

#[grpc_chaos::test]
async fn with_the_deadline_layer_on_either_side_a_committed_stream_ends_at_the_budget() {
    let server = FakeServer::in_memory();
    let retry = || RetryLayer::new(exact_policy(3));
    let deadline = grpc_chaos::deadline::PropagateDeadlineLayer::new;

    let outside = tower::ServiceBuilder::new()
        .layer(deadline())
        .layer(retry())
        .service(server.channel());
    committed_stream_outliving_its_budget(&server, outside).await;
    let inside = tower::ServiceBuilder::new()
        .layer(retry())
        .layer(deadline())
        .service(server.channel());
    committed_stream_outliving_its_budget(&server, inside).await;
}

type Answer = Result<http::Response<tonic::body::Body>, tower::BoxError>;

/// A stand-in for a channel: answers attempt `n` (from 1) with `answer(n)`; the count
/// is the number of attempts.
fn scripted(
    answer: impl Fn(u32) -> Answer + Clone + Send + 'static,
) -> (
    impl tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = tower::BoxError,
            Future = std::future::Ready<Answer>,
        > + Clone,
    Arc<AtomicU32>,
) {
    let count = Arc::new(AtomicU32::new(0));
    let attempts = count.clone();
    let service = tower::service_fn(move |_: http::Request<tonic::body::Body>| {
        std::future::ready(answer(attempts.fetch_add(1, Ordering::SeqCst) + 1))
    });
    (service, count)
}

fn ok_response() -> http::Response<tonic::body::Body> {
    let body = http_body_util::Full::new(bytes::Bytes::from(grpc_chaos_frame(&reply("ok"))));
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let body = http_body_util::BodyExt::with_trailers(body, std::future::ready(Some(Ok(trailers))));
    let mut response = http::Response::new(tonic::body::Body::new(body));
    response
        .headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    response
}

/// One message in gRPC's length-prefixed framing.
fn grpc_chaos_frame(message: &grpc_chaos::pb::HelloReply) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    framed.extend_from_slice(&bytes);
    framed
}

#[grpc_chaos::test]
async fn an_http_error_without_grpc_status_is_retried_as_the_http_mapping_says() {
    // A proxy in the way answers 503 once, with no grpc-status.
    let (service, attempts) = scripted(|n| {
        if n == 1 {
            let mut busy = http::Response::new(tonic::body::Body::empty());
            *busy.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            Ok(busy)
        } else {
            Ok(ok_response())
        }
    });
    let layered = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(exact_policy(3)))
        .service(service);

    let reply = GreeterClient::new(layered).say_hello(hello("Ada")).await;

    assert_eq!(reply.unwrap().into_inner().message, "ok");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[grpc_chaos::test]
async fn a_connection_that_cannot_be_made_is_retried() {
    let (service, attempts) = scripted(|n| {
        if n < 3 {
            let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            Err(tonic::ConnectError(Box::new(refused)).into())
        } else {
            Ok(ok_response())
        }
    });
    let layered = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(exact_policy(3)))
        .service(service);
    let t0 = Instant::now();

    let reply = GreeterClient::new(layered).say_hello(hello("Ada")).await;

    assert_eq!(reply.unwrap().into_inner().message, "ok");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(t0.elapsed(), ms(300));
}

#[grpc_chaos::test]
async fn a_committed_call_that_fails_takes_a_token_when_its_status_arrives() {
    let server = fake(
        SAY_HELLO_STREAM,
        Reply::messages(&[reply("a")]).then_status(Status::unavailable("mid-stream")),
    );
    let bucket = Arc::new(grpc_chaos::retry::RetryThrottle::new(10, 0.5).unwrap());
    let client = retrying(
        &server,
        RetryLayer::new(exact_policy(3).throttled_by(bucket.clone())),
    );

    let response = client.clone().say_hello_stream(hello("Ada")).await.unwrap();
    // Headers arrived: committed, and nothing settled yet.
    assert_eq!(bucket.tokens(), 10.0);
    let (_, status) = read_until_error(&mut response.into_inner()).await;

    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        bucket.tokens(),
        9.0,
        "the retryable status in the trailers took a token"
    );
    assert_eq!(server.received_calls().len(), 1);
}

#[grpc_chaos::test]
async fn the_retry_layer_is_throttled_and_recovers() {
    let server = down_or_up_fake();
    let bucket = Arc::new(grpc_chaos::retry::RetryThrottle::new(4, 1.0).unwrap());
    let client = retrying(
        &server,
        RetryLayer::new(exact_policy(5).throttled_by(bucket.clone())),
    );
    let call = |case: &'static str| {
        let mut client = client.clone();
        async move {
            client
                .say_hello(hello_in_case(case))
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }
    };

    // 4 tokens: 4 -> 3 (retried) -> 2 (at half: stop).
    assert_eq!(call("down").await, Err(Code::Unavailable));
    assert_eq!((server.received_calls().len(), bucket.tokens()), (2, 2.0));
    assert_eq!(call("down").await, Err(Code::Unavailable));
    assert_eq!(server.received_calls().len(), 3, "throttled: not retried");
    for _ in 0..3 {
        call("up").await.unwrap();
    }
    server.clear_received_calls();
    assert_eq!(call("down").await, Err(Code::Unavailable));
    assert_eq!(server.received_calls().len(), 2, "retried again");
}

#[grpc_chaos::test]
async fn pushback_delays_the_next_hedge_or_stops_them() {
    let pushed = |v: &str| {
        unavailable()
            .trailer("grpc-retry-pushback-ms", v)
            .delay(ms(10))
    };
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::sequence([
            pushed("250"),
            Reply::message(&reply("ok")),
        ]))
        .up_to_n_times(2)
        .mount(&server);
    let client = retrying(&server, hedging(3, 100));
    let t0 = Instant::now();

    // Attempt 1 fails at 10 ms asking for 250 ms: attempt 2 goes at 260, not at once
    // and not at the 100 ms hedging delay.
    assert_eq!(say_hello(&client, None).await.unwrap(), "ok");
    assert_eq!(arrivals(&server.received_calls(), t0), [ms(0), ms(260)]);

    Stub::given(method(SAY_HELLO))
        .respond_with(pushed("-1"))
        .mount(&server);
    server.clear_received_calls();
    let status = say_hello(&client, None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        server.received_calls().len(),
        1,
        "no hedge after a negative pushback"
    );
}

#[grpc_chaos::test(virtual_limit = "28h")]
async fn a_budget_tonic_rounds_down_still_ends_with_deadline_exceeded() {
    let server = fake(SAY_HELLO, Reply::hang());
    let client = retrying(&server, RetryLayer::new(exact_policy(3)));
    let t0 = Instant::now();

    // The deadline of the call being served is 100,000.5 s away. The attempt carries it
    // as `100000S` (eight digits at most), so tonic's channel times 100,000 s and fails
    // the attempt (CANCELLED, "Timeout expired") half a second before the deadline.
    let incoming = grpc_chaos::deadline::Deadline::after(ms(100_000_500));
    let status = grpc_chaos::deadline::scope(Some(incoming), say_hello(&client, None))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(t0.elapsed(), ms(100_000_500), "{status:?}");
    assert_eq!(
        server.received_calls()[0].grpc_timeout.as_deref(),
        Some("100000S")
    );
}

#[grpc_chaos::test]
async fn a_hedged_client_stream_committed_mid_stream_goes_on_to_the_winner_alone() {
    let (server, client) = hedged_client_stream(ms(10));
    let names = ["ann", "bob", "cy"];
    let t0 = Instant::now();

    // Attempt 2 (at 20 ms) sends headers at 30 ms: the call is its own, attempt 1 is
    // cancelled, and the messages sent at 50 ms go to attempt 2 alone.
    let answer = client_stream(&client, &names, ms(50)).await;

    assert_eq!(answer.unwrap(), "second");
    let calls = server.wait_for_ended_calls(2).await;
    assert_eq!(cancelled_at(&calls[0]).map(|at| at - t0), Some(ms(30)));
    assert_eq!(request_bytes(&calls[0]), encoded(&["ann"]));
    assert_eq!(request_bytes(&calls[1]), encoded(&names));
    assert_eq!(t0.elapsed(), ms(50));
}

#[grpc_chaos::test]
async fn a_first_attempt_that_never_answers_ends_at_the_deadline_by_the_layers_own_timer() {
    // A service with no timer of its own (tonic's channel would time `grpc-timeout`
    // itself): only the layer's deadline can end the call.
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = attempts.clone();
    let silent = tower::service_fn(move |_: http::Request<tonic::body::Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<http::Response<tonic::body::Body>, tower::BoxError>>()
    });
    let layered = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(exact_policy(3)))
        .service(silent);
    let mut request = tonic::Request::new(hello("Ada"));
    request.set_timeout(ms(300));
    let t0 = Instant::now();

    let status = GreeterClient::new(layered)
        .say_hello(request)
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(t0.elapsed(), ms(300));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}
