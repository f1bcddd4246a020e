//! Runs the order service: `order-service [LISTEN_ADDR] [INVENTORY_URL]`, by default
//! `127.0.0.1:50052` and `http://127.0.0.1:50051`. Ctrl-C stops it gracefully.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use tonic::transport::Endpoint;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:50052")
        .parse()?;
    let inventory = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_string());
    // Lazy: the inventory may start after the order service.
    let channel = Endpoint::from_shared(inventory)?.connect_lazy();
    println!("order-service listening on {addr}");
    order_service::router(channel, order_service::retry_policy())
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
