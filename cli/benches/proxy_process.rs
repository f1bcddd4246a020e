//! `grpc-chaos proxy` as it runs for real: its own process, in front of `grpc-chaos
//! serve` in another, and a tonic client in this one, all over 127.0.0.1. Paired:
//! alternating rounds of calls straight to `serve` and through the proxy (its journal
//! on, as the CLI runs it, and off), a unary round trip and a 10,000-message stream.
//!
//! `cargo bench -p grpc-chaos-cli --bench proxy_process`

use std::process::Stdio;

use grpc_chaos::bench::{pair, DEFAULT_MESSAGES_PER_ROUND, DEFAULT_ROUNDS};
use grpc_chaos::pb::greeter_client::GreeterClient;
use grpc_chaos::pb::HelloRequest;
use tokio::io::AsyncBufReadExt as _;
use tonic::transport::Channel;

const STREAM: usize = 10_000;

/// A child `grpc-chaos` on 127.0.0.1:0, and the address its first line names.
struct Child {
    _process: tokio::process::Child,
    /// Kept open: a child whose stdout is closed fails its next line.
    _stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    addr: String,
}

async fn start(args: &[&str]) -> Child {
    let mut process = tokio::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the grpc-chaos binary starts");
    let mut first = String::new();
    let mut out = tokio::io::BufReader::new(process.stdout.take().unwrap());
    out.read_line(&mut first).await.unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    Child {
        _process: process,
        _stdout: out,
        addr,
    }
}

async fn client(addr: &str) -> GreeterClient<Channel> {
    GreeterClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("grpc-chaos-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("stream.toml");
    let messages: Vec<String> = (0..STREAM)
        .map(|i| format!("{{ message = {{ message = \"message {i}\" }} }}"))
        .collect();
    std::fs::write(
        &scenario,
        format!(
            "[[stub]]\nmethod = \"/pb.Greeter/SayHelloStream\"\nreply = {{ messages = [{}] }}\n",
            messages.join(", ")
        ),
    )
    .unwrap();
    let scenario = scenario.display().to_string();
    let (_children, mut direct, mut journaled, mut bare) = rt.block_on(async {
        let serve = start(&["serve", "--scenario", &scenario]).await;
        let proxy = start(&["proxy", "--upstream", &serve.addr]).await;
        let unjournaled =
            start(&["proxy", "--upstream", &serve.addr, "--journal-calls", "0"]).await;
        let clients = (
            client(&serve.addr).await,
            client(&proxy.addr).await,
            client(&unjournaled.addr).await,
        );
        ([serve, proxy, unjournaled], clients.0, clients.1, clients.2)
    });
    std::fs::remove_dir_all(&dir).unwrap();

    let unary = |client: &mut GreeterClient<Channel>| {
        rt.block_on(client.say_hello(HelloRequest { name: "Ada".into() }))
            .unwrap();
    };
    let stream = |client: &mut GreeterClient<Channel>| {
        rt.block_on(async {
            let mut s = client
                .say_hello_stream(HelloRequest { name: "Ada".into() })
                .await
                .unwrap()
                .into_inner();
            let mut n = 0;
            while s.message().await.unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, STREAM);
        });
    };
    for (what, proxied) in [("journal on", &mut journaled), ("no journal", &mut bare)] {
        let paired = pair(
            DEFAULT_ROUNDS,
            DEFAULT_MESSAGES_PER_ROUND,
            1,
            || unary(&mut direct),
            || unary(proxied),
        );
        println!("paired unary through the proxy process ({what}) vs serve direct: {paired}");
        let paired = pair(
            DEFAULT_ROUNDS,
            1,
            STREAM,
            || stream(&mut direct),
            || stream(proxied),
        );
        println!(
            "paired stream of {STREAM} through the proxy process ({what}) vs serve direct: {paired}"
        );
    }
}
