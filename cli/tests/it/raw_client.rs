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
    prefix(0, message.len() as u32, message)
}

/// A message prefix saying whatever it is told (flag and length), then `body`.
pub fn prefix(flag: u8, len: u32, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(flag);
    buf.put_u32(len);
    buf.put_slice(body);
    buf.freeze()
}

/// Asserts that the server at `addr` still answers a good SayHello, on a fresh
/// connection.
pub async fn still_answers(addr: &str) {
    use prost::Message as _;
    let hello = crate::support::hello("Ada").encode_to_vec();
    let ok = call(addr, crate::support::SAY_HELLO, &[], &hello, true).await;
    assert_eq!(ok.grpc_status(), Some(0), "{ok:?}");
    assert_eq!(ok.messages.len(), 1);
}

/// Sends half a message to `path` (the prefix promises 100 bytes, 3 arrive), then drops
/// the connection.
pub async fn abandon_mid_frame(addr: &str, path: &str) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let task = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let (_response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(prefix(0, 100, b"abc"), false).unwrap();
    tokio::task::yield_now().await;
    task.abort();
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

/// What a server did with one hand-encoded HEADERS frame: the first RST_STREAM or
/// GOAWAY error code it sent, or the `:status`-bearing HEADERS it answered with.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameAnswer {
    Reset(u32),
    GoAway(u32),
    Headers,
}

/// Sends a request whose header block is hand-encoded (HPACK literals, no Huffman), so
/// that it can carry what the h2 crate refuses to send, such as an uppercase name.
pub async fn send_raw_headers(addr: &str, path: &str, extra: &[(&str, &str)]) -> FrameAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    fn literal(block: &mut Vec<u8>, name_index: Option<u8>, name: &str, value: &str) {
        match name_index {
            // Literal without indexing, indexed name (4-bit prefix).
            Some(i) if i < 15 => block.push(i),
            Some(i) => block.extend_from_slice(&[0x0f, i - 15]),
            None => {
                block.push(0x00);
                block.push(name.len() as u8);
                block.extend_from_slice(name.as_bytes());
            }
        }
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    literal(&mut block, Some(4), ":path", path);
    literal(&mut block, Some(1), ":authority", "localhost");
    literal(&mut block, Some(31), "content-type", "application/grpc");
    for (k, v) in extra {
        literal(&mut block, None, k, v);
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // empty SETTINGS
    let len = block.len() as u32;
    out.extend_from_slice(&[
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        0x1,
        0x5,
        0,
        0,
        0,
        1,
    ]);
    out.extend_from_slice(&block);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&out).await.unwrap();
    loop {
        let mut header = [0u8; 9];
        if tcp.read_exact(&mut header).await.is_err() {
            return FrameAnswer::GoAway(u32::MAX);
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        tcp.read_exact(&mut payload).await.unwrap();
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        match header[3] {
            0x3 if stream == 1 => {
                return FrameAnswer::Reset(u32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]))
            }
            0x7 => {
                return FrameAnswer::GoAway(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]))
            }
            0x1 if stream == 1 => return FrameAnswer::Headers,
            0x4 if header[4] & 0x1 == 0 => {
                // Acknowledge the server's SETTINGS so it goes on.
                tcp.write_all(&[0, 0, 0, 0x4, 0x1, 0, 0, 0, 0])
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
}
