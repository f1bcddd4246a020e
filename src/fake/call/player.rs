//! Playing a stub's reply: match the call, then send headers, messages, the status or a
//! reset at their instants, or run a handler, while the request goes on being read.

use std::future::{pending, Future};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::body::Outbox;
use super::reader::{RequestReader, Stop};
use super::Event;
use crate::fake::faults::{Faults, TIMEOUT_ECHO};
use crate::fake::handler::{CallHandle, HandlerFuture, HandlerOut};
use crate::fake::journal::{CallEnding, Recorder, Side};
use crate::fake::reply::{INTEROP_ECHO_INITIAL, INTEROP_ECHO_TRAILING};
use crate::fake::request::CallRequest;
use crate::fake::script::{Ending, Script};
use crate::fake::state::State;
use crate::method::MethodShape;

/// The call's state while its reply plays.
pub(super) struct Call {
    pub(super) reader: RequestReader,
    pub(super) headers_sent: bool,
    pub(super) rec: Recorder,
    pub(super) out: Outbox,
    /// The handler's request stream, until half-close.
    pub(super) to_handler: Option<mpsc::UnboundedSender<Bytes>>,
}

impl Call {
    pub(super) async fn answer(
        &mut self,
        state: &State,
        mut request: CallRequest,
        faults: Result<Option<Faults>, Status>,
    ) {
        if state.stubs.needs_message_for(&request) {
            if let Err(stop) = self.reader.read_first_message(&self.rec).await {
                return self.stop(stop).await;
            }
            request.first_message = self.reader.first_message();
        }
        let (answered_by, mut script) = state.stubs.answer(&request);
        let (stub_id, label) = answered_by.unzip();
        if script.echo_test_metadata {
            for (name, into) in [
                (INTEROP_ECHO_INITIAL, &mut script.headers),
                (INTEROP_ECHO_TRAILING, &mut script.trailers),
            ] {
                for value in request.metadata.as_ref().get_all(name) {
                    into.append(name, value.clone());
                }
            }
        }
        if state.options.fault_headers {
            script = match faults {
                Ok(Some(faults)) => faults.apply(script, &state.fail_counts),
                Ok(None) => script,
                Err(status) => Script::from_status(status),
            };
            if let Some(raw) = self.rec.read(|c| c.grpc_timeout.clone())
                && let Ok(value) = HeaderValue::from_str(&raw)
            {
                // In the initial metadata when there is some; a reply that sends no
                // headers (Trailers-Only, a hang) keeps that shape and carries the
                // echo in its trailers instead.
                let has_headers = !script.headers.is_empty()
                    || !script.messages.is_empty()
                    || script.handler.is_some();
                if has_headers {
                    script.headers.append(TIMEOUT_ECHO, value);
                } else {
                    script.trailers.append(TIMEOUT_ECHO, value);
                }
            }
        }
        // The shape is known for the methods the server was told of; for any other path
        // only the messages that flow can tell.
        let shape = state.options.shapes.get(&request.method);
        let flag = |f: fn(&MethodShape) -> bool| {
            shape.map_or("unknown", |m| if f(m) { "true" } else { "false" })
        };
        // DEBUG: at INFO a call is logged once, when it ends (the journal's line), so that
        // `serve` under load pays for one log line per call, not two.
        tracing::debug!(
            call = self.rec.id(),
            method = %request.method,
            client_streaming = flag(|m| m.client_streaming),
            server_streaming = flag(|m| m.server_streaming),
            stub = label.as_deref().unwrap_or("none"),
            "call started"
        );
        self.rec.update(|c| {
            c.stub = label;
            c.stub_id = stub_id;
        });
        self.play(script, request).await;
    }

    async fn play(&mut self, script: Script, request: CallRequest) {
        if !script.problems.is_empty() {
            let message = format!(
                "grpc-chaos: the stub's reply is invalid: {}",
                script.problems.join("; ")
            );
            return self
                .finish(Status::internal(message), HeaderMap::new())
                .await;
        }
        if let Err(stop) = self.pause(script.header_delay).await {
            return self.stop(stop).await;
        }
        if script.handler.is_none() {
            self.reader.forget_unforwarded();
        }
        let mut headers = Some(script.headers);
        let handler_result = match script.handler {
            Some(handler) => {
                let (out_tx, out_rx) = mpsc::channel(1);
                let call = CallHandle::new(request, self.request_stream(), out_tx);
                let running = handler.start(call);
                // Boxed: a handler's state is large, and every call's future would
                // otherwise carry room for it (more memory written per call).
                match Box::pin(self.run_handler(running, out_rx, &mut headers, script.max_messages))
                    .await
                {
                    Ok(result) => result,
                    Err(stop) => return self.stop(stop).await,
                }
            }
            None => {
                if !script.messages.is_empty() {
                    self.send_headers(&mut headers).await;
                }
                for (delay, message) in script.messages {
                    if let Err(stop) = self.pause(delay).await {
                        return self.stop(stop).await;
                    }
                    self.send_message(&mut headers, message).await;
                }
                None
            }
        };
        // Initial metadata of the reply is sent even when no message is.
        if headers.as_ref().is_some_and(|h| !h.is_empty()) {
            self.send_headers(&mut headers).await;
        }
        if let Err(stop) = self.pause(script.ending_delay).await {
            return self.stop(stop).await;
        }
        let status = match script.ending {
            Ending::FromHandler => match handler_result {
                Some(Ok(())) => Status::new(tonic::Code::Ok, ""),
                Some(Err(status)) => status,
                None => Status::internal("grpc-chaos: handler reply without a handler"),
            },
            Ending::Status(status) => {
                if script.wait_for_half_close
                    && let Err(stop) = self.reader.read_to_end(&self.rec).await
                {
                    return self.stop(stop).await;
                }
                status
            }
            Ending::Hang => {
                if let Err(stop) = self.reader.read_to_end(&self.rec).await {
                    return self.stop(stop).await;
                }
                return pending::<()>().await;
            }
            Ending::Reset(reason) => {
                self.rec.end(CallEnding::Reset {
                    reason,
                    at: Instant::now(),
                });
                self.emit(Event::Reset(reason)).await;
                return;
            }
        };
        self.finish(status, script.trailers).await;
    }

    /// Runs a handler beside the request reader until it returns, or until it has sent
    /// `max_messages` (then `None`: the reply's abort ending takes over).
    async fn run_handler(
        &mut self,
        mut handler: HandlerFuture,
        mut from_handler: mpsc::Receiver<HandlerOut>,
        headers: &mut Option<HeaderMap>,
        max_messages: Option<usize>,
    ) -> Result<Option<Result<(), Status>>, Stop> {
        let mut sent = 0;
        // A handler may drop its `CallHandle` and go on; then stop listening to it.
        let mut listening = true;
        loop {
            if max_messages.is_some_and(|max| sent >= max) {
                return Ok(None);
            }
            tokio::select! {
                biased;
                out = from_handler.recv(), if listening => match out {
                    Some(HandlerOut::Headers(extra)) => self.handler_headers(headers, extra).await,
                    Some(HandlerOut::Message(message)) => {
                        self.send_message(headers, message).await;
                        sent += 1;
                    }
                    None => listening = false,
                },
                result = &mut handler => {
                    // What the handler sent just before returning is still queued.
                    while let Ok(out) = from_handler.try_recv() {
                        if max_messages.is_some_and(|max| sent >= max) {
                            return Ok(None);
                        }
                        match out {
                            HandlerOut::Headers(extra) => self.handler_headers(headers, extra).await,
                            HandlerOut::Message(message) => {
                                self.send_message(headers, message).await;
                                sent += 1;
                            }
                        }
                    }
                    return Ok(Some(result));
                }
                read = self.reader.read_one(&self.rec), if !self.reader.half_closed() => {
                    read?;
                    self.forward_requests();
                }
            }
        }
    }

    /// Sends a handler's headers, merged with the reply's own (both kept). Headers go out
    /// once: metadata a handler sends after that is dropped, as HTTP/2 allows no more.
    async fn handler_headers(&mut self, headers: &mut Option<HeaderMap>, extra: MetadataMap) {
        if let Some(h) = headers.as_mut() {
            for (name, value) in &extra.into_headers() {
                h.append(name.clone(), value.clone());
            }
        }
        self.send_headers(headers).await;
    }

    /// A fresh request stream for a handler, starting with what has already arrived.
    fn request_stream(&mut self) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.to_handler = Some(tx);
        self.forward_requests();
        rx
    }

    /// Passes newly recorded request messages to the handler; closes its stream at
    /// half-close.
    fn forward_requests(&mut self) {
        if let Some(tx) = &self.to_handler {
            for message in self.reader.take_unforwarded() {
                let _ = tx.send(message);
            }
        }
        if self.reader.half_closed() {
            self.to_handler = None;
        }
    }

    /// Sends the response headers, once.
    async fn send_headers(&mut self, headers: &mut Option<HeaderMap>) {
        if let Some(h) = headers.take() {
            self.headers_sent = true;
            self.emit(Event::Headers(h)).await;
        }
    }

    /// Records and sends one message (and the headers first, when they are still due).
    async fn send_message(&mut self, headers: &mut Option<HeaderMap>, message: Bytes) {
        self.send_headers(headers).await;
        let (size, frame) = (message.len(), crate::framing::encode(&message));
        // The journal takes the message itself: a clone of a `Bytes` made from a `Vec`
        // (as a reply's message is) allocates its shared count.
        let index = self.rec.message(Side::Response, message);
        tracing::debug!(call = self.rec.id(), index, size, "message sent");
        self.emit(Event::Message(frame)).await;
    }

    /// Records the status, then sends it (in trailers, or Trailers-Only before headers).
    pub(super) async fn finish(&mut self, status: Status, trailers: HeaderMap) {
        let mut map = HeaderMap::new();
        if status.add_header(&mut map).is_err() {
            // Only metadata tonic cannot encode gets here: send the bare code.
            map.clear();
            map.insert("grpc-status", HeaderValue::from(status.code() as i32));
        }
        for (name, value) in &trailers {
            map.append(name.clone(), value.clone());
        }
        self.rec.end(CallEnding::Status {
            code: status.code(),
            message: status.message().to_string(),
            at: Instant::now(),
        });
        self.reader.release();
        let event = if self.headers_sent {
            Event::Trailers(map)
        } else {
            Event::TrailersOnly(map)
        };
        self.emit(event).await;
    }

    async fn stop(&mut self, stop: Stop) {
        match stop {
            Stop::Malformed(status) => self.finish(status, HeaderMap::new()).await,
            Stop::ClientGone => {
                self.rec.cancelled();
                // hyper drops this call as soon as it sees the reset.
                pending::<()>().await;
            }
        }
    }

    async fn emit(&mut self, event: Event) {
        self.out.send(event).await;
    }

    /// Runs `work` while recording the request as it arrives.
    async fn read_while<F: Future>(&mut self, work: F) -> Result<F::Output, Stop> {
        tokio::pin!(work);
        loop {
            if self.reader.half_closed() {
                return Ok(work.await);
            }
            tokio::select! {
                biased;
                out = &mut work => return Ok(out),
                read = self.reader.read_one(&self.rec) => read?,
            }
        }
    }

    /// Waits `delay` while recording the request. A zero delay does not touch the timer:
    /// tokio rounds every sleep up to its next 1 ms tick, which would cost each call
    /// milliseconds of real time.
    async fn pause(&mut self, delay: Duration) -> Result<(), Stop> {
        if delay.is_zero() {
            return Ok(());
        }
        self.read_while(sleep(delay)).await
    }
}
