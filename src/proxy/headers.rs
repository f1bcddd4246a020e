//! The `x-chaos-*` request headers through the proxy, when
//! [`ProxyBuilder::fault_headers`](super::ProxyBuilder::fault_headers) turns them on:
//! the fake's header grammar ([`crate::fake::faults`], its one home) read into a proxy
//! [`Fault`], and stripped before the call goes upstream.
//! What each header does through the proxy is on that method.
//!
//! `x-chaos-session` is forwarded: it is no fault, and a `grpc-chaos serve` upstream
//! matches its session stubs on it.

use http::HeaderMap;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::fault::Fault;
use crate::fake::faults::{FailFirstCounts, Faults, MAX_DELAY, PREFIX};

/// The header that is passed on, not stripped.
const SESSION: &str = "x-chaos-session";

/// The fault the request's headers ask for; `None` when they ask for none.
///
/// # Errors
/// INVALID_ARGUMENT naming the header, as the fake answers it.
pub(crate) fn fault(
    headers: &HeaderMap,
    counts: &FailFirstCounts,
) -> Result<Option<Fault>, Status> {
    let Some(faults) = Faults::parse(headers)? else {
        return Ok(None);
    };
    let mut fault = Fault::new();
    for (name, value) in &faults.headers {
        fault.response_headers.set(name.clone(), value.clone());
    }
    for (name, value) in &faults.trailers {
        fault.response_trailers.set(name.clone(), value.clone());
    }
    let answer = match faults.failing(counts) {
        Some(true) => {
            let mut status = faults.status(Code::Unavailable);
            if let Some(ms) = &faults.pushback_ms
                && let Ok(value) = MetadataValue::try_from(ms.as_bytes())
            {
                status
                    .metadata_mut()
                    .insert("grpc-retry-pushback-ms", value);
            }
            Some(status)
        }
        // Past the first N, the call goes through: the status was for the failures.
        Some(false) => None,
        None if faults.hang => return Ok(Some(fault.delay(MAX_DELAY))),
        None => match (faults.status, faults.abort_after) {
            (Some(_), None) => Some(faults.status(Code::Unavailable)),
            (_, Some(n)) => {
                fault = fault.abort_after(n as u64, faults.status(Code::Unavailable));
                None
            }
            (None, None) => None,
        },
    };
    if let Some(status) = answer {
        // Answered at once, after the delay asked for.
        let fault = fault.answer(status);
        return Ok(Some(match faults.delay {
            Some(d) => fault.delay(d),
            None => fault,
        }));
    }
    Ok(Some(match faults.delay {
        Some(d) => fault.delay_response(d),
        None => fault,
    }))
}

/// Removes the fault headers (all but `x-chaos-session`) before the call goes upstream.
pub(crate) fn strip(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with(PREFIX) && k.as_str() != SESSION)
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}
