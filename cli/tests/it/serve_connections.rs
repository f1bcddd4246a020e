//! `serve`'s connection hygiene through its flags: silent connections are closed at the
//! handshake timeout, idle ones at the idle timeout, and past the cap a new connection is
//! closed while the others go on.

use std::time::{Duration, Instant};

use grpc_chaos::pb::greeter_client::GreeterClient;
use tokio::net::TcpStream;

use crate::served::Served;
use crate::support::*;

#[grpc_chaos::test(paused = false)]
async fn silent_connections_are_closed_at_the_handshake_timeout() {
    let served = Served::start(&["--handshake-timeout", "300ms"]).await;
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(TcpStream::connect(&served.addr).await.unwrap());
    }

    let mut longest = Duration::ZERO;
    for socket in &mut silent {
        longest = longest.max(until_closed(socket).await);
    }

    assert!(longest < Duration::from_secs(5), "{longest:?}");
    // And the server still answers.
    let mut client = GreeterClient::connect(served.uri()).await.unwrap();
    client.say_hello(hello("Ada")).await.unwrap();
}

#[grpc_chaos::test(paused = false)]
async fn an_idle_connection_is_closed_and_the_client_reconnects() {
    let served = Served::start(&["--idle-timeout", "300ms"]).await;
    let tcp = TcpStream::connect(&served.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let started = Instant::now();

    // The connection ends (GOAWAY, then close) with no call on it.
    connection.await.unwrap();
    let took = started.elapsed();
    drop(client);

    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let mut client = GreeterClient::connect(served.uri()).await.unwrap();
    client.say_hello(hello("Ada")).await.unwrap();
}

#[grpc_chaos::test(paused = false)]
async fn past_the_connection_cap_a_new_connection_is_closed_and_the_others_go_on() {
    let served = Served::start(&["--max-connections", "2"]).await;
    let mut first = GreeterClient::connect(served.uri()).await.unwrap();
    let mut second = GreeterClient::connect(served.uri()).await.unwrap();
    first.say_hello(hello("a")).await.unwrap();
    second.say_hello(hello("b")).await.unwrap();

    let mut third = TcpStream::connect(&served.addr).await.unwrap();
    let took = until_closed(&mut third).await;

    assert!(took < Duration::from_secs(5), "{took:?}");
    first.say_hello(hello("a")).await.unwrap();
    second.say_hello(hello("b")).await.unwrap();
}

#[test]
fn a_malformed_limit_is_refused_naming_the_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--idle-timeout",
            "5 minutes",
        ])
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--idle-timeout"), "{stderr}");
    assert!(
        stderr.contains("expected a whole number and ms, s, m or h"),
        "{stderr}"
    );
}
