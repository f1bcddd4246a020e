//! Built-in services the fake server can answer without any stub of the user's.
//!
//! ```
//! use grpc_chaos::{builtin, fake::FakeServer};
//! use grpc_chaos::pb::{greeter_client::GreeterClient, HelloRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = FakeServer::in_memory();
//! builtin::mount_greeter(&server);
//! let reply = GreeterClient::new(server.channel())
//!     .say_hello(HelloRequest { name: "Ada".into() })
//!     .await
//!     .unwrap();
//! assert_eq!(reply.into_inner().message, "Hello, Ada!");
//! # }
//! ```

mod interop;

pub use interop::mount_test_service;

use crate::fake::{method, CallHandle, FakeServer, Reply, Stub};
use crate::pb::{HelloReply, HelloRequest};

/// Built-in stubs answer only when no stub of the user's (default priority 5) matches.
///
/// ```
/// assert!(grpc_chaos::builtin::BUILTIN_PRIORITY > 5);
/// ```
pub const BUILTIN_PRIORITY: u8 = 200;

/// How many greetings `SayHelloStream` sends.
const STREAM_GREETINGS: usize = 3;

/// Mounts every built-in service: the Greeter and the interop `TestService`.
///
/// ```
/// let server = grpc_chaos::fake::FakeServer::in_memory();
/// grpc_chaos::builtin::mount_all(&server);
/// ```
pub fn mount_all(server: &FakeServer) {
    mount_greeter(server);
    mount_test_service(server);
}

/// Mounts the walkthrough's Greeter: `SayHello` answers `Hello, NAME!`,
/// `SayHelloStream` answers `Hello #1, NAME!` through `Hello #3, NAME!`,
/// `SayHelloClientStream` greets every name at half-close (`Hello, Ada and Grace!`),
/// and `SayHelloBidiStream` answers `Hello, NAME!` to each request as it arrives.
///
/// ```
/// let server = grpc_chaos::fake::FakeServer::in_memory();
/// grpc_chaos::builtin::mount_greeter(&server);
/// ```
pub fn mount_greeter(server: &FakeServer) {
    Stub::given(method("/pb.Greeter/SayHello"))
        .respond_with(Reply::from_message(|req: &HelloRequest| {
            Reply::message(&HelloReply {
                message: format!("Hello, {}!", req.name),
            })
        }))
        .with_priority(BUILTIN_PRIORITY)
        .named("built-in pb.Greeter/SayHello")
        .mount(server);
    Stub::given(method("/pb.Greeter/SayHelloStream"))
        .respond_with(Reply::from_message(|req: &HelloRequest| {
            let greetings: Vec<HelloReply> = (1..=STREAM_GREETINGS)
                .map(|i| HelloReply {
                    message: format!("Hello #{i}, {}!", req.name),
                })
                .collect();
            Reply::messages(&greetings)
        }))
        .with_priority(BUILTIN_PRIORITY)
        .named("built-in pb.Greeter/SayHelloStream")
        .mount(server);
    Stub::given(method("/pb.Greeter/SayHelloClientStream"))
        .respond_with(Reply::handler(|mut call: CallHandle| async move {
            let mut names = Vec::new();
            while let Some(req) = call.next::<HelloRequest>().await? {
                names.push(req.name);
            }
            call.send(&HelloReply {
                message: format!("Hello, {}!", join_names(&names)),
            })
            .await;
            Ok(())
        }))
        .with_priority(BUILTIN_PRIORITY)
        .named("built-in pb.Greeter/SayHelloClientStream")
        .mount(server);
    Stub::given(method("/pb.Greeter/SayHelloBidiStream"))
        .respond_with(Reply::handler(|mut call: CallHandle| async move {
            while let Some(req) = call.next::<HelloRequest>().await? {
                call.send(&HelloReply {
                    message: format!("Hello, {}!", req.name),
                })
                .await;
            }
            Ok(())
        }))
        .with_priority(BUILTIN_PRIORITY)
        .named("built-in pb.Greeter/SayHelloBidiStream")
        .mount(server);
}

/// `Ada`, `Ada and Grace`, `Ada, Grace and Barbara`; `nobody` for none.
fn join_names(names: &[String]) -> String {
    match names {
        [] => "nobody".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
