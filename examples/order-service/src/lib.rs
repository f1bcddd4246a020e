//! # order-service
//!
//! An order service (`orders.v1.OrderService`) that reserves stock in a downstream
//! inventory service (`inventory.v1.InventoryService`), built with the production layers
//! of `tonic-layers`:
//!
//! - **Its server** ([`router`]) reads or makes a request id ([`REQUEST_ID`],
//!   `SetTraceIdLayer`), and enforces the caller's `grpc-timeout` with DEADLINE_EXCEEDED,
//!   refusing calls with less than [`MIN_BUDGET`] left (`EnforceDeadlineLayer`).
//! - **Its inventory client** ([`inventory_client`]) sends the request id on
//!   (`PropagateTraceIdLayer`), gives the inventory call what is left of the caller's
//!   deadline less [`REPLY_MARGIN`] (`PropagateDeadlineLayer`), and retries UNAVAILABLE
//!   within that same budget ([`retry_policy`], `RetryLayer`).
//! - **Its errors** ([`reservation_error`]) say what went wrong in the order's terms
//!   instead of passing the inventory's statuses through.
//!
//! Tests and a real `main` serve the same [`router`]:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let inventory = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
//! order_service::router(inventory, order_service::retry_policy())
//!     .serve("127.0.0.1:50052".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

use tonic::transport::server::Router;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_layers::deadline::{EnforceDeadlineLayer, PropagateDeadline, PropagateDeadlineLayer};
use tonic_layers::intercept::{PropagateTraceId, PropagateTraceIdLayer, SetTraceIdLayer};
use tonic_layers::retry::{Retry, RetryLayer, RetryPolicy};
use tower::layer::util::{Identity, Stack};

use pb::inventory::inventory_service_client::InventoryServiceClient;
use pb::inventory::ReserveRequest;
use pb::orders::order_service_server::{OrderService, OrderServiceServer};
use pb::orders::{PlaceOrderReply, PlaceOrderRequest};

/// The types and services generated from `proto/` by `build.rs`.
pub mod pb {
    /// `orders.v1`: the service this crate implements (`proto/orders.proto`).
    pub mod orders {
        tonic::include_proto!("orders.v1");
    }

    /// `inventory.v1`: the downstream it calls (`proto/inventory.proto`).
    pub mod inventory {
        tonic::include_proto!("inventory.v1");
    }
}

/// The header that carries a request's id: read (or generated) by the server, and sent
/// on to the inventory.
pub const REQUEST_ID: &str = "x-request-id";

/// What the order service keeps of its caller's budget for itself: the inventory call's
/// deadline is the caller's, this much earlier, so that a slow inventory still gets a
/// DEADLINE_EXCEEDED answer from the order service before the caller gives up.
pub const REPLY_MARGIN: Duration = Duration::from_millis(50);

/// Calls that arrive with less time left than this are refused at once with
/// DEADLINE_EXCEEDED ("not enough time to process"); the inventory is not called.
pub const MIN_BUDGET: Duration = Duration::from_millis(100);

/// The retry policy of inventory calls: up to 3 attempts, on UNAVAILABLE only, with
/// jittered exponential backoff (bounds 100 ms, 200 ms, at most 1 s). Every attempt and
/// backoff fits in the one budget the deadline layer gives the call.
///
/// ```
/// let policy = order_service::retry_policy().without_jitter();
/// assert_eq!(policy.max_attempts(), 3);
/// assert!(policy.retries(tonic::Code::Unavailable));
/// assert!(!policy.retries(tonic::Code::NotFound));
/// ```
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(3)
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(1))
        .backoff_multiplier(2.0)
        .retryable_status_codes([Code::Unavailable])
        .build()
        .expect("the policy's fields are valid")
}

/// The inventory client's service stack: request id, then deadline propagation, then
/// retries, then the channel.
pub type InventoryChannel = PropagateTraceId<PropagateDeadline<Retry<Channel>>>;

/// An inventory client on `channel`, with the layers the order service calls it through
/// (see [`InventoryChannel`]), retrying as `retry` says.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let client = order_service::inventory_client(channel, order_service::retry_policy());
/// # }
/// ```
pub fn inventory_client(
    channel: Channel,
    retry: RetryPolicy,
) -> InventoryServiceClient<InventoryChannel> {
    let stack = tower::ServiceBuilder::new()
        .layer(PropagateTraceIdLayer::new().header(REQUEST_ID))
        .layer(PropagateDeadlineLayer::new().margin(REPLY_MARGIN))
        .layer(RetryLayer::new(retry))
        .service(channel);
    InventoryServiceClient::new(stack)
}

/// The order service's handler: it validates an order, reserves its stock, and answers.
#[derive(Clone, Debug)]
pub struct Orders {
    inventory: InventoryServiceClient<InventoryChannel>,
}

impl Orders {
    /// Orders that reserve their stock through `inventory` (see [`inventory_client`]).
    pub fn new(inventory: InventoryServiceClient<InventoryChannel>) -> Self {
        Self { inventory }
    }
}

#[tonic::async_trait]
impl OrderService for Orders {
    async fn place_order(
        &self,
        request: Request<PlaceOrderRequest>,
    ) -> Result<Response<PlaceOrderReply>, Status> {
        let PlaceOrderRequest { sku, quantity } = request.into_inner();
        if sku.is_empty() {
            return Err(Status::invalid_argument("an order needs a sku"));
        }
        if quantity == 0 {
            return Err(Status::invalid_argument(
                "an order needs a quantity of 1 or more",
            ));
        }
        let mut inventory = self.inventory.clone();
        let reservation = inventory
            .reserve(ReserveRequest {
                sku: sku.clone(),
                quantity,
            })
            .await
            .map_err(|status| reservation_error(&sku, &status))?
            .into_inner();
        Ok(Response::new(PlaceOrderReply {
            order_id: format!("order-{}", reservation.reservation_id),
            reserved: quantity,
        }))
    }
}

/// What the order's caller sees when the inventory fails to reserve `sku` with `status`:
///
/// | inventory | order |
/// |---|---|
/// | NOT_FOUND | INVALID_ARGUMENT: no such sku |
/// | FAILED_PRECONDITION | FAILED_PRECONDITION: not enough stock |
/// | DEADLINE_EXCEEDED | DEADLINE_EXCEEDED |
/// | CANCELLED | CANCELLED |
/// | UNAVAILABLE, RESOURCE_EXHAUSTED | UNAVAILABLE (after the retries) |
/// | anything else | INTERNAL, without the inventory's message |
///
/// ```
/// use tonic::{Code, Status};
/// let status = order_service::reservation_error("A-1", &Status::not_found("no such sku"));
/// assert_eq!(status.code(), Code::InvalidArgument);
/// assert_eq!(status.message(), "unknown sku \"A-1\"");
/// ```
pub fn reservation_error(sku: &str, status: &Status) -> Status {
    match status.code() {
        Code::NotFound => Status::invalid_argument(format!("unknown sku {sku:?}")),
        Code::FailedPrecondition => Status::failed_precondition(format!(
            "not enough stock of {sku:?}: {}",
            status.message()
        )),
        Code::DeadlineExceeded => Status::deadline_exceeded("the inventory did not answer in time"),
        Code::Cancelled => Status::cancelled("the reservation was cancelled"),
        Code::Unavailable | Code::ResourceExhausted => Status::unavailable(format!(
            "the inventory is unavailable: {}",
            status.message()
        )),
        code => Status::internal(format!("the inventory failed to reserve stock ({code:?})")),
    }
}

/// The server's layers, outermost first: the request id, then deadline enforcement.
pub type ServerLayers = Stack<EnforceDeadlineLayer, Stack<SetTraceIdLayer, Identity>>;

/// The order service, layered and ready to serve (`.serve(addr)`, or
/// `.serve_with_incoming(incoming)` in tests), calling the inventory on `inventory` and
/// retrying as `retry` says (normally [`retry_policy`]).
///
/// ```no_run
/// # async fn run(inventory: tonic::transport::Channel) -> Result<(), tonic::transport::Error> {
/// order_service::router(inventory, order_service::retry_policy())
///     .serve("127.0.0.1:50052".parse().unwrap())
///     .await
/// # }
/// ```
pub fn router(inventory: Channel, retry: RetryPolicy) -> Router<ServerLayers> {
    Server::builder()
        .layer(SetTraceIdLayer::new().header(REQUEST_ID))
        .layer(EnforceDeadlineLayer::new().min_budget(MIN_BUDGET))
        .add_service(OrderServiceServer::new(Orders::new(inventory_client(
            inventory, retry,
        ))))
}
