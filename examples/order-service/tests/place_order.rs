//! The order service end to end, as its own users test it: the real service with its
//! layers, served in memory by `grpc_chaos::memory::serve`, in front of a fake inventory
//! (`grpc_chaos::fake`) that answers with this crate's own prost types. Time is tokio's
//! paused clock (`#[grpc_chaos::test]`), so every instant asserted is exact.

use std::time::Duration;

use grpc_chaos::fake::{method, CallEnding, FakeServer, Reply, Stub};
use grpc_chaos::memory;
use order_service::pb::inventory::{ReserveReply, ReserveRequest};
use order_service::pb::orders::order_service_client::OrderServiceClient;
use order_service::pb::orders::{PlaceOrderReply, PlaceOrderRequest};
use order_service::{retry_policy, MIN_BUDGET, REPLY_MARGIN, REQUEST_ID};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Request};

const RESERVE: &str = "/inventory.v1.InventoryService/Reserve";
const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The order service, as `main` serves it, in front of `inventory`.
fn order_service(inventory: &FakeServer) -> OrderServiceClient<Channel> {
    order_service_retrying(inventory, retry_policy())
}

fn order_service_retrying(
    inventory: &FakeServer,
    retry: tonic_layers::retry::RetryPolicy,
) -> OrderServiceClient<Channel> {
    let router = order_service::router(inventory.channel(), retry);
    OrderServiceClient::new(memory::serve(|incoming| {
        router.serve_with_incoming(incoming)
    }))
}

fn order(sku: &str, quantity: u32, timeout: Duration) -> Request<PlaceOrderRequest> {
    let mut request = Request::new(PlaceOrderRequest {
        sku: sku.into(),
        quantity,
    });
    request.set_timeout(timeout);
    request
}

fn reserved(id: &str) -> Reply {
    Reply::message(&ReserveReply {
        reservation_id: id.into(),
    })
}

#[grpc_chaos::test]
async fn an_order_reserves_its_stock_with_the_callers_deadline_and_request_id() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(reserved("r-1").delay(secs(1)))
        .expect(1)
        .mount(&inventory);
    let mut orders = order_service(&inventory);
    let t0 = Instant::now();

    let mut request = order("A-1", 2, secs(5));
    request
        .metadata_mut()
        .insert(REQUEST_ID, "req-42".parse().unwrap());
    let reply = orders.place_order(request).await.unwrap().into_inner();

    assert_eq!(
        reply,
        PlaceOrderReply {
            order_id: "order-r-1".into(),
            reserved: 2,
        }
    );
    assert_eq!(t0.elapsed(), secs(1));
    let calls = inventory.wait_for_ended_calls(1).await;
    let call = &calls[0];
    assert_eq!(
        call.request::<ReserveRequest>(0).unwrap(),
        ReserveRequest {
            sku: "A-1".into(),
            quantity: 2,
        }
    );
    assert_eq!(call.arrived_at, t0);
    // The caller's 5 s, less what the order service keeps to answer.
    assert_eq!(call.timeout, Some(Ok(secs(5) - REPLY_MARGIN)));
    assert_eq!(call.grpc_timeout.as_deref(), Some("4950000u"));
    assert_eq!(call.deadline, Some(t0 + secs(5) - REPLY_MARGIN));
    assert_eq!(call.header(REQUEST_ID), Some("req-42"));
    assert_eq!(call.header(PREVIOUS_ATTEMPTS), None);
    assert_eq!(
        call.ending.at().zip(call.status_code()),
        Some((t0 + secs(1), Code::Ok))
    );
}

#[grpc_chaos::test]
async fn an_order_without_a_request_id_gets_one_and_the_inventory_sees_it() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(reserved("r-1"))
        .expect(1)
        .mount(&inventory);

    order_service(&inventory)
        .place_order(order("A-1", 1, secs(5)))
        .await
        .unwrap();

    let call = &inventory.wait_for_ended_calls(1).await[0];
    let id = call.header(REQUEST_ID).expect("a generated request id");
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
}

#[grpc_chaos::test]
async fn a_slow_inventory_is_cancelled_at_the_propagated_deadline_and_the_order_fails_first() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(reserved("late").delay(secs(30)))
        .expect(1) // DEADLINE_EXCEEDED is not retried
        .mount(&inventory);
    let mut orders = order_service(&inventory);
    let t0 = Instant::now();

    let status = orders
        .place_order(order("A-1", 1, secs(5)))
        .await
        .unwrap_err();

    // The order service's own answer, REPLY_MARGIN before the caller's deadline: not
    // tonic's CANCELLED "Timeout expired" at the deadline itself.
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::DeadlineExceeded,
            "the inventory did not answer in time"
        )
    );
    assert_eq!(t0.elapsed(), secs(5) - REPLY_MARGIN);
    let call = &inventory.wait_for_ended_calls(1).await[0];
    assert_eq!(call.deadline, Some(t0 + secs(5) - REPLY_MARGIN));
    assert_eq!(
        call.ending,
        CallEnding::Cancelled {
            at: t0 + secs(5) - REPLY_MARGIN,
            requests_received: 1,
            responses_sent: 0,
        }
    );
}

#[grpc_chaos::test]
async fn an_unavailable_inventory_is_retried_within_the_same_deadline() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(Reply::error(Code::Unavailable, "restarting"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .named("first call fails")
        .mount(&inventory);
    Stub::given(method(RESERVE))
        .respond_with(reserved("r-2"))
        .expect(1)
        .named("later calls succeed")
        .mount(&inventory);
    // No jitter, so that the backoff, and with it every instant, is exact.
    let policy = retry_policy().without_jitter();
    let backoff = policy.backoffs(1)[0];
    assert_eq!(backoff, Duration::from_millis(100));
    let mut orders = order_service_retrying(&inventory, policy);
    let t0 = Instant::now();

    let reply = orders
        .place_order(order("A-1", 3, secs(5)))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(reply.order_id, "order-r-2");
    assert_eq!(t0.elapsed(), backoff);
    let calls = inventory.wait_for_ended_calls(2).await;
    assert_eq!(calls.len(), 2);
    let (first, second) = (&calls[0], &calls[1]);
    assert_eq!(first.stub.as_deref(), Some("first call fails"));
    assert_eq!(first.status_code(), Some(Code::Unavailable));
    assert_eq!(
        (first.arrived_at, first.header(PREVIOUS_ATTEMPTS)),
        (t0, None)
    );
    assert_eq!(second.stub.as_deref(), Some("later calls succeed"));
    assert_eq!(second.status_code(), Some(Code::Ok));
    assert_eq!(
        (second.arrived_at, second.header(PREVIOUS_ATTEMPTS)),
        (t0 + backoff, Some("1"))
    );
    // The same request, replayed, with what is left of the same deadline.
    assert_eq!(
        second.request::<ReserveRequest>(0).unwrap(),
        first.request::<ReserveRequest>(0).unwrap()
    );
    assert_eq!(second.grpc_timeout.as_deref(), Some("4850000u"));
    assert_eq!(first.deadline, Some(t0 + secs(5) - REPLY_MARGIN));
    assert_eq!(second.deadline, first.deadline);
}

#[grpc_chaos::test]
async fn an_inventory_that_stays_unavailable_fails_the_order_after_three_attempts() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(Reply::error(Code::Unavailable, "down for maintenance"))
        .expect(3)
        .mount(&inventory);
    let policy = retry_policy().without_jitter();
    let backoffs = policy.backoffs(2);
    let mut orders = order_service_retrying(&inventory, policy);
    let t0 = Instant::now();

    let status = orders
        .place_order(order("A-1", 1, secs(5)))
        .await
        .unwrap_err();

    assert_eq!(
        (status.code(), status.message()),
        (
            Code::Unavailable,
            "the inventory is unavailable: down for maintenance"
        )
    );
    assert_eq!(t0.elapsed(), backoffs[0] + backoffs[1]);
    let calls = inventory.wait_for_ended_calls(3).await;
    let seen: Vec<_> = calls
        .iter()
        .map(|c| (c.arrived_at - t0, c.header(PREVIOUS_ATTEMPTS)))
        .collect();
    assert_eq!(
        seen,
        [
            (Duration::ZERO, None),
            (backoffs[0], Some("1")),
            (backoffs[0] + backoffs[1], Some("2")),
        ]
    );
}

#[grpc_chaos::test]
async fn non_retryable_inventory_errors_become_the_orders_own_statuses() {
    let cases = [
        (
            Code::NotFound,
            "no such sku",
            Code::InvalidArgument,
            "unknown sku \"Z-9\"",
        ),
        (
            Code::FailedPrecondition,
            "2 left",
            Code::FailedPrecondition,
            "not enough stock of \"Z-9\": 2 left",
        ),
        (
            Code::PermissionDenied,
            "service account lacks inventory.reserve",
            Code::Internal,
            "the inventory failed to reserve stock (PermissionDenied)",
        ),
    ];
    for (inventory_code, inventory_message, code, message) in cases {
        let inventory = FakeServer::in_memory();
        Stub::given(method(RESERVE))
            .respond_with(Reply::error(inventory_code, inventory_message))
            .expect(1) // not retried
            .mount(&inventory);
        let t0 = Instant::now();

        let status = order_service(&inventory)
            .place_order(order("Z-9", 5, secs(5)))
            .await
            .unwrap_err();

        assert_eq!((status.code(), status.message()), (code, message));
        assert_eq!(t0.elapsed(), Duration::ZERO);
        let calls = inventory.wait_for_ended_calls(1).await;
        assert_eq!(calls.len(), 1, "{inventory_code:?} was retried");
        assert_eq!(calls[0].status_code(), Some(inventory_code));
    } // each fake verifies its expectation when dropped
}

#[grpc_chaos::test]
async fn an_invalid_order_or_one_with_too_little_time_never_reaches_the_inventory() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(reserved("r-1"))
        .expect(0)
        .mount(&inventory);
    let mut orders = order_service(&inventory);

    let no_quantity = orders
        .place_order(order("A-1", 0, secs(5)))
        .await
        .unwrap_err();
    let no_sku = orders.place_order(order("", 1, secs(5))).await.unwrap_err();
    let rushed = orders
        .place_order(order("A-1", 1, MIN_BUDGET - Duration::from_millis(1)))
        .await
        .unwrap_err();

    assert_eq!(no_quantity.code(), Code::InvalidArgument);
    assert_eq!(no_sku.code(), Code::InvalidArgument);
    assert_eq!(rushed.code(), Code::DeadlineExceeded);
    assert!(
        rushed.message().starts_with("not enough time to process"),
        "{}",
        rushed.message()
    );
    assert!(inventory.received_calls().is_empty());
}

#[grpc_chaos::test]
async fn an_inventory_connection_lost_mid_call_is_retried_on_a_new_one() {
    let inventory = FakeServer::in_memory();
    Stub::given(method(RESERVE))
        .respond_with(Reply::hang())
        .up_to_n_times(1)
        .named("the first call hangs")
        .mount(&inventory);
    Stub::given(method(RESERVE))
        .respond_with(reserved("r-2"))
        .with_priority(9)
        .mount(&inventory);
    let policy = retry_policy().without_jitter();
    let backoff = policy.backoffs(1)[0];
    let mut orders = order_service_retrying(&inventory, policy);
    let t0 = Instant::now();

    // The network under the inventory call fails 300 ms in.
    let placing = orders.place_order(order("A-1", 3, secs(5)));
    tokio::pin!(placing);
    tokio::select! {
        _ = &mut placing => panic!("the order cannot complete while the inventory hangs"),
        () = tokio::time::sleep(Duration::from_millis(300)) => inventory.drop_connections(),
    }
    let reply = placing.await.unwrap().into_inner();

    // The retry layer reads the lost connection as UNAVAILABLE, as the spec maps it, and
    // tries again after its backoff, on a new connection.
    assert_eq!(reply.order_id, "order-r-2");
    let calls = inventory.wait_for_ended_calls(2).await;
    let lost_at = t0 + Duration::from_millis(300);
    assert!(
        matches!(calls[0].ending, CallEnding::Cancelled { at, .. } if at == lost_at),
        "{:?}",
        calls[0].ending
    );
    assert_eq!(
        (calls[1].arrived_at, calls[1].header(PREVIOUS_ATTEMPTS)),
        (lost_at + backoff, Some("1"))
    );
}
