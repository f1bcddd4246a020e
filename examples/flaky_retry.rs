//! A retrying client of a flaky fake, under a 2 s deadline.
//!
//! The fake fails the first two calls with UNAVAILABLE and answers the third. The client
//! goes through `RetryLayer`: the attempts share the caller's 2 s budget, each carrying
//! what is left of it. Time is tokio's paused clock, so the whole run takes microseconds
//! and prints the same timeline every time:
//!
//! ```text
//! cargo run --example flaky_retry
//! ```

use std::time::Duration;

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::{HelloReply, HelloRequest};
use grpc_chaos::retry::{RetryLayer, RetryPolicy};
use tokio::time::Instant;
use tonic::Code;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let flaky = FakeServer::in_memory();
    Stub::given(method("/pb.Greeter/SayHello"))
        .respond_with(Reply::sequence([
            Reply::error(Code::Unavailable, "warming up"),
            Reply::error(Code::Unavailable, "still warming up"),
            Reply::message(&HelloReply {
                message: "Hello, Ada!".into(),
            }),
        ]))
        .mount(&flaky);

    let policy = RetryPolicy::builder()
        .max_attempts(4)
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(1))
        .backoff_multiplier(2.0)
        .retryable_status_codes([Code::Unavailable])
        .build()?
        .seed(7);
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(flaky.channel());
    let mut client = GreeterClient::new(channel);

    let t0 = Instant::now();
    let mut request = tonic::Request::new(HelloRequest { name: "Ada".into() });
    request.set_timeout(Duration::from_secs(2));
    let reply = client.say_hello(request).await?;
    println!("{:?} after {:?}", reply.into_inner().message, t0.elapsed());

    for call in flaky.received_calls() {
        let previous = call.header("grpc-previous-rpc-attempts").unwrap_or("-");
        println!(
            "attempt at {:>4} ms: grpc-timeout {:<8} previous attempts {previous:<2} -> {:?}",
            (call.arrived_at - t0).as_millis(),
            call.grpc_timeout.as_deref().unwrap_or("none"),
            call.status_code(),
        );
    }
    Ok(())
}
