//! A stub written as tables (a scenario stub, its messages read through prost-reflect)
//! against the built-in Greeter stub, one unary SayHello over the in-memory transport,
//! paired in one run. The table stub's reply bytes are encoded once, when the scenario
//! is read; what a call pays for is the message matcher, which decodes the request as a
//! dynamic message. Three table stubs show where the cost is: one with no message
//! matcher, one with `message_contains`, and one with `message` (equality).

use grpc_chaos::bench::{pair, DEFAULT_MESSAGES_PER_ROUND, DEFAULT_ROUNDS};
use grpc_chaos::builtin;
use grpc_chaos::fake::FakeServer;
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use grpc_chaos::scenario::Scenario;
use tonic::transport::Channel;

fn table_stub(matcher: &str) -> String {
    format!(
        "[[stub]]\nmethod = \"/pb.Greeter/SayHello\"\n{matcher}\nreply = {{ message = {{ message = \"Hello, Ada!\" }} }}\n"
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = |scenario: Option<String>| {
        rt.block_on(async {
            let server = FakeServer::builder().journal_limit(1024).in_memory();
            match scenario {
                Some(text) => Scenario::parse("bench.toml", &text, 0)
                    .unwrap()
                    .mount(&server),
                None => builtin::mount_all(&server),
            }
            let client = GreeterClient::new(server.channel());
            (server, client)
        })
    };
    let (_builtin, mut builtin_client) = fake(None);
    let candidates = [
        ("table reply, no message matcher", table_stub("")),
        (
            "table reply, message_contains = { name = \"Ada\" }",
            table_stub("match = { message_contains = { name = \"Ada\" } }"),
        ),
        (
            "table reply, message = { name = \"Ada\" }",
            table_stub("match = { message = { name = \"Ada\" } }"),
        ),
    ];
    let call = |client: &mut GreeterClient<Channel>| {
        let reply = rt
            .block_on(client.say_hello(HelloRequest { name: "Ada".into() }))
            .unwrap();
        assert_eq!(reply.into_inner().message, "Hello, Ada!");
    };
    for (what, text) in candidates {
        let (_server, mut client) = fake(Some(text));
        let paired = pair(
            DEFAULT_ROUNDS,
            DEFAULT_MESSAGES_PER_ROUND,
            1,
            || call(&mut builtin_client),
            || call(&mut client),
        );
        println!("paired {what} vs the built-in Greeter stub: {paired}");
    }
}
