//! The fake's reading of request messages: the shared gRPC framing reader, with the
//! fake's own rules for what it refuses (compressed messages, a size limit).

use bytes::Bytes;
use tonic::Status;

use crate::framing::{FrameReader, Step};

/// The largest request message the fake server accepts (tonic's default is 4 MiB).
pub(crate) const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Splits a byte stream into gRPC messages, whatever the chunking of the DATA frames.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    reader: FrameReader,
    /// The `grpc-encoding` the request declared, if any.
    encoding: Option<String>,
}

impl FrameDecoder {
    pub(crate) fn new(encoding: Option<String>) -> Self {
        Self {
            reader: FrameReader::capturing(),
            encoding,
        }
    }

    /// Reads `data`, handing each whole message to `message`. A prefix the fake refuses
    /// fails at once, before the message body is read.
    pub(crate) fn push(
        &mut self,
        mut data: &[u8],
        mut message: impl FnMut(Bytes),
    ) -> Result<(), Status> {
        while let Some(step) = self.reader.read(&mut data) {
            match step {
                Step::Prefix(prefix) => {
                    check_flag(prefix.flag, self.encoding.as_deref())?;
                    check_len(prefix.len)?;
                }
                Step::Message(m) => message(m.take().unwrap_or_default()),
            }
        }
        Ok(())
    }

    /// Checks, at the end of the stream, that no partial message is left over.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        match self.reader.pending() {
            0 => Ok(()),
            left => Err(Status::internal(format!(
                "request stream ended inside a message ({left} bytes of a length-prefixed message left over)"
            ))),
        }
    }
}

fn check_flag(flag: u8, encoding: Option<&str>) -> Result<(), Status> {
    match (flag, encoding) {
        (0, _) => Ok(()),
        (1, None) => Err(Status::internal(
            "compressed flag set on a message but the request has no grpc-encoding",
        )),
        (1, Some(encoding)) => Err(Status::unimplemented(format!(
            "grpc-chaos fake server does not decompress messages (grpc-encoding: {encoding})"
        ))),
        (flag, _) => Err(Status::internal(format!(
            "message prefix has compressed flag {flag}; only 0 and 1 are defined"
        ))),
    }
}

fn check_len(len: usize) -> Result<(), Status> {
    if len > MAX_MESSAGE_SIZE {
        return Err(Status::resource_exhausted(format!(
            "request message of {len} bytes is over the fake server's limit of {MAX_MESSAGE_SIZE}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(d: &mut FrameDecoder, wire: &[u8]) -> Result<Vec<Bytes>, Status> {
        let mut out = Vec::new();
        d.push(wire, |m| out.push(m))?;
        Ok(out)
    }

    #[test]
    fn rejects_bad_prefixes_with_the_spec_codes() {
        let mut d = FrameDecoder::new(None);
        let err = decode(&mut d, &[1, 0, 0, 0, 1, 7]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
        let mut d = FrameDecoder::new(Some("gzip".into()));
        let err = decode(&mut d, &[1, 0, 0, 0, 1, 7]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);
        let mut d = FrameDecoder::new(None);
        assert_eq!(
            decode(&mut d, &[0, 0, 0, 0, 9, 7]).unwrap(),
            Vec::<Bytes>::new()
        );
        assert_eq!(d.finish().unwrap_err().code(), tonic::Code::Internal);
        let mut d = FrameDecoder::new(None);
        let err = decode(&mut d, &[0, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn hands_over_whole_messages() {
        let wire = [
            crate::framing::encode(b"hello"),
            crate::framing::encode(b""),
        ]
        .concat();
        let mut d = FrameDecoder::new(None);
        let mut out = decode(&mut d, &wire[..3]).unwrap();
        out.extend(decode(&mut d, &wire[3..]).unwrap());
        assert_eq!(out, vec![&b"hello"[..], b""]);
        d.finish().unwrap();
    }
}
