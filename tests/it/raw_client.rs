//! A bare HTTP/2 gRPC client (the h2 crate): it sends `grpc-timeout` without enforcing
//! it, which tonic's client cannot do (tonic's channel times every request by that
//! header), so the status it reads is the server's own, straight from the wire.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request};

/// What came back: initial headers, the messages, and the trailers (or the
/// Trailers-Only headers).
#[derive(Debug)]
pub struct RawResponse {
    pub headers: HeaderMap,
    pub messages: Vec<Bytes>,
    pub trailers: HeaderMap,
}

impl RawResponse {
    /// `grpc-status`, from the trailers or, for Trailers-Only, from the headers.
    pub fn grpc_status(&self) -> Option<u32> {
        self.trailers
            .get("grpc-status")
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok()?.parse().ok())
    }
}

pub fn frame(message: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
}

/// Sends one request message with these headers over TCP to `addr`, half-closing or
/// not, and reads the whole response.
pub async fn call(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    message: &[u8],
    half_close: bool,
) -> RawResponse {
    call_raw(addr, path, headers, frame(message), half_close).await
}

/// Like [`call`], with the request body given as raw bytes: framing mistakes included.
pub async fn call_raw(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    half_close: bool,
) -> RawResponse {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let (response, mut send) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    send.send_data(body, half_close).unwrap();
    let response = response.await.unwrap();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        while buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() < 5 + len {
                break;
            }
            buf.advance(5);
            messages.push(buf.split_to(len).freeze());
        }
    }
    let trailers = body.trailers().await.unwrap().unwrap_or_default();
    drop(send);
    RawResponse {
        headers,
        messages,
        trailers,
    }
}
