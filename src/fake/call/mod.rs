//! One call on the fake server: read the request, match a stub, play its reply.
//!
//! The whole call is one async function (`run`) that emits events into a one-slot
//! outbox; the hyper service future and then the response body poll that function
//! directly, so it runs on hyper's stream task with no task of its own. When the client
//! goes away hyper drops the body, which drops `run` mid-await: the journal's recorder
//! sees the drop and records the cancel at that instant.

mod body;
mod player;
mod reader;

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;

use super::faults::Faults;
use super::journal::ReceivedCall;
use super::reason::Reason;
use super::request::CallRequest;
use super::state::State;
use crate::deadline::{deadline_exceeded, parse_grpc_timeout_bytes};
use crate::metadata::check_request_size;
pub(crate) use body::CallBody;
use body::{grpc_response, Driver, Outbox};
use player::Call;
use reader::RequestReader;

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
    let outbox = Outbox::default();
    let mut driver = Driver {
        run: Some(Box::pin(run(state, request, outbox.clone()))),
        outbox,
    };
    let event = poll_fn(|cx| driver.poll_event(cx)).await;
    match event {
        Some(Event::Headers(headers)) => Ok(grpc_response(headers, CallBody(Some(driver)))),
        Some(Event::TrailersOnly(headers)) => Ok(grpc_response(headers, CallBody(None))),
        Some(Event::Reset(reason)) => Err(Box::new(h2::Error::from(reason.to_h2()))),
        // `run` always starts with one of the three above; anything else is a bug here.
        Some(Event::Message(_) | Event::Trailers(_)) | None => {
            Err(Box::new(h2::Error::from(Reason::INTERNAL_ERROR.to_h2())))
        }
    }
}

async fn run(state: Arc<State>, request: Request<Incoming>, out: Outbox) {
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
    // The layers' own rules, applied before any stub sees the call: the metadata limit,
    // then the deadline (a malformed timeout is refused unless lenient).
    let admitted = match state.options.metadata_limit {
        Some(limit) => check_request_size(&parts.headers, limit),
        None => Ok(()),
    }
    .and_then(|()| state.options.admission.admit(&method, &parts.headers));
    let faults = if state.options.fault_headers {
        Faults::parse(&parts.headers)
    } else {
        Ok(None)
    };
    let metadata = MetadataMap::from_headers(parts.headers);
    // What the journal records: the deadline the client asked for, enforced or not.
    let deadline = match &timeout {
        Some(Ok(t)) => arrived_at.checked_add(*t),
        _ => None,
    };
    // The journal keeps the copy: a clone's entries take exactly the room they need,
    // where the map h2 decoded into has room for more (a 3-header request's map holds
    // 6 entries of 104 bytes each). The call's own request, let go when the call ends,
    // takes the roomier one.
    let kept = metadata.clone();
    let request = CallRequest {
        method: method.clone(),
        metadata,
        timeout: timeout.clone(),
        first_message: None,
    };
    let rec = state.journal.open(|id| {
        let raw_timeout = raw_timeout.map(|t| String::from_utf8_lossy(&t).into_owned());
        ReceivedCall::arriving(id, method, kept, raw_timeout, timeout, arrived_at, deadline)
    });
    let mut call = Call {
        reader: RequestReader::new(body, encoding),
        headers_sent: false,
        rec,
        out,
        to_handler: None,
    };
    let enforced = match admitted {
        Ok(deadline) => deadline.filter(|_| state.options.enforce_deadlines),
        Err(status) => return call.finish(status, HeaderMap::new()).await,
    };
    match enforced {
        None => call.answer(&state, request, faults).await,
        Some(deadline) => {
            let expired = tokio::select! {
                biased;
                () = call.answer(&state, request, faults) => false,
                () = tokio::time::sleep_until(deadline.instant()) => true,
            };
            if expired {
                call.finish(deadline_exceeded(), HeaderMap::new()).await;
            }
        }
    }
}
