//! A connection lost under a call, as the gRPC spec's status mapping says: UNAVAILABLE.
//!
//! tonic 0.14 reports a connection that breaks under a call as UNKNOWN: `"transport
//! error"` before the response headers, `"h2 protocol error: error reading a body from
//! connection"` after them. The spec's mapping of transport failures says UNAVAILABLE, and
//! so does every retry policy written from it. The client layers of this crate, the
//! deadline propagation layer and the retry layer, turn such an error into UNAVAILABLE
//! (so a policy that lists UNAVAILABLE retries it), for the call and for its response
//! stream. The functions here are the one rule they share, for code of your own that sees
//! a tonic client's errors.
//!
//! ```
//! use std::io;
//! use tonic_layers::connection::status_from_error;
//!
//! let broken = io::Error::new(io::ErrorKind::BrokenPipe, "stream closed because of a broken pipe");
//! let status = status_from_error(Box::new(broken));
//! assert_eq!(status.code(), tonic::Code::Unavailable);
//! assert!(status.message().starts_with("connection lost under the call"));
//!
//! // A status the server sent is left as it is.
//! let sent = status_from_error(Box::new(tonic::Status::not_found("no such order")));
//! assert_eq!(sent.code(), tonic::Code::NotFound);
//! ```

use std::error::Error;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tonic::{Code, Status};

/// Whether `error` says the connection under the call was lost, or could not be made:
/// an I/O error somewhere in its source chain (tonic and hyper wrap the socket's or the
/// pipe's own error), or an h2 error that came from I/O. A status with a code other than
/// UNKNOWN is a status, not a lost connection.
///
/// ```
/// use tonic_layers::connection::is_connection_lost;
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert!(is_connection_lost(&reset));
/// assert!(!is_connection_lost(&tonic::Status::unavailable("busy")));
/// ```
pub fn is_connection_lost(error: &(dyn Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(status) = error.downcast_ref::<Status>()
            && status.code() != Code::Unknown
        {
            return false;
        }
        if error.is::<std::io::Error>() {
            return true;
        }
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && h2.is_io()
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// The status a client should see for `error`: UNAVAILABLE when the connection was lost
/// (see [`is_connection_lost`]), otherwise what tonic makes of it
/// ([`Status::from_error`]). The original error stays the status's source.
///
/// ```
/// let status = tonic_layers::connection::status_from_error("no route".into());
/// assert_eq!(status.code(), tonic::Code::Unknown);
/// ```
pub fn status_from_error(error: Box<dyn Error + Send + Sync + 'static>) -> Status {
    match error.downcast::<Status>() {
        Ok(status) => remap(*status),
        Err(error) if is_connection_lost(error.as_ref()) => {
            lost(error.to_string(), Arc::from(error))
        }
        Err(error) => Status::from_error(error),
    }
}

/// [`status_from_error`] for a status already made: tonic's UNKNOWN for a lost connection
/// becomes UNAVAILABLE, anything else is kept.
pub(crate) fn remap(status: Status) -> Status {
    if status.code() != Code::Unknown || !is_connection_lost(&status) {
        return status;
    }
    let message = status.message().to_string();
    lost(message, Arc::new(status))
}

fn lost(what: String, source: Arc<dyn Error + Send + Sync + 'static>) -> Status {
    let mut status = Status::unavailable(format!("connection lost under the call: {what}"));
    status.set_source(source);
    status
}

/// A response body whose errors go through [`remap`], so a connection lost mid-stream
/// reaches the client as UNAVAILABLE.
pub(crate) struct LostAsUnavailable {
    inner: tonic::body::Body,
}

impl LostAsUnavailable {
    pub(crate) fn body(inner: tonic::body::Body) -> tonic::body::Body {
        crate::body::boxed(Self { inner })
    }
}

impl http_body::Body for LostAsUnavailable {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|result| result.map_err(remap)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
