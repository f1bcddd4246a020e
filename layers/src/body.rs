//! Boxing a body for tonic when its errors are already a `Status`.
//!
//! `tonic::body::Body::new` wraps any other body in an error-mapping adapter before it
//! boxes it, so each frame passes one more poll. Given a body already boxed as tonic's
//! own box type, it takes it as it is.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use tonic::Status;

/// `body` as tonic's body, boxed once, with no adapter between the box and `body`.
pub(crate) fn boxed<B>(body: B) -> tonic::body::Body
where
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    tonic::body::Body::new(UnsyncBoxBody::new(body))
}
