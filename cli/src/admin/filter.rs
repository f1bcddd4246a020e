//! Which journal entries a ListCalls or WatchCalls request sees: its session's, to its
//! method, in its window of arrival offsets. One rule for `serve`'s journal and the
//! proxy's.

use std::time::Duration;

use grpc_chaos::fake::ReceivedCall;
use tokio::time::Instant;
use tonic::Status;

use super::{pb, SESSION_HEADER};

/// Whether a call belongs to `session` (every call does when it is empty).
pub(super) fn in_session(call: &ReceivedCall, session: &str) -> bool {
    session.is_empty() || call.header(SESSION_HEADER) == Some(session)
}

/// What a request asks to see of the journal.
pub(super) struct CallFilter {
    session: String,
    method: String,
    since: Option<Duration>,
    until: Option<Duration>,
}

impl CallFilter {
    /// A ListCalls request's filter; INVALID_ARGUMENT for a negative offset.
    pub(super) fn list(session: String, body: pb::ListCallsRequest) -> Result<Self, Status> {
        let bound = |d: Option<prost_types::Duration>| {
            d.map(|d| {
                Duration::try_from(d).map_err(|_| {
                    Status::invalid_argument("since and until are offsets: not negative")
                })
            })
            .transpose()
        };
        Ok(Self {
            since: bound(body.since)?,
            until: bound(body.until)?,
            session,
            method: body.method,
        })
    }

    /// A WatchCalls request's filter.
    pub(super) fn watch(session: String, body: pb::WatchCallsRequest) -> Self {
        Self {
            session,
            method: body.method,
            since: None,
            until: None,
        }
    }

    /// Whether the request sees `call`, given the instant offsets are taken from.
    pub(super) fn keeps(&self, call: &ReceivedCall, origin: Instant) -> bool {
        let at = call.arrived_at.saturating_duration_since(origin);
        in_session(call, &self.session)
            && (self.method.is_empty() || call.method == self.method)
            && self.since.is_none_or(|s| at >= s)
            && self.until.is_none_or(|u| at < u)
    }
}
