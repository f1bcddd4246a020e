//! One call through the proxy: its fault picked, the request forwarded (edited), the
//! response passed down message by message, and the client's deadline enforced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::coalesce::Coalesced;
use super::fault::{Fault, TimeoutEdit};
use super::journal::{AppliedFault, CallLog, MessageTap, ProxiedCall};
use super::record::{FirstMessage, RecordedCall, Sink};
use super::request::{Prefetched, RequestBody, RequestDelay};
use super::upstream::Link;
use super::{ActiveFault, Shared};
use crate::connection::status_from_error;
use crate::deadline::{
    deadline_exceeded, format_grpc_timeout, parse_grpc_timeout_bytes, GrpcTimeoutError,
};
use crate::fake::{CallEnding, CallRequest, Reason, ReceivedCall};
use crate::framing::{split_message, FrameReader};
use crate::metadata::check_request_size;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A frame on its way down, or the reset that ends the stream.
type Out = Result<Frame<Bytes>, BoxError>;

/// Forwards one call (or answers it with an added service); resolves with the response
/// headers (or a Trailers-Only status).
pub(crate) async fn forward(
    shared: Arc<Shared>,
    link: Arc<Link>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    if let Some(routes) = shared.services.route(request.uri().path()) {
        let Ok(response) = tower::ServiceExt::oneshot(routes, request).await;
        let live = Live::new(Arc::clone(&shared));
        return Ok(response
            .map(|body| ProxyBody::new(BodyKind::Service(body), live, ActiveFault(None), None)));
    }
    let live = Live::new(Arc::clone(&shared));
    let mut active = ActiveFault(None);
    let mut log = None;
    let response = forward_call(shared, link, request, &mut active, &mut log).await;
    if let (Some(log), BodyKind::Empty) = (&log, response.body()) {
        log.sent_status(response.headers());
    }
    Ok(response.map(|kind| ProxyBody::new(kind, live, active, log)))
}

/// Counts a call as live until its response body is dropped.
pub(crate) struct Live(Arc<Shared>);

impl Live {
    fn new(shared: Arc<Shared>) -> Self {
        shared
            .live
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0
            .live
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0.ended.notify_waiters();
    }
}

/// Opens the call's journal entry: the request as the client sent it.
fn open_log(
    shared: &Shared,
    parts: &http::request::Parts,
    arrived_at: Instant,
    timeout: Option<&Result<Duration, GrpcTimeoutError>>,
    deadline: Option<Instant>,
) -> Option<CallLog> {
    let journal = shared.journal.as_ref()?;
    let recorder = journal.open(|id| {
        ProxiedCall::new(ReceivedCall::arriving(
            id,
            parts.uri.path().to_string(),
            MetadataMap::from_headers(parts.headers.clone()),
            parts
                .headers
                .get("grpc-timeout")
                .map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned()),
            timeout.cloned(),
            arrived_at,
            deadline,
        ))
    });
    Some(CallLog::new(recorder))
}

async fn forward_call(
    shared: Arc<Shared>,
    link: Arc<Link>,
    request: Request<Incoming>,
    active: &mut ActiveFault,
    log: &mut Option<CallLog>,
) -> Response<BodyKind> {
    let arrived = Instant::now();
    let (mut parts, mut body) = request.into_parts();
    let timeout = parts
        .headers
        .get("grpc-timeout")
        .map(|v| parse_grpc_timeout_bytes(v.as_bytes()));
    let deadline = match &timeout {
        Some(Ok(t)) => arrived.checked_add(*t),
        _ => None,
    };
    *log = open_log(&shared, &parts, arrived, timeout.as_ref(), deadline);
    let log = log.clone();
    // What a gRPC server refuses anyway, answered as a status rather than HTTP 431 or a
    // GOAWAY that would take the client's other calls with it.
    if let Err(status) = check_request_size(&parts.headers, super::METADATA_LIMIT) {
        return status_only(status);
    }
    // The client's own `x-chaos-*` headers, when they are on, take the rules' place.
    let asked = match shared.fault_headers {
        true => match super::headers::fault(&parts.headers, &shared.fail_counts) {
            Ok(asked) => {
                super::headers::strip(&mut parts.headers);
                asked
            }
            Err(status) => return status_only(status),
        },
        false => None,
    };
    // Rules see the call as the fake's matchers do; with none, nothing is copied.
    let mut prefetched = Prefetched::default();
    let mut request_tap = log.clone().map(MessageTap::requests);
    let fault = if let Some(asked) = asked {
        match shared.admit(&asked, parts.uri.path()) {
            Some(token) => {
                *active = token;
                if let Some(log) = &log {
                    log.fault(AppliedFault {
                        rule: "x-chaos-* headers".into(),
                        fault: asked.to_string(),
                    });
                }
                asked
            }
            None => Fault::default(),
        }
    } else if shared.rules.is_empty() {
        Fault::default()
    } else {
        let mut view = CallRequest {
            method: parts.uri.path().to_string(),
            metadata: MetadataMap::from_headers(parts.headers.clone()),
            timeout,
            first_message: None,
        };
        if shared.needs_message_for(&view) {
            // Read ahead to the first message (passed on as it was, once forwarded).
            let read = prefetched.first_message(&mut body, request_tap.as_mut());
            let read = match deadline {
                Some(d) => tokio::select! {
                    read = read => read,
                    () = tokio::time::sleep_until(d) => return status_only(deadline_exceeded()),
                },
                None => read.await,
            };
            match read {
                Ok(message) => view.first_message = message,
                Err(_) => {
                    return status_only(Status::cancelled(
                        "grpc-chaos proxy: the client went away before its first message",
                    ))
                }
            }
        }
        match shared.pick(&view) {
            Some((fault, applied, token)) => {
                *active = token;
                if let Some(log) = &log {
                    log.fault(applied.clone());
                }
                fault
            }
            None => Fault::default(),
        }
    };
    // Sleeps until `until`, or the deadline when it comes first (then `true`); the
    // time slept is injected.
    let hold = |until: Instant| {
        let log = log.clone();
        async move {
            let start = Instant::now();
            let expired = match deadline {
                Some(d) if d <= until => {
                    tokio::time::sleep_until(d).await;
                    true
                }
                _ => {
                    tokio::time::sleep_until(until).await;
                    false
                }
            };
            if let Some(log) = &log {
                log.injected(start.elapsed());
            }
            expired
        }
    };
    if let Some(delay) = fault.delay
        && hold(arrived + delay).await
    {
        return status_only(deadline_exceeded());
    }
    if fault.drop_connection {
        link.drop_connection();
        return status_only(Status::unavailable("grpc-chaos proxy: connection dropped"));
    }
    if let Some(status) = &fault.answer {
        return status_only(status.clone());
    }
    fault.request_headers.apply(&mut parts.headers);
    if let (Some(edit), Some(d)) = (fault.timeout, deadline) {
        let left = d.saturating_duration_since(Instant::now());
        match edit {
            TimeoutEdit::Strip => drop(parts.headers.remove("grpc-timeout")),
            TimeoutEdit::AtMost(limit) => set_timeout(&mut parts.headers, left.min(limit)),
            TimeoutEdit::Scale(factor) => set_timeout(&mut parts.headers, left.mul_f64(factor)),
        }
    }
    // What the recorder needs, copied only when it records.
    let method = shared
        .recorder
        .as_ref()
        .map(|_| parts.uri.path().to_string());
    let tap = shared
        .recorder
        .is_some()
        .then(|| Arc::new(std::sync::Mutex::new(FirstMessage::default())));
    let body = RequestBody {
        inner: body,
        prefetched,
        tap: tap.clone(),
        journal: request_tap,
        delay: fault
            .request_message_delay
            .map(|(delay, nth)| RequestDelay::new(delay, nth)),
    };
    let sent_at = Instant::now();
    if let Some(log) = &log {
        log.forwarded();
    }
    let upstream = async {
        let mut sender = link.sender().await.map_err(|e| {
            Status::unavailable(format!("grpc-chaos proxy: upstream unreachable: {e}"))
        })?;
        sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(status_of)
    };
    let response = match deadline {
        Some(d) => tokio::select! {
            r = upstream => r,
            () = tokio::time::sleep_until(d) => Err(deadline_exceeded()),
        },
        None => upstream.await,
    };
    if let Some(log) = &log {
        log.waited(sent_at.elapsed());
    }
    let response = match response {
        Ok(response) => response,
        Err(status) => return status_only(status),
    };
    if let Some(log) = &log {
        // A Trailers-Only answer carries its status in the headers.
        log.upstream_status(response.headers());
    }
    if let Some(delay) = fault.response_delay
        && hold(Instant::now() + delay).await
    {
        return status_only(deadline_exceeded());
    }
    let (mut head, body) = response.into_parts();
    let recording = shared.recorder.clone().map(|sink| {
        let mut headers = head.headers.clone();
        let status = RecordedCall::take_status(&mut headers);
        Recording {
            sink,
            tap,
            last: Instant::now(),
            call: RecordedCall {
                method: method.unwrap_or_default(),
                headers_after: sent_at.elapsed(),
                headers,
                status,
                ..RecordedCall::default()
            },
        }
    });
    fault.response_headers.apply(&mut head.headers);
    if fault.leaves_body() && deadline.is_none() && recording.is_none() {
        return Response::from_parts(head, BodyKind::Upstream(Coalesced::new(body)));
    }
    let (tx, rx) = mpsc::channel(1);
    let pump = Box::pin(pump(body, fault, deadline, recording, log, tx));
    Response::from_parts(
        head,
        BodyKind::Pumped(Pumped {
            run: Some(pump),
            rx,
        }),
    )
}

fn set_timeout(headers: &mut HeaderMap, timeout: Duration) {
    if let Ok(value) = HeaderValue::from_str(&format_grpc_timeout(timeout)) {
        headers.insert("grpc-timeout", value);
    }
}

/// A Trailers-Only response carrying `status`.
fn status_only(status: Status) -> Response<BodyKind> {
    let (parts, ()) = status.into_http::<()>().into_parts();
    Response::from_parts(parts, BodyKind::Empty)
}

/// Trailers carrying `status`.
fn status_trailers(status: &Status) -> HeaderMap {
    let (parts, ()) = status.clone().into_http::<()>().into_parts();
    let mut trailers = parts.headers;
    trailers.remove(http::header::CONTENT_TYPE);
    trailers
}

/// The status a client reads for an upstream failure: the layers' one rule (a lost
/// connection is UNAVAILABLE; a stream reset gets the code tonic maps its HTTP/2 error
/// code to, as the spec says).
fn status_of(error: hyper::Error) -> Status {
    let status = status_from_error(Box::new(error));
    Status::new(
        status.code(),
        format!(
            "grpc-chaos proxy: the upstream failed: {}",
            status.message()
        ),
    )
}

/// Passes the upstream body down, applying the fault message by message and ending the
/// call with DEADLINE_EXCEEDED when the client's deadline passes.
async fn pump(
    mut body: Incoming,
    fault: Fault,
    deadline: Option<Instant>,
    mut recording: Option<Recording>,
    log: Option<CallLog>,
    out: mpsc::Sender<Out>,
) {
    let mut splitter = (fault.counts_messages() || recording.is_some()).then(BytesMut::new);
    let mut sent = 0u64;
    let expired = || async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let log = log.as_ref();
    loop {
        let waiting = Instant::now();
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            () = expired() => {
                let _ = out.send(Ok(Frame::trailers(status_trailers(&deadline_exceeded())))).await;
                return;
            }
        };
        if let Some(log) = log {
            log.waited(waiting.elapsed());
        }
        let frame = match frame {
            None => {
                if let Some(recording) = recording.take() {
                    recording.finish(None);
                }
                return;
            }
            Some(Err(e)) => {
                let status = status_of(e);
                let _ = out
                    .send(Ok(Frame::trailers(status_trailers(&status))))
                    .await;
                return;
            }
            Some(Ok(frame)) => frame,
        };
        let frame = match frame.into_data() {
            Ok(data) => {
                let Some(buffer) = splitter.as_mut() else {
                    if !send_data(&out, &fault, log, data).await {
                        return;
                    }
                    continue;
                };
                buffer.extend_from_slice(&data);
                while let Some(message) = split_message(buffer) {
                    if let Some(recording) = recording.as_mut() {
                        recording.message(&message);
                    }
                    if let Some((n, status)) = &fault.abort_after
                        && sent >= *n
                    {
                        let _ = out.send(Ok(Frame::trailers(status_trailers(status)))).await;
                        return;
                    }
                    if let Some((n, reason)) = fault.reset_after
                        && sent >= n
                    {
                        // hyper resets the stream with the h2 reason it finds in the error.
                        let reason = h2::Reason::from(reason.code());
                        let _ = out.send(Err(Box::new(h2::Error::from(reason)))).await;
                        return;
                    }
                    if let Some((delay, nth)) = fault.message_delay
                        && nth.is_none_or(|n| n == sent + 1)
                    {
                        let start = Instant::now();
                        let expired = tokio::select! {
                            biased;
                            () = expired() => true,
                            () = tokio::time::sleep(delay) => false,
                        };
                        if let Some(log) = log {
                            log.injected(start.elapsed());
                        }
                        if expired {
                            let _ = out
                                .send(Ok(Frame::trailers(status_trailers(&deadline_exceeded()))))
                                .await;
                            return;
                        }
                    }
                    if !send_data(&out, &fault, log, message).await {
                        return;
                    }
                    sent += 1;
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(mut trailers) = frame.into_trailers() {
            if let Some(log) = log {
                log.upstream_status(&trailers);
            }
            if let Some(recording) = recording.take() {
                recording.finish(Some(trailers.clone()));
            }
            // The stream ended: a fault counting past the messages sent applies now.
            if let Some((n, status)) = &fault.abort_after
                && sent >= *n
            {
                trailers = status_trailers(status);
            }
            if fault.drop_trailers {
                return;
            }
            fault.response_trailers.apply(&mut trailers);
            let _ = out.send(Ok(Frame::trailers(trailers))).await;
            return;
        }
    }
}

/// Sends response bytes down, cut into slices and paced to the fault's bandwidth;
/// `false` once the client has gone.
async fn send_data(
    out: &mpsc::Sender<Out>,
    fault: &Fault,
    log: Option<&CallLog>,
    mut data: Bytes,
) -> bool {
    while !data.is_empty() {
        let piece = data.split_to(fault.slice.unwrap_or(data.len()).min(data.len()));
        if let Some(rate) = fault.bandwidth {
            let nanos = (piece.len() as u128 * 1_000_000_000) / u128::from(rate);
            let pause = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            tokio::time::sleep(pause).await;
            if let Some(log) = log {
                log.injected(pause);
            }
        }
        if out.send(Ok(Frame::data(piece))).await.is_err() {
            return false;
        }
    }
    true
}

/// A call being recorded: what has come so far.
struct Recording {
    sink: Sink,
    tap: Option<Arc<std::sync::Mutex<FirstMessage>>>,
    /// When the last message (or the headers) arrived.
    last: Instant,
    call: RecordedCall,
}

impl Recording {
    fn message(&mut self, framed: &Bytes) {
        let now = Instant::now();
        self.call
            .messages
            .push((now - self.last, framed.slice(5..)));
        self.last = now;
    }

    fn finish(mut self, trailers: Option<HeaderMap>) {
        if let Some(mut trailers) = trailers {
            self.call.status = RecordedCall::take_status(&mut trailers);
            self.call.trailers = trailers;
        }
        if let Some(tap) = &self.tap {
            self.call.request = tap.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        (self.sink)(self.call);
    }
}

/// The body of a proxied response, counted live until dropped, and journaled as it
/// goes down: its messages, how it ended, and (passed through untouched) the time spent
/// waiting on the upstream.
pub(crate) struct ProxyBody {
    kind: BodyKind,
    log: Option<MessageTap>,
    /// Finds where messages end when no journal does, so that a response ending inside
    /// a message (the upstream's length prefix lied) gets a status of its own.
    framing: Option<FrameReader>,
    /// Whether the proxy's own status took the place of the upstream's trailers.
    replaced: bool,
    /// Since when a pass-through body has waited on the upstream.
    waiting: Option<Instant>,
    _live: Live,
    /// Counts the call against the cap on active faults while its response lasts.
    _active: ActiveFault,
}

impl ProxyBody {
    fn new(kind: BodyKind, live: Live, active: ActiveFault, log: Option<CallLog>) -> Self {
        let checked = !matches!(kind, BodyKind::Empty | BodyKind::Service(_));
        Self {
            framing: (checked && log.is_none()).then(FrameReader::new),
            log: log.map(MessageTap::responses).filter(|_| checked),
            kind,
            replaced: false,
            waiting: None,
            _live: live,
            _active: active,
        }
    }

    /// A response that ends inside a message ends instead with INTERNAL, saying so.
    fn check_framing(
        &mut self,
        polled: Poll<Option<Result<Frame<Bytes>, BoxError>>>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let pending = match (&self.log, &self.framing) {
            (Some(tap), _) => tap.pending(),
            (None, Some(reader)) => reader.pending(),
            (None, None) => return polled,
        };
        let ends = match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(reader)) = (frame.data_ref(), self.framing.as_mut()) {
                    let mut data = &data[..];
                    while reader.read(&mut data).is_some() {}
                }
                frame.is_trailers()
            }
            Poll::Ready(None) => true,
            _ => false,
        };
        if !ends || pending == 0 {
            return polled;
        }
        if let (Some(tap), BodyKind::Upstream(_), Poll::Ready(Some(Ok(frame)))) =
            (&self.log, &self.kind, &polled)
            && let Some(trailers) = frame.trailers_ref()
        {
            // What the upstream said, before the proxy's own status replaces it.
            tap.log().upstream_status(trailers);
        }
        self.replaced = true;
        let status = Status::internal(format!(
            "grpc-chaos proxy: the upstream's response ended inside a message \
             ({pending} bytes of it, prefix included, had come)"
        ));
        Poll::Ready(Some(Ok(Frame::trailers(status_trailers(&status)))))
    }

    /// Journals what goes down to the client.
    fn journal(&mut self, polled: &Poll<Option<Result<Frame<Bytes>, BoxError>>>) {
        let Some(tap) = self.log.as_mut() else {
            return;
        };
        let upstream = matches!(self.kind, BodyKind::Upstream(_));
        if upstream {
            match (polled, self.waiting) {
                (Poll::Pending, None) => self.waiting = Some(Instant::now()),
                (Poll::Ready(_), Some(since)) => {
                    tap.log().waited(since.elapsed());
                    self.waiting = None;
                }
                _ => {}
            }
        }
        match polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    tap.feed(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    if upstream && !self.replaced {
                        tap.log().upstream_status(trailers);
                    }
                    tap.log().sent_status(trailers);
                }
            }
            Poll::Ready(Some(Err(e))) => tap.log().end(CallEnding::Reset {
                reason: reset_reason(e.as_ref()),
                at: Instant::now(),
            }),
            // A stream that ends with no trailers (once ended, this changes nothing).
            Poll::Ready(None) => tap.log().end(CallEnding::NoStatus { at: Instant::now() }),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        if let Some(tap) = &self.log {
            tap.log().cancelled();
        }
    }
}

/// The HTTP/2 code a stream is reset with for this error (hyper's choice: the h2
/// reason in it, or INTERNAL_ERROR).
fn reset_reason(error: &(dyn std::error::Error + 'static)) -> Reason {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && let Some(reason) = h2.reason()
        {
            return Reason::from(u32::from(reason));
        }
        source = e.source();
    }
    Reason::INTERNAL_ERROR
}

/// Where a proxied response's frames come from.
pub(crate) enum BodyKind {
    /// Trailers-Only: the status is in the headers.
    Empty,
    /// Passed through untouched (ready frames joined).
    Upstream(Coalesced),
    /// Passed through the fault's pump.
    Pumped(Pumped),
    /// Answered by a service the proxy serves itself.
    Service(tonic::body::Body),
}

/// The pump, polled by the body itself (no task of its own), and what it emits.
pub(crate) struct Pumped {
    run: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    rx: mpsc::Receiver<Out>,
}

impl Pumped {
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Option<Out>> {
        if let Poll::Ready(out) = self.rx.poll_recv(cx) {
            return Poll::Ready(out);
        }
        if let Some(run) = self.run.as_mut()
            && run.as_mut().poll(cx).is_ready()
        {
            self.run = None;
        }
        self.rx.poll_recv(cx)
    }
}

impl http_body::Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            BodyKind::Empty => Poll::Ready(None),
            BodyKind::Upstream(body) => body.poll_frame(cx).map_err(|e| Box::new(e) as BoxError),
            BodyKind::Pumped(pumped) => pumped.poll_out(cx),
            BodyKind::Service(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|status| Box::new(status) as BoxError),
        };
        let polled = this.check_framing(polled);
        this.journal(&polled);
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Empty => true,
            BodyKind::Service(body) => body.is_end_stream(),
            _ => false,
        }
    }
}
