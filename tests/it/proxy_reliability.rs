//! The proxy under load, on 127.0.0.1 between a tonic client and a tonic server: 10,000
//! concurrent streaming calls, with a seeded mix of injected faults and client cancels.
//! Every call delivers every message intact and in order, or ends with the injected
//! status after an intact prefix, or was cancelled by its client; the proxy's journal
//! holds each call once, ended. After two rounds no call and no connection is left in
//! the proxy. (RSS is printed, not asserted: it grows
//! over the first rounds to the allocator's working size, as much as the same rounds
//! straight to the upstream make it grow.)

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use grpc_chaos::fake::{method, CallEnding};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::greeter_server::{Greeter, GreeterServer};
use grpc_chaos::pb::{HelloReply, HelloRequest};
use grpc_chaos::proxy::{Fault, FaultRule, Proxy, Upstream};
use grpc_chaos::rng::SplitMix64;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming};

const CALLS: usize = 10_000;
const MESSAGES: usize = 5;

/// A real tonic Greeter whose stream answers `NAME-1` … `NAME-5`.
struct Numbered;

type Replies = Pin<Box<dyn Stream<Item = Result<HelloReply, Status>> + Send>>;

#[tonic::async_trait]
impl Greeter for Numbered {
    async fn say_hello(&self, _: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Err(Status::unimplemented(""))
    }
    type SayHelloStreamStream = Replies;
    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Replies>, Status> {
        let name = request.into_inner().name;
        let replies = (1..=MESSAGES).map(move |i| {
            Ok(HelloReply {
                message: format!("{name}-{i}"),
            })
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }
    async fn say_hello_client_stream(
        &self,
        _: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        Err(Status::unimplemented(""))
    }
    type SayHelloBidiStreamStream = Replies;
    async fn say_hello_bidi_stream(
        &self,
        _: Request<Streaming<HelloRequest>>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented(""))
    }
}

/// How a call ended, as its client saw it.
#[derive(Debug, PartialEq)]
enum Outcome {
    Whole,
    Injected(usize),
    Cancelled,
}

async fn one_call(
    channel: tonic::transport::Channel,
    i: usize,
    cancel: bool,
) -> Result<Outcome, String> {
    let name = format!("c{i}");
    let mut client = GreeterClient::new(channel);
    let mut stream = match client
        .say_hello_stream(HelloRequest { name: name.clone() })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == Code::Unavailable && s.message() == "injected" => {
            return Ok(Outcome::Injected(0))
        }
        Err(s) => return Err(format!("call {i}: {s:?}")),
    };
    let mut got = 0;
    loop {
        match stream.message().await {
            Ok(Some(m)) => {
                got += 1;
                if m.message != format!("{name}-{got}") {
                    return Err(format!("call {i}: message {got} was {:?}", m.message));
                }
                if cancel {
                    // Dropping the stream cancels the call (RST_STREAM).
                    return Ok(Outcome::Cancelled);
                }
            }
            Ok(None) if got == MESSAGES => return Ok(Outcome::Whole),
            Ok(None) => return Err(format!("call {i}: ended OK after {got} messages")),
            Err(s) if s.code() == Code::Unavailable && s.message() == "injected" => {
                return Ok(Outcome::Injected(got));
            }
            Err(s) => return Err(format!("call {i}: {s:?} after {got} messages")),
        }
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One round of calls; its channels are dropped at the end, closing their connections.
async fn round(proxy: SocketAddr, seed: u64) -> Vec<Outcome> {
    // A few connections, as a client pool would have; each carries many streams.
    let channels: Vec<_> = (0..8)
        .map(|_| {
            tonic::transport::Endpoint::from_shared(format!("http://{proxy}"))
                .unwrap()
                .connect_lazy()
        })
        .collect();
    let mut rng = SplitMix64::new(seed);
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let cancel = rng.next_f64() < 0.1;
            tokio::spawn(one_call(channels[i % channels.len()].clone(), i, cancel))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(CALLS);
    for call in calls {
        outcomes.push(call.await.unwrap().unwrap_or_else(|e| panic!("{e}")));
    }
    outcomes
}

/// The round's calls are each in the journal once, ended as the client saw them (or,
/// for a client that cancelled once the proxy had sent everything, as the proxy ended
/// them); then the journal is cleared for the next round.
async fn journal_holds_each_call_once(proxy: &Proxy, outcomes: &[Outcome]) {
    let calls = proxy
        .wait_for_ended_calls_within(CALLS, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{}", e.to_string().lines().next().unwrap_or_default()));
    assert_eq!(calls.len(), CALLS);
    let ids: std::collections::HashSet<usize> = calls.iter().map(|c| c.call.id).collect();
    assert_eq!(ids.len(), CALLS);
    let (mut ok, mut injected, mut cancelled) = (0, 0, 0);
    for call in &calls {
        match &call.call.ending {
            CallEnding::Status { code: Code::Ok, .. } => {
                ok += 1;
                assert_eq!(call.call.response_messages.len(), MESSAGES);
            }
            CallEnding::Status {
                code: Code::Unavailable,
                message,
                ..
            } if message == "injected" => injected += 1,
            CallEnding::Cancelled { .. } => cancelled += 1,
            other => panic!("call {} ended {other:?}", call.call.id),
        }
    }
    assert_eq!(ok + injected + cancelled, CALLS);
    let whole = outcomes.iter().filter(|o| **o == Outcome::Whole).count();
    let client_injected = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Injected(_)))
        .count();
    assert!(
        ok >= whole && injected >= client_injected,
        "{ok} {injected} {cancelled}"
    );
    proxy.clear_received_calls_where(|_| true);
}

#[grpc_chaos::test(paused = false, worker_threads = 2, wall_limit = "120s")]
async fn ten_thousand_streams_through_seeded_faults_and_cancels() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(Numbered))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let stream = || method("/pb.Greeter/SayHelloStream");
    let rules = [
        FaultRule::given(stream())
            .percentage(15.0)
            .with(Fault::new().abort_after(2, Status::unavailable("injected"))),
        FaultRule::given(stream())
            .percentage(10.0)
            .with(Fault::new().answer(Status::unavailable("injected"))),
        FaultRule::given(stream())
            .percentage(10.0)
            .with(Fault::new().delay_messages(Duration::from_millis(1), Some(3))),
    ];
    let proxy = Arc::new(
        Proxy::builder(Upstream::tcp(upstream))
            .rules(rules)
            .seed(42)
            .start_on("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap(),
    );
    let addr = proxy.addr().unwrap();

    let started = std::time::Instant::now();
    let first = round(addr, 1).await;
    let took = started.elapsed();
    journal_holds_each_call_once(&proxy, &first).await;
    let after_first = rss_kib();
    let second = round(addr, 2).await;
    journal_holds_each_call_once(&proxy, &second).await;
    let after_second = rss_kib();
    eprintln!(
        "proxy reliability: {CALLS} streams a round, {took:?} for the first; RSS after each round {after_first:?} {after_second:?} KiB"
    );

    for outcomes in [&first, &second] {
        let whole = outcomes.iter().filter(|o| **o == Outcome::Whole).count();
        let injected = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Injected(_)))
            .count();
        let cancelled = outcomes
            .iter()
            .filter(|o| **o == Outcome::Cancelled)
            .count();
        assert_eq!(whole + injected + cancelled, CALLS);
        // Aborts come after exactly two intact messages; answers before any.
        assert!(outcomes
            .iter()
            .all(|o| !matches!(o, Outcome::Injected(n) if *n != 0 && *n != 2)));
        assert!(
            whole > CALLS / 2 && injected > CALLS / 10 && cancelled > CALLS / 20,
            "{whole} {injected} {cancelled}"
        );
    }
    // Nothing is left behind: every call and every connection is gone.
    tokio::time::timeout(Duration::from_secs(10), proxy.wait_for_idle())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} calls and {} connections still open",
                proxy.live_calls(),
                proxy.open_connections()
            )
        });
    assert_eq!((proxy.live_calls(), proxy.open_connections()), (0, 0));
}
