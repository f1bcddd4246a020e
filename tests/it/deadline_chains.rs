//! Property: over random chains of hops and delays, each hop sees exactly its caller's
//! time left minus the time it spent, so no hop sees a later deadline than its caller.

use std::time::Duration;

use grpc_chaos::deadline::{scope, Deadline, PropagateDeadlineLayer};
use grpc_chaos::fake::{method, CallHandle, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use proptest::prelude::*;
use tonic::{Code, Status};

use crate::support::*;

/// Hop `i` waits `delays[i]`, then calls hop `i + 1` with the deadline it was given.
fn chain(delays: &[u64]) -> Vec<FakeServer> {
    let hops: Vec<FakeServer> = (0..=delays.len())
        .map(|_| FakeServer::in_memory())
        .collect();
    for (i, delay) in delays.iter().enumerate() {
        let next = GreeterClient::new(
            tower::ServiceBuilder::new()
                .layer(PropagateDeadlineLayer::new())
                .service(hops[i + 1].channel()),
        );
        let delay = Duration::from_millis(*delay);
        Stub::given(method(SAY_HELLO))
            .respond_with(Reply::handler(move |mut call: CallHandle| {
                let mut next = next.clone();
                async move {
                    let deadline = match &call.request().timeout {
                        Some(Ok(t)) => Some(Deadline::after(*t)),
                        _ => None,
                    };
                    let req: HelloRequest = call.next().await?.unwrap_or_default();
                    tokio::time::sleep(delay).await;
                    let reply = scope(deadline, next.say_hello(req)).await?;
                    call.send(reply.get_ref()).await;
                    Ok(())
                }
            }))
            .mount(&hops[i]);
    }
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("end")))
        .mount(&hops[delays.len()]);
    hops
}

fn run_chain(budget_ms: u64, delays: Vec<u64>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let hops = chain(&delays);
        let mut first = GreeterClient::new(hops[0].channel());
        let mut request = tonic::Request::new(hello("Ada"));
        request.set_timeout(Duration::from_millis(budget_ms));
        let outcome = first.say_hello(request).await;

        let spent: u64 = delays.iter().sum();
        if spent < budget_ms {
            prop_assert!(outcome.is_ok(), "{outcome:?}");
        } else {
            let code = outcome.map_or_else(|s: Status| s.code(), |_| Code::Ok);
            prop_assert!(
                matches!(code, Code::DeadlineExceeded | Code::Cancelled),
                "{code:?}"
            );
        }
        let mut caller_left = Duration::from_millis(budget_ms);
        let mut caller_deadline = None;
        for (i, hop) in hops.iter().enumerate() {
            let calls = hop.received_calls();
            let Some(call) = calls.first() else {
                // A spent budget is never sent on.
                prop_assert!(
                    caller_left.is_zero(),
                    "hop {i} got no call with {caller_left:?} left"
                );
                break;
            };
            prop_assert_eq!(call.timeout.clone(), Some(Ok(caller_left)), "hop {}", i);
            if let Some(d) = caller_deadline {
                prop_assert!(call.deadline <= Some(d), "hop {i} sees a later deadline");
            }
            caller_deadline = call.deadline;
            let Some(delay) = delays.get(i) else { break };
            caller_left = caller_left.saturating_sub(Duration::from_millis(*delay));
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_hop_sees_its_callers_time_left_minus_its_own_delay(
        budget_ms in 100u64..10_000,
        delays in prop::collection::vec(0u64..3_000, 1..5),
    ) {
        run_chain(budget_ms, delays)?;
    }
}
