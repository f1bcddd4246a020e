//! `grpc-chaos serve` as a subprocess on 127.0.0.1:0, driven by a tonic client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use grpc_chaos::pb::greeter_client::GreeterClient;
use tonic::Code;

use crate::support::*;

/// The running binary; killed on drop so a failing test leaves no process behind.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the grpc-chaos binary starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .expect("first line names the address")
            .to_string();
        Self { child, addr }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_prints_its_real_port_answers_the_greeter_and_exits_0_on_sigterm() {
    let mut served = Served::start();
    assert!(
        served.addr.starts_with("127.0.0.1:") && !served.addr.ends_with(":0"),
        "{}",
        served.addr
    );
    let mut client = GreeterClient::connect(format!("http://{}", served.addr))
        .await
        .unwrap();

    let reply = client.say_hello(hello("Ada")).await.unwrap().into_inner();
    assert_eq!(reply.message, "Hello, Ada!");
    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    let mut greetings = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        greetings.push(m.message);
    }
    assert_eq!(
        greetings,
        ["Hello #1, Ada!", "Hello #2, Ada!", "Hello #3, Ada!"]
    );
    let unknown = client
        .say_hello_bidi_stream(tokio_stream::iter([hello("x")]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);

    served.signal("TERM");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn serve_exits_0_on_sigint() {
    let mut served = Served::start();
    served.signal("INT");
    assert_eq!(served.wait_exit(Duration::from_secs(10)), Some(0));
}
