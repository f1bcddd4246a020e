//! A bounded load test on TCP 127.0.0.1: 10,000 concurrent streaming calls, a seeded
//! ~30% of them cancelled at random points. Every call appears in the journal exactly
//! once with its true ending, no handler leaks, and memory stays flat over two rounds.
//! It prints calls, time and peak RSS for the README.

use std::collections::HashMap;
use std::time::Duration;

use grpc_chaos::fake::{method, CallEnding, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use tonic::transport::Channel;
use tonic::Code;

use crate::support::*;

const CALLS: usize = 10_000;
/// Calls spread over this many connections (HTTP/2 servers allow ~200 streams each).
const CONNECTIONS: usize = 64;
const SEED: u64 = 0x5eed_1234;

/// The process's resident set size, and its peak, in KiB (Linux).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// SplitMix64: which calls are cancelled, and after how many messages.
fn plan(seed: u64) -> Vec<Option<usize>> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..CALLS)
        .map(|_| (next() % 100 < 30).then(|| (next() % 4) as usize))
        .collect()
}

/// One round: every call at once; returns how each ended on the client side.
async fn round(channels: &[Channel], plan: &[Option<usize>]) -> Vec<bool> {
    let mut tasks = Vec::with_capacity(CALLS);
    for (i, cancel_after) in plan.iter().copied().enumerate() {
        let mut client = GreeterClient::new(channels[i % channels.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(hello("load"));
            request
                .metadata_mut()
                .insert("x-call", i.to_string().parse().unwrap());
            let mut stream = client.say_hello_stream(request).await.unwrap().into_inner();
            let mut got = 0;
            loop {
                if Some(got) == cancel_after {
                    return false; // dropped: the client cancels here
                }
                match stream.message().await {
                    Ok(Some(_)) => got += 1,
                    Ok(None) => return true,
                    Err(status) => panic!("call {i}: {status:?}"),
                }
            }
        }));
    }
    let mut completed = Vec::with_capacity(CALLS);
    for task in tasks {
        completed.push(task.await.unwrap());
    }
    completed
}

#[grpc_chaos::test(worker_threads = 2, wall_limit = "240s")]
async fn ten_thousand_streams_with_seeded_cancels_are_journaled_once_each_without_leaks() {
    let server = FakeServer::start().await;
    let four = (0..4).fold(Reply::stream(), |r, i| {
        r.then_message_after(ms(20), &reply(&i.to_string()))
    });
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(four)
        .mount(&server);
    let channels: Vec<Channel> = (0..CONNECTIONS).map(|_| server.channel()).collect();
    let plan = plan(SEED);
    let cancels = plan.iter().filter(|p| p.is_some()).count();
    assert!((2_700..=3_300).contains(&cancels), "{cancels} cancels");

    let mut rss_after = Vec::new();
    let mut peak_after = Vec::new();
    let started = std::time::Instant::now();
    for round_no in 0..2 {
        let round_started = std::time::Instant::now();
        let completed = round(&channels, &plan).await;
        let calls =
            tokio::time::timeout(Duration::from_secs(60), server.wait_for_ended_calls(CALLS))
                .await
                .unwrap();
        tokio::time::timeout(Duration::from_secs(60), server.wait_for_idle())
            .await
            .unwrap();

        assert_eq!(
            calls.len(),
            CALLS,
            "round {round_no}: every call journaled once"
        );
        let mut by_index: HashMap<usize, &CallEnding> = HashMap::new();
        for call in &calls {
            let i: usize = call
                .metadata
                .get("x-call")
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                by_index.insert(i, &call.ending).is_none(),
                "call {i} journaled twice"
            );
        }
        for (i, done) in completed.iter().enumerate() {
            let ending = by_index[&i];
            if *done {
                assert!(
                    matches!(ending, CallEnding::Status { code: Code::Ok, .. }),
                    "call {i}: {ending:?}"
                );
            } else {
                // A client that stops reading after the last message may still let the
                // server finish first; otherwise the server sees the cancel.
                assert!(
                    matches!(
                        ending,
                        CallEnding::Cancelled { .. } | CallEnding::Status { code: Code::Ok, .. }
                    ),
                    "call {i}: {ending:?}"
                );
            }
        }
        let cancelled = calls
            .iter()
            .filter(|c| matches!(c.ending, CallEnding::Cancelled { .. }))
            .count();
        assert_eq!(
            server.live_calls(),
            0,
            "round {round_no}: no handler leaked"
        );
        server.clear_received_calls();
        let (rss, peak) = rss_kib();
        rss_after.push(rss);
        peak_after.push(peak);
        println!(
            "load round {round_no}: {CALLS} streaming calls ({cancelled} cancelled by the server's count) in {:?}; RSS {} MiB, peak {} MiB",
            round_started.elapsed(),
            rss / 1024,
            peak / 1024
        );
    }
    println!("load total: {:?}", started.elapsed());
    // Flat: after the second round, resident memory is within a quarter of the first
    // round's peak. (Not of the RSS after it: the allocator keeps what a round's peak
    // took, and how high that peak goes depends on how many calls the machine's speed
    // lets overlap. What a leak of the journal or of handlers would add comes on top of
    // it, round after round; the counts above are the exact check.)
    assert!(
        rss_after[1] < peak_after[0] + peak_after[0] / 4,
        "RSS grew: {rss_after:?} KiB after the rounds, first peak {} KiB",
        peak_after[0]
    );
}

/// `grpc-chaos serve`'s journal limits (`--journal-bytes`, `--journal-message-bytes`).
const SERVE_JOURNAL_BYTES: usize = 64 << 20;
const SERVE_MESSAGE_BYTES: usize = 256 << 10;

#[grpc_chaos::test(worker_threads = 2, wall_limit = "240s")]
async fn a_hundred_streams_of_8_mib_messages_leave_the_journal_within_its_budget() {
    use grpc_chaos::fake::DecodeMessageError;
    use grpc_chaos::pb::grpc::testing::test_service_client::TestServiceClient;
    use grpc_chaos::pb::grpc::testing::{Payload, StreamingInputCallRequest};

    const STREAMS: usize = 100;
    const AT_ONCE: usize = 4;
    const MESSAGE: usize = 8 << 20;
    let server = FakeServer::builder()
        .journal_bytes(SERVE_JOURNAL_BYTES)
        .journal_message_bytes(SERVE_MESSAGE_BYTES)
        .start()
        .await;
    grpc_chaos::builtin::mount_all(&server);
    let client = TestServiceClient::new(server.channel()).max_encoding_message_size(usize::MAX);
    let (before, _) = rss_kib();
    let started = std::time::Instant::now();

    for batch in 0..STREAMS / AT_ONCE {
        let mut streams = Vec::new();
        for _ in 0..AT_ONCE {
            let mut client = client.clone();
            streams.push(tokio::spawn(async move {
                let request = StreamingInputCallRequest {
                    payload: Some(Payload {
                        r#type: 0,
                        body: vec![batch as u8; MESSAGE],
                    }),
                    ..Default::default()
                };
                let reply = client
                    .streaming_input_call(tokio_stream::iter([request]))
                    .await
                    .unwrap();
                reply.into_inner().aggregated_payload_size as usize
            }));
        }
        for stream in streams {
            assert_eq!(stream.await.unwrap(), MESSAGE);
        }
    }

    let (after, peak) = rss_kib();
    println!(
        "large messages: {STREAMS} streams of 8 MiB in {:?}; RSS {} MiB before, {} MiB after, peak {} MiB; journal {} MiB",
        started.elapsed(),
        before >> 10,
        after >> 10,
        peak >> 10,
        server.journal_bytes() >> 20
    );
    // The journal answers for every call, each message marked truncated with its size.
    let calls = server.wait_for_ended_calls(STREAMS).await;
    assert_eq!(calls.len(), STREAMS);
    assert!(server.journal_bytes() <= SERVE_JOURNAL_BYTES);
    let latest = calls.last().unwrap();
    assert_eq!(latest.status_code(), Some(Code::Ok));
    assert_eq!(latest.request_messages[0].len(), SERVE_MESSAGE_BYTES);
    assert!(latest.request_sizes[0] > MESSAGE);
    assert!(matches!(
        latest.request::<StreamingInputCallRequest>(0),
        Err(DecodeMessageError::Truncated {
            kept: SERVE_MESSAGE_BYTES,
            ..
        })
    ));
    // The RSS printed above is this whole process: the client's messages and the other
    // tests running beside this one. `cli/tests/it/serve_memory.rs` measures `serve`
    // alone and asserts its budget.
}
