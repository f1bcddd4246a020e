//! gRPC length-prefixed message framing (PROTOCOL-HTTP2.md: `Length-Prefixed-Message`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tonic::Status;

/// The 5-byte prefix: a compressed flag and a big-endian length.
const PREFIX_LEN: usize = 5;

/// The largest request message the fake server accepts (tonic's default is 4 MiB).
pub(crate) const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Frames one uncompressed message.
pub(crate) fn encode_frame(message: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + message.len());
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
}

/// Splits a byte stream into gRPC messages, whatever the chunking of the DATA frames.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    buf: BytesMut,
    /// The `grpc-encoding` the request declared, if any.
    encoding: Option<String>,
}

impl FrameDecoder {
    pub(crate) fn new(encoding: Option<String>) -> Self {
        Self {
            buf: BytesMut::new(),
            encoding,
        }
    }

    pub(crate) fn push(&mut self, data: Bytes) {
        self.buf.extend_from_slice(&data);
    }

    /// The next whole message, `None` until one has fully arrived.
    pub(crate) fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let compressed = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        match (compressed, &self.encoding) {
            (0, _) => {}
            (1, None) => {
                return Err(Status::internal(
                    "compressed flag set on a message but the request has no grpc-encoding",
                ))
            }
            (1, Some(encoding)) => {
                return Err(Status::unimplemented(format!(
                "grpc-chaos fake server does not decompress messages (grpc-encoding: {encoding})"
            )))
            }
            (flag, _) => {
                return Err(Status::internal(format!(
                    "message prefix has compressed flag {flag}; only 0 and 1 are defined"
                )))
            }
        }
        if len > MAX_MESSAGE_SIZE {
            return Err(Status::resource_exhausted(format!(
                "request message of {len} bytes is over the fake server's limit of {MAX_MESSAGE_SIZE}"
            )));
        }
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Checks, at the end of the stream, that no partial message is left over.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Status::internal(format!(
                "request stream ended inside a message ({} bytes of a length-prefixed message left over)",
                self.buf.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_messages_across_any_chunking() {
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&encode_frame(b"hello"));
        wire.extend_from_slice(&encode_frame(b""));
        wire.extend_from_slice(&encode_frame(b"world!"));
        let wire = wire.freeze();
        for chunk in 1..wire.len() {
            let mut decoder = FrameDecoder::new(None);
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                decoder.push(Bytes::copy_from_slice(piece));
                while let Some(m) = decoder.next_message().unwrap() {
                    out.push(m);
                }
            }
            assert_eq!(
                out,
                vec![&b"hello"[..], b"", b"world!"],
                "chunk size {chunk}"
            );
            decoder.finish().unwrap();
        }
    }

    #[test]
    fn rejects_bad_prefixes_with_the_spec_codes() {
        let mut d = FrameDecoder::new(None);
        d.push(Bytes::from_static(&[1, 0, 0, 0, 1, 7]));
        assert_eq!(d.next_message().unwrap_err().code(), tonic::Code::Internal);
        let mut d = FrameDecoder::new(None);
        d.push(Bytes::from_static(&[0, 0, 0, 0, 9, 7]));
        assert_eq!(d.next_message().unwrap(), None);
        assert_eq!(d.finish().unwrap_err().code(), tonic::Code::Internal);
        let mut d = FrameDecoder::new(None);
        d.push(Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]));
        assert_eq!(
            d.next_message().unwrap_err().code(),
            tonic::Code::ResourceExhausted
        );
    }
}
