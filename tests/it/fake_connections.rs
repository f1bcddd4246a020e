//! Connection hygiene: the handshake timeout, the idle timeout, keepalive pings and the
//! connection cap. In memory on paused time where a client library drives the
//! connection; over TCP on the real clock, bounded, where a raw socket has to misbehave.

use std::time::Duration;

use grpc_chaos::fake::{method, FakeServer, Reply, Stub};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

/// The HTTP/2 client preface, then an empty SETTINGS frame: a client that has done its
/// part of the handshake and will never answer anything.
const PREFACE_AND_SETTINGS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

fn greeter_fake(builder: grpc_chaos::fake::FakeServerBuilder) -> FakeServer {
    let server = builder.in_memory();
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("hi")))
        .mount(&server);
    Stub::given(method(SAY_HELLO_STREAM))
        .respond_with(Reply::stream().then_message_after(Duration::from_secs(60), &reply("late")))
        .mount(&server);
    server
}

#[grpc_chaos::test]
async fn a_connection_with_no_open_call_is_closed_at_the_idle_timeout() {
    let server = greeter_fake(FakeServer::builder().idle_timeout(Duration::from_secs(30)));
    let mut client = greeter(&server);

    client.say_hello(hello("Ada")).await.unwrap();
    assert_eq!(server.open_connections(), 1);
    tokio::time::sleep(ms(29_999)).await;
    assert_eq!(server.open_connections(), 1);
    tokio::time::sleep(ms(2)).await;
    assert_eq!(server.open_connections(), 0);

    // The client's next call opens a new connection.
    client.say_hello(hello("Ada")).await.unwrap();
    assert_eq!(server.open_connections(), 1);
}

#[grpc_chaos::test]
async fn a_connection_with_a_call_open_is_not_idle() {
    let server = greeter_fake(FakeServer::builder().idle_timeout(Duration::from_secs(30)));
    let mut client = greeter(&server);

    let mut stream = client
        .say_hello_stream(hello("Ada"))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_secs(45)).await;
    assert_eq!(server.open_connections(), 1);
    assert_eq!(stream.message().await.unwrap().unwrap().message, "late");
    assert_eq!(stream.message().await.unwrap(), None);
    // Idle from the stream's end, at +60 s: closed 30 s later.
    tokio::time::sleep(ms(29_999)).await;
    assert_eq!(server.open_connections(), 1);
    tokio::time::sleep(ms(2)).await;
    assert_eq!(server.open_connections(), 0);
}

#[grpc_chaos::test(paused = false)]
async fn a_connection_that_never_sends_the_preface_is_closed_at_the_handshake_timeout() {
    let server = FakeServer::builder()
        .handshake_timeout(ms(300))
        .start()
        .await;
    let addr = server.addr().unwrap();

    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut handshaken = TcpStream::connect(addr).await.unwrap();
    handshaken.write_all(PREFACE_AND_SETTINGS).await.unwrap();
    let took = until_closed(&mut silent).await;

    assert!(took >= ms(250) && took < Duration::from_secs(5), "{took:?}");
    // The one that spoke HTTP/2 is still open.
    assert_eq!(server.open_connections(), 1);
}

#[grpc_chaos::test(paused = false)]
async fn a_peer_that_stops_answering_pings_is_closed_after_the_keepalive_timeout() {
    let server = FakeServer::builder()
        .keepalive(ms(200), ms(200))
        .start()
        .await;
    let mut mute = TcpStream::connect(server.addr().unwrap()).await.unwrap();
    mute.write_all(PREFACE_AND_SETTINGS).await.unwrap();

    let took = until_closed(&mut mute).await;

    // A ping after 200 ms of quiet, no answer within 200 ms more: closed.
    assert!(took >= ms(350) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(server.open_connections(), 0);
}

#[grpc_chaos::test(paused = false)]
async fn past_the_connection_cap_a_new_connection_is_closed_and_the_others_go_on() {
    let server = FakeServer::builder().max_connections(2).start().await;
    Stub::given(method(SAY_HELLO))
        .respond_with(Reply::message(&reply("hi")))
        .mount(&server);
    let uri = server.uri().to_string();
    let mut first = grpc_chaos::pb::greeter_client::GreeterClient::connect(uri.clone())
        .await
        .unwrap();
    let mut second = grpc_chaos::pb::greeter_client::GreeterClient::connect(uri)
        .await
        .unwrap();
    first.say_hello(hello("a")).await.unwrap();
    second.say_hello(hello("b")).await.unwrap();
    assert_eq!(server.open_connections(), 2);

    let mut third = TcpStream::connect(server.addr().unwrap()).await.unwrap();
    let took = until_closed(&mut third).await;

    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(server.open_connections(), 2);
    first.say_hello(hello("a")).await.unwrap();
    second.say_hello(hello("b")).await.unwrap();
}
