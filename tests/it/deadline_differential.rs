//! Differential test: our strict `grpc-timeout` parser against tonic's, observed through
//! what a tonic client does with the header (it times the call by what it parsed).
//! Every disagreement is listed in the `deadline` module docs.

use std::time::Duration;

use grpc_chaos::deadline::parse_grpc_timeout;
use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::Request;

use crate::support::*;

/// How long a tonic client let the call run before timing it out; `None` if it ignored
/// the header (the call would hang for ever; an hour stands for that).
async fn tonic_reading(server: &FakeServer, raw: &str) -> Option<Duration> {
    let mut request = Request::new(hello("Ada"));
    request
        .metadata_mut()
        .insert("grpc-timeout", MetadataValue::try_from(raw).unwrap());
    let start = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(3600),
        greeter(server).say_hello(request),
    )
    .await;
    outcome.ok().map(|_| start.elapsed())
}

// The cases include hour-long timeouts that tonic honours in full.
#[grpc_chaos::test(virtual_limit = "24h")]
async fn tonic_and_the_spec_disagree_only_where_documented() {
    let server = FakeServer::in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::hang())
        .mount(&server);
    let cases = [
        "1S",
        "100m",
        "250000u",
        "99999999n",
        "2M",
        "1H",
        "00000007S",
        "0m",
        "+1S",
        "+0m",
        "-1S",
        " 1S",
        "1S ",
        "1 S",
        "123456789S",
        "1s",
        "1X",
        "1",
        "S",
        "",
        "1.5S",
        "0x1S",
        "1e3m",
    ];

    let mut disagreements = Vec::new();
    for raw in cases {
        // tokio's timers tick in whole milliseconds, so that is what can be observed.
        let ours = parse_grpc_timeout(raw)
            .ok()
            .map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64));
        let theirs = tonic_reading(&server, raw).await;
        if ours != theirs {
            disagreements.push((raw, ours, theirs));
        }
    }

    // tonic parses the digits with u64::from_str, which takes a leading '+'.
    assert_eq!(
        disagreements,
        [
            ("+1S", None, Some(Duration::from_secs(1))),
            ("+0m", None, Some(Duration::ZERO)),
        ]
    );
}
