//! A fake of a service grpc-chaos does not define, from the test-only `tests/proto/inventory.proto`.

use std::time::Duration;

use grpc_chaos::fake::{message_eq, method, service, FakeServer, Reply, Stub};
use tokio::time::Instant;
use tonic::Code;

use crate::inventory::inventory_client::InventoryClient;
use crate::inventory::{GetItemRequest, Item, StockLevel};

#[grpc_chaos::test]
async fn a_users_own_service_is_faked_with_its_own_prost_types() {
    let server = FakeServer::in_memory();
    let item = Item {
        sku: "A-1".into(),
        title: "Anvil".into(),
        price_cents: 4999,
    };
    Stub::given(method("/shop.inventory.v1.Inventory/GetItem"))
        .and(message_eq(GetItemRequest { sku: "A-1".into() }))
        .respond_with(Reply::message(&item))
        .mount(&server);
    Stub::given(service("shop.inventory.v1.Inventory"))
        .respond_with(Reply::error(Code::NotFound, "no such item"))
        .with_priority(9)
        .mount(&server);
    Stub::given(method("/shop.inventory.v1.Inventory/WatchStock"))
        .respond_with(
            Reply::stream()
                .then_message_after(
                    Duration::from_secs(60),
                    &StockLevel {
                        sku: "A-1".into(),
                        available: 3,
                    },
                )
                .then_message_after(
                    Duration::from_secs(60),
                    &StockLevel {
                        sku: "A-1".into(),
                        available: 2,
                    },
                ),
        )
        .mount(&server);
    let mut client = InventoryClient::new(server.channel());
    let start = Instant::now();

    assert_eq!(
        client
            .get_item(GetItemRequest { sku: "A-1".into() })
            .await
            .unwrap()
            .into_inner(),
        item
    );
    let missing = client
        .get_item(GetItemRequest { sku: "Z-9".into() })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::NotFound, "no such item")
    );
    let mut watch = client
        .watch_stock(GetItemRequest { sku: "A-1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().available, 3);
    assert_eq!(watch.message().await.unwrap().unwrap().available, 2);
    assert_eq!(watch.message().await.unwrap(), None);
    assert_eq!(start.elapsed(), Duration::from_secs(120));

    let calls = server.received_calls();
    assert_eq!(calls[1].request::<GetItemRequest>(0).unwrap().sku, "Z-9");
    assert_eq!(calls[2].response::<StockLevel>(1).unwrap().available, 2);
}

#[grpc_chaos::test]
async fn raw_bytes_work_for_any_method_without_a_prost_type() {
    let server = FakeServer::in_memory();
    // Item { sku: "B" } encoded by hand: field 1, length-delimited, 1 byte.
    Stub::given(method("/shop.inventory.v1.Inventory/GetItem"))
        .respond_with(Reply::bytes(vec![0x0a, 0x01, b'B']))
        .mount(&server);

    let item = InventoryClient::new(server.channel())
        .get_item(GetItemRequest { sku: "B".into() })
        .await
        .unwrap();

    assert_eq!(item.into_inner().sku, "B");
    assert_eq!(
        server.received_calls()[0].request_messages[0].as_ref(),
        [0x0a, 0x01, b'B']
    );
}
