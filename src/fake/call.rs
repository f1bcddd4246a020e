//! One call on the fake server: read the request, match a stub, play its reply.
//!
//! The whole call is one async function (`run`) that emits events into a one-slot
//! channel; the hyper service future and then the response body poll that function
//! directly, so it runs on hyper's stream task with no task of its own. When the client
//! goes away hyper drops the body, which drops `run` mid-await: the journal's recorder
//! sees the drop and records the cancel at that instant.

use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::codec::FrameDecoder;
use super::faults::{Faults, TIMEOUT_ECHO};
use super::handler::{CallHandle, HandlerFuture, HandlerOut};
use super::journal::{CallEnding, ReceivedCall, Recorder};
use super::matchers::CallRequest;
use super::reply::{Ending, Reason, Script};
use super::server::State;
use crate::deadline::parse_grpc_timeout_bytes;
use crate::method::MethodShape;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the call does next, in wire order.
#[derive(Debug)]
enum Event {
    Headers(HeaderMap),
    TrailersOnly(HeaderMap),
    Message(Bytes),
    Trailers(HeaderMap),
    Reset(Reason),
}

/// Serves one request: resolves once the response headers (or a reset) are known.
pub(crate) async fn serve(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<CallBody>, BoxError> {
    let (tx, rx) = mpsc::channel(1);
    let mut driver = Driver {
        run: Some(Box::pin(run(state, request, tx))),
        rx,
    };
    let event = poll_fn(|cx| driver.poll_event(cx)).await;
    match event {
        Some(Event::Headers(headers)) => Ok(grpc_response(headers, CallBody(Some(driver)))),
        Some(Event::TrailersOnly(headers)) => Ok(grpc_response(headers, CallBody(None))),
        Some(Event::Reset(reason)) => Err(Box::new(h2::Error::from(reason))),
        // `run` always starts with one of the three above; anything else is a bug here.
        Some(Event::Message(_) | Event::Trailers(_)) | None => {
            Err(Box::new(h2::Error::from(Reason::INTERNAL_ERROR)))
        }
    }
}

fn grpc_response(mut headers: HeaderMap, body: CallBody) -> Response<CallBody> {
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// Polls the call function and hands out what it emits.
struct Driver {
    run: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    rx: mpsc::Receiver<Event>,
}

impl Driver {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Poll::Ready(event) = self.rx.poll_recv(cx) {
            return Poll::Ready(event);
        }
        if let Some(run) = self.run.as_mut() {
            if run.as_mut().poll(cx).is_ready() {
                // Dropping the finished function drops its sender, so `rx` ends after the
                // last event.
                self.run = None;
            }
        }
        self.rx.poll_recv(cx)
    }
}

/// The response body: the rest of the call's events as HTTP/2 frames.
pub(crate) struct CallBody(Option<Driver>);

impl http_body::Body for CallBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(driver) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            return match driver.poll_event(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Event::Message(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(Some(Event::Trailers(map))) => {
                    Poll::Ready(Some(Ok(Frame::trailers(map))))
                }
                // hyper resets the stream with the h2 reason it finds in the error.
                Poll::Ready(Some(Event::Reset(reason))) => {
                    Poll::Ready(Some(Err(Box::new(h2::Error::from(reason)))))
                }
                Poll::Ready(Some(Event::Headers(_) | Event::TrailersOnly(_))) => continue,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// Why reading the request stopped the call.
enum Stop {
    /// The request broke the protocol: end the call with this status.
    Malformed(Status),
    /// The client reset the stream or the connection went away.
    ClientGone,
}

/// The call's state while its reply plays.
struct Call {
    /// The request body, until the call hands it to [`discard`] at its end.
    body: Option<Incoming>,
    decoder: FrameDecoder,
    half_closed: bool,
    headers_sent: bool,
    rec: Recorder,
    out: mpsc::Sender<Event>,
    /// The handler's request stream, until half-close.
    to_handler: Option<mpsc::UnboundedSender<Bytes>>,
    /// How many request messages the handler has been given.
    forwarded: usize,
}

async fn run(state: Arc<State>, request: Request<Incoming>, out: mpsc::Sender<Event>) {
    let arrived_at = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.uri.path().to_string();
    let raw_timeout = parts
        .headers
        .get("grpc-timeout")
        .map(|v| v.as_bytes().to_vec());
    let timeout = raw_timeout.as_deref().map(parse_grpc_timeout_bytes);
    let encoding = parts
        .headers
        .get("grpc-encoding")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let oversized = state.options.metadata_limit.and_then(|limit| {
        let size = crate::metadata::header_list_size(&parts.headers);
        (size > limit).then(|| {
            Status::resource_exhausted(format!(
                "request metadata is {size} bytes as HTTP/2 counts it, over the limit of {limit}"
            ))
        })
    });
    let faults = if state.options.fault_headers {
        Faults::parse(&parts.headers)
    } else {
        Ok(None)
    };
    let metadata = MetadataMap::from_headers(parts.headers);
    let deadline = match &timeout {
        Some(Ok(t)) => arrived_at.checked_add(*t),
        _ => None,
    };
    let request = CallRequest {
        method: method.clone(),
        metadata: metadata.clone(),
        timeout: timeout.clone(),
        first_message: None,
    };
    let rec = state.journal.open(|id| ReceivedCall {
        id,
        method,
        metadata,
        grpc_timeout: raw_timeout.map(|t| String::from_utf8_lossy(&t).into_owned()),
        timeout,
        arrived_at,
        deadline,
        stub: None,
        request_messages: Vec::new(),
        response_messages: Vec::new(),
        ending: CallEnding::InProgress,
    });
    let mut call = Call {
        body: Some(body),
        decoder: FrameDecoder::new(encoding),
        half_closed: false,
        headers_sent: false,
        rec,
        out,
        to_handler: None,
        forwarded: 0,
    };
    if let Some(status) = oversized {
        return call.finish(status, HeaderMap::new()).await;
    }
    let deadline = deadline.filter(|_| state.options.enforce_deadlines);
    match deadline {
        None => call.answer(&state, request, faults).await,
        Some(deadline) => {
            let expired = tokio::select! {
                biased;
                () = call.answer(&state, request, faults) => false,
                () = tokio::time::sleep_until(deadline) => true,
            };
            if expired {
                let status =
                    Status::deadline_exceeded("grpc-chaos: deadline exceeded on the server");
                call.finish(status, HeaderMap::new()).await;
            }
        }
    }
}

impl Call {
    async fn answer(
        &mut self,
        state: &State,
        mut request: CallRequest,
        faults: Result<Option<Faults>, Status>,
    ) {
        if state.options.reject_malformed_timeouts {
            if let Some(Err(e)) = &request.timeout {
                let raw = self
                    .rec
                    .read(|c| c.grpc_timeout.clone())
                    .unwrap_or_default();
                let status =
                    Status::internal(format!("grpc-chaos: malformed grpc-timeout {raw:?}: {e}"));
                return self.finish(status, HeaderMap::new()).await;
            }
        }
        if state.needs_message_for(&request) {
            if let Err(stop) = self.read_first_message().await {
                return self.stop(stop).await;
            }
            request.first_message = self.rec.read(|c| c.request_messages.first().cloned());
        }
        let call_id = self.rec.read(|c| c.id);
        let (label, mut script) = state.answer(call_id, &request);
        if script.echo_test_metadata {
            for (name, into) in [
                ("x-grpc-test-echo-initial", &mut script.headers),
                ("x-grpc-test-echo-trailing-bin", &mut script.trailers),
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
            if let Some(raw) = self.rec.read(|c| c.grpc_timeout.clone()) {
                if let Ok(value) = HeaderValue::from_str(&raw) {
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
        }
        // The shape is known for the methods the server was told of; for any other path
        // only the messages that flow can tell.
        let shape = state.options.shapes.get(&request.method);
        let flag = |f: fn(&MethodShape) -> bool| {
            shape.map_or("unknown", |m| if f(m) { "true" } else { "false" })
        };
        tracing::info!(
            call = call_id,
            method = %request.method,
            client_streaming = flag(|m| m.client_streaming),
            server_streaming = flag(|m| m.server_streaming),
            stub = label.as_deref().unwrap_or("none"),
            "call started"
        );
        self.rec.update(|c| c.stub = label);
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
        let mut headers = Some(script.headers);
        let handler_result = match script.handler {
            Some(handler) => {
                let (out_tx, out_rx) = mpsc::channel(1);
                let call = CallHandle::new(request, self.request_stream(), out_tx);
                let running = handler.start(call);
                match self
                    .run_handler(running, out_rx, &mut headers, script.max_messages)
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
                if script.wait_for_half_close {
                    if let Err(stop) = self.read_to_end().await {
                        return self.stop(stop).await;
                    }
                }
                status
            }
            Ending::Hang => {
                if let Err(stop) = self.read_to_end().await {
                    return self.stop(stop).await;
                }
                return pending::<()>().await;
            }
            Ending::Reset(reason) => {
                self.rec.end(CallEnding::Reset {
                    reason: reason.into(),
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
                read = self.read_one(), if !self.half_closed => {
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
        self.forwarded = 0;
        self.forward_requests();
        rx
    }

    /// Passes newly recorded request messages to the handler; closes its stream at
    /// half-close.
    fn forward_requests(&mut self) {
        if let Some(tx) = &self.to_handler {
            let forwarded = self.forwarded;
            let fresh: Vec<Bytes> = self.rec.read(|c| c.request_messages[forwarded..].to_vec());
            self.forwarded += fresh.len();
            for message in fresh {
                let _ = tx.send(message);
            }
        }
        if self.half_closed {
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
        let index = self.rec.update(|c| {
            c.response_messages.push(message.clone());
            c.response_messages.len() - 1
        });
        tracing::debug!(
            call = self.rec.id(),
            index,
            size = message.len(),
            "message sent"
        );
        self.emit(Event::Message(crate::framing::encode(&message)))
            .await;
    }

    /// Records the status, then sends it (in trailers, or Trailers-Only before headers).
    async fn finish(&mut self, status: Status, trailers: HeaderMap) {
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
        self.release_request();
        let event = if self.headers_sent {
            Event::Trailers(map)
        } else {
            Event::TrailersOnly(map)
        };
        self.emit(event).await;
    }

    /// Ends the server's interest in a request the client is still sending. Dropping the
    /// body would make h2 reset the stream with CANCEL, which can overtake the status
    /// just sent (the client would see CANCELLED instead of, say, DEADLINE_EXCEEDED);
    /// a gRPC server ends with its status and lets the client finish or cancel. So the
    /// rest of the request is read and discarded on a task of its own.
    fn release_request(&mut self) {
        if let Some(body) = self.body.take().filter(|_| !self.half_closed) {
            tokio::spawn(discard(body));
        }
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

    async fn emit(&mut self, event: Event) -> bool {
        self.out.send(event).await.is_ok()
    }

    /// Reads one frame of the request, recording every message it completes.
    async fn read_one(&mut self) -> Result<(), Stop> {
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
                    let rec = &self.rec;
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

    /// Runs `work` while recording the request as it arrives.
    async fn read_while<F: Future>(&mut self, work: F) -> Result<F::Output, Stop> {
        tokio::pin!(work);
        loop {
            if self.half_closed {
                return Ok(work.await);
            }
            tokio::select! {
                biased;
                out = &mut work => return Ok(out),
                read = self.read_one() => read?,
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

    async fn read_to_end(&mut self) -> Result<(), Stop> {
        while !self.half_closed {
            self.read_one().await?;
        }
        Ok(())
    }

    async fn read_first_message(&mut self) -> Result<(), Stop> {
        while !self.half_closed && self.rec.read(|c| c.request_messages.is_empty()) {
            self.read_one().await?;
        }
        Ok(())
    }
}

/// Reads a request body to its end (or until the client resets it) and drops the data.
async fn discard(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}
