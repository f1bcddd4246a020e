//! The request side of a call: reading the body as it arrives, recording each message
//! in the journal, and noticing half-close and a client that went away.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tonic::Status;

use crate::fake::codec::FrameDecoder;
use crate::fake::journal::Recorder;

/// Why reading the request stopped the call.
pub(super) enum Stop {
    /// The request broke the protocol: end the call with this status.
    Malformed(Status),
    /// The client reset the stream or the connection went away.
    ClientGone,
}

/// The request body and what has been read of it.
pub(super) struct RequestReader {
    /// The body, until the call hands it to [`discard`] at its end.
    body: Option<Incoming>,
    decoder: FrameDecoder,
    half_closed: bool,
}

impl RequestReader {
    pub(super) fn new(body: Incoming, encoding: Option<String>) -> Self {
        Self {
            body: Some(body),
            decoder: FrameDecoder::new(encoding),
            half_closed: false,
        }
    }

    /// Whether the client has sent its whole request.
    pub(super) fn half_closed(&self) -> bool {
        self.half_closed
    }

    /// Reads one frame of the request, recording every message it completes.
    pub(super) async fn read_one(&mut self, rec: &Recorder) -> Result<(), Stop> {
        let Some(body) = self.body.as_mut() else {
            self.half_closed = true;
            return Ok(());
        };
        match body.frame().await {
            None => {
                self.half_closed = true;
                self.decoder.finish().map_err(Stop::Malformed)
            }
            Some(Err(_)) => Err(Stop::ClientGone),
            Some(Ok(frame)) => {
                // Request trailers carry nothing gRPC defines; they are ignored.
                if let Ok(data) = frame.into_data() {
                    self.decoder
                        .push(&data, |message| {
                            let size = message.len();
                            let index = rec.update(|c| {
                                c.request_messages.push(message);
                                c.request_messages.len() - 1
                            });
                            tracing::debug!(call = rec.id(), index, size, "message received");
                        })
                        .map_err(Stop::Malformed)?;
                }
                Ok(())
            }
        }
    }

    pub(super) async fn read_to_end(&mut self, rec: &Recorder) -> Result<(), Stop> {
        while !self.half_closed {
            self.read_one(rec).await?;
        }
        Ok(())
    }

    pub(super) async fn read_first_message(&mut self, rec: &Recorder) -> Result<(), Stop> {
        while !self.half_closed && rec.read(|c| c.request_messages.is_empty()) {
            self.read_one(rec).await?;
        }
        Ok(())
    }

    /// Ends the server's interest in a request the client is still sending. Dropping the
    /// body would make h2 reset the stream with CANCEL, which can overtake the status
    /// just sent (the client would see CANCELLED instead of, say, DEADLINE_EXCEEDED);
    /// a gRPC server ends with its status and lets the client finish or cancel. So the
    /// rest of the request is read and discarded on a task of its own.
    pub(super) fn release(&mut self) {
        if let Some(body) = self.body.take().filter(|_| !self.half_closed) {
            tokio::spawn(discard(body));
        }
    }
}

/// Reads a request body to its end (or until the client resets it) and drops the data.
async fn discard(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}
