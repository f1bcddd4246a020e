//! The request side of a call: reading the body as it arrives, recording each message
//! in the journal, and noticing half-close and a client that went away.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tonic::Status;

use crate::fake::codec::FrameDecoder;
use crate::fake::journal::{Recorder, Side};

/// Why reading the request stopped the call.
pub(super) enum Stop {
    /// The request broke the protocol: end the call with this status.
    Malformed(Status),
    /// The client reset the stream or the connection went away.
    ClientGone,
}

/// The request body and what has been read of it. The call's own copies of its
/// messages live here, whole, for as long as the call needs them (the first, for
/// matching; the ones a handler has not had yet); the journal keeps its own, within its
/// limits.
pub(super) struct RequestReader {
    /// The body, until the call hands it to [`discard`] at its end.
    body: Option<Incoming>,
    decoder: FrameDecoder,
    half_closed: bool,
    first: Option<Bytes>,
    /// Messages not yet given to a handler, while one may still want them.
    unforwarded: Vec<Bytes>,
    keep_unforwarded: bool,
}

impl RequestReader {
    pub(super) fn new(body: Incoming, encoding: Option<String>) -> Self {
        Self {
            body: Some(body),
            decoder: FrameDecoder::new(encoding),
            half_closed: false,
            first: None,
            unforwarded: Vec::new(),
            keep_unforwarded: true,
        }
    }

    /// The first request message, once read.
    pub(super) fn first_message(&self) -> Option<Bytes> {
        self.first.clone()
    }

    /// The messages read since the last call, for a handler.
    pub(super) fn take_unforwarded(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.unforwarded)
    }

    /// No handler will ask for the messages: keep none beyond the first.
    pub(super) fn forget_unforwarded(&mut self) {
        self.keep_unforwarded = false;
        self.unforwarded = Vec::new();
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
                            if self.first.is_none() {
                                self.first = Some(message.clone());
                            }
                            if self.keep_unforwarded {
                                self.unforwarded.push(message.clone());
                            }
                            let size = message.len();
                            let index = rec.message(Side::Request, message);
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
        while !self.half_closed && self.first.is_none() {
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
