//! Shared helpers: clients of the fake server and the wall-clock watchdog.

use std::time::Duration;

use grpc_chaos::fake::FakeServer;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::{HelloReply, HelloRequest};
use grpc_chaos::watchdog::Watchdog;
use tonic::transport::Channel;

/// Real seconds a paused-time test may take before the watchdog ends the run.
pub const WALL_CLOCK_LIMIT: Duration = Duration::from_secs(20);

pub fn watchdog(name: &str) -> Watchdog {
    Watchdog::arm(name, WALL_CLOCK_LIMIT)
}

pub fn greeter(server: &FakeServer) -> GreeterClient<Channel> {
    GreeterClient::new(server.channel())
}

pub fn hello(name: &str) -> HelloRequest {
    HelloRequest { name: name.into() }
}

pub fn reply(message: &str) -> HelloReply {
    HelloReply {
        message: message.into(),
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub const SAY_HELLO: &str = "/pb.Greeter/SayHello";
pub const SAY_HELLO_STREAM: &str = "/pb.Greeter/SayHelloStream";
pub const SAY_HELLO_CLIENT_STREAM: &str = "/pb.Greeter/SayHelloClientStream";
pub const SAY_HELLO_BIDI: &str = "/pb.Greeter/SayHelloBidiStream";
