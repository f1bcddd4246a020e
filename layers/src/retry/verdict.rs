//! How one attempt's outcome is judged: success, committed, failed (and whether that
//! failure came Trailers-Only), or superseded by another attempt; and the committed
//! body that settles the retry throttle with the call's final status.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::{Code, Status};

use super::layer::Plan;
use super::replay::Replay;
use super::run::{FromStatus, Verdict};
use crate::headers::status_of;

pub(super) type GrpcResponse = http::Response<Body>;

impl FromStatus for GrpcResponse {
    fn from_status(status: Status) -> Self {
        status.into_http()
    }
}

/// The status of a Trailers-Only response, read without trusting its details.
fn trailers_only_status(headers: &http::HeaderMap) -> Option<Status> {
    status_of(headers).0?;
    let mut headers = headers.clone();
    // tonic panics on a `grpc-status-details-bin` that is not base64; the decision to
    // retry needs only the code and the metadata.
    headers.remove("grpc-status-details-bin");
    Status::from_header_map(&headers)
}

/// Whether tonic's own timer ended the attempt.
pub(super) fn timed_out(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        match error.source() {
            Some(source) => error = source,
            None => return false,
        }
    }
}

/// The status the gRPC HTTP mapping gives a response with no `grpc-status` and an HTTP
/// status other than 200 (from a proxy, say), if that is what it is.
fn http_status(response: &GrpcResponse) -> Option<Status> {
    let http = response.status();
    if http == http::StatusCode::OK {
        return None;
    }
    let code = match http.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Some(Status::new(
        code,
        format!("HTTP status {http} with no grpc-status"),
    ))
}

/// Sorts one attempt's outcome.
pub(super) fn verdict(
    plan: &Arc<Plan>,
    replay: &Replay,
    number: u32,
    outcome: Result<GrpcResponse, Status>,
) -> Verdict<GrpcResponse> {
    let committed = replay.committed();
    if committed.is_some_and(|n| n != number) {
        return Verdict::Superseded;
    }
    let (status, result) = match outcome {
        Err(status) => (status.clone(), status.into_http()),
        Ok(response) => match trailers_only_status(response.headers()) {
            Some(status) if status.code() == Code::Ok => {
                if !replay.commit(number) {
                    return Verdict::Superseded;
                }
                return Verdict::Success(response);
            }
            Some(status) => (status, response),
            None => match http_status(&response) {
                Some(status) => (status, response),
                None => {
                    // Response headers: the call is this attempt's, and its status comes
                    // at the end of the stream.
                    if !replay.commit(number) {
                        return Verdict::Superseded;
                    }
                    let response = match plan.throttle() {
                        Some(_) => response.map(|body| {
                            crate::body::boxed(SettleAtEnd {
                                inner: body,
                                plan: Some(plan.clone()),
                            })
                        }),
                        None => response,
                    };
                    return Verdict::Committed(response);
                }
            },
        },
    };
    let committed = committed == Some(number);
    if !committed {
        replay.abandon(number);
    }
    Verdict::Failed {
        status,
        result,
        committed,
    }
}

pin_project_lite::pin_project! {
    /// A committed call's response body: its final status settles the throttle, as A6
    /// counts it (a retryable or non-fatal code takes a token, OK gives some back).
    struct SettleAtEnd {
        #[pin]
        inner: Body,
        plan: Option<Arc<Plan>>,
    }
}

impl http_body::Body for SettleAtEnd {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Status>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(Ok(trailers)) = frame.as_ref().map(|f| f.as_ref().map(|f| f.trailers_ref()))
            && let Some(status) = trailers.and_then(trailers_only_status)
            && let Some(plan) = this.plan.take()
        {
            plan.settle_final(status.code());
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
