//! `serve`'s memory stays bounded: a gigabyte of request messages goes through it, and
//! its resident set grows by no more than the journal's default budget and a fixed
//! margin for what is in flight.

use std::time::Instant;

use grpc_chaos::pb::grpc::testing::test_service_client::TestServiceClient;
use grpc_chaos::pb::grpc::testing::{Payload, StreamingInputCallRequest};

use crate::served::Served;

const MESSAGE: usize = 8 << 20;
const STREAMS: usize = 4;
const MESSAGES_PER_STREAM: usize = 32;
/// The journal's default budget (`--journal-bytes`).
const JOURNAL_BUDGET_KIB: u64 = 64 << 10;
/// What may be in flight beside it: each stream's message being read, h2's windows, and
/// what the allocator keeps of freed buffers.
const MARGIN_KIB: u64 = 128 << 10;

#[grpc_chaos::test(paused = false, wall_limit = "300s")]
async fn a_gigabyte_of_messages_leaves_serve_within_its_journal_budget() {
    let served = Served::start(&[]).await;
    let channel = tonic::transport::Endpoint::from_shared(served.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = TestServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let Some(before) = served.rss_kib() else {
        eprintln!("no /proc here: RSS is not measured");
        return;
    };
    let started = Instant::now();

    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let mut client = client.clone();
        streams.push(tokio::spawn(async move {
            let requests =
                tokio_stream::iter((0..MESSAGES_PER_STREAM).map(|_| StreamingInputCallRequest {
                    payload: Some(Payload {
                        r#type: 0,
                        body: vec![7; MESSAGE],
                    }),
                    ..Default::default()
                }));
            let reply = client.streaming_input_call(requests).await.unwrap();
            reply.into_inner().aggregated_payload_size
        }));
    }
    for stream in streams {
        let total = stream.await.unwrap();
        assert_eq!(total as usize, MESSAGE * MESSAGES_PER_STREAM);
    }

    let after = served.rss_kib().unwrap();
    let sent_mib = (STREAMS * MESSAGES_PER_STREAM * MESSAGE) >> 20;
    eprintln!(
        "serve RSS: {} MiB before, {} MiB after {sent_mib} MiB of requests in {:?}",
        before >> 10,
        after >> 10,
        started.elapsed()
    );
    assert!(
        after.saturating_sub(before) <= JOURNAL_BUDGET_KIB + MARGIN_KIB,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
