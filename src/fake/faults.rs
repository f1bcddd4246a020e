//! Faults chosen by the client through request metadata (`x-chaos-*`), the way Envoy's
//! `x-envoy-fault-*` headers work. Turned on with
//! [`FakeServerBuilder::fault_headers`](super::FakeServerBuilder::fault_headers), and by
//! `grpc-chaos serve`. The header names are a public contract:
//!
//! | header | effect |
//! |---|---|
//! | `x-chaos-delay-ms: N` | wait N ms before the first response |
//! | `x-chaos-status: CODE` (0–16), `x-chaos-message: TEXT` | end with that status, at once (after any delay), with no message |
//! | `x-chaos-abort-after: N` | send N messages, then end with `x-chaos-status` (default 14, UNAVAILABLE) |
//! | `x-chaos-header: key=value`, `x-chaos-trailer: key=value` | add initial / trailing metadata (repeatable; a `-bin` key takes base64) |
//! | `x-chaos-hang: true` | never respond: the call ends when the client cancels or its deadline passes |
//! | `x-chaos-fail-first: N` + `x-chaos-key: K` | the first N calls carrying key K fail with `x-chaos-status` (default UNAVAILABLE); later ones succeed |
//! | `x-chaos-pushback-ms: M` | with `x-chaos-fail-first`, the failures carry the trailer `grpc-retry-pushback-ms: M` (sent verbatim, so clients' handling of negative or garbage values can be tested too) |
//! | `x-chaos-session: ID` | no fault: it names the caller's session of `grpc-chaos serve`'s admin API, so that stubs mounted in that session answer it |
//!
//! A request with `grpc-timeout` gets `x-chaos-grpc-timeout: RAW` in its initial metadata.
//! An invalid value, a repeated single-valued header, or an unknown `x-chaos-` name gets
//! INVALID_ARGUMENT naming the header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::{Code, Status};

use super::script::{Ending, Script};
use crate::metadata::{decode_base64, encode_binary, header_name};

/// What every fault header's name starts with.
pub(crate) const PREFIX: &str = "x-chaos-";
/// The longest delay a header may ask for, and what `x-chaos-hang` waits in the proxy.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(MAX_DELAY_MS);
/// The longest delay a header may ask for (a day): a typo should not park a call forever.
const MAX_DELAY_MS: u64 = 86_400_000;
/// Where the raw `grpc-timeout` is echoed.
pub(crate) const TIMEOUT_ECHO: &str = "x-chaos-grpc-timeout";

/// The faults one request asks for: the one reading of the header grammar, which the
/// fake applies to its reply and the proxy turns into its own fault.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) delay: Option<Duration>,
    pub(crate) status: Option<Code>,
    message: Option<String>,
    pub(crate) abort_after: Option<usize>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) trailers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) hang: bool,
    fail_first: Option<u64>,
    key: Option<String>,
    pub(crate) pushback_ms: Option<HeaderValue>,
}

/// Per-key call counts for `x-chaos-fail-first`, shared by every call of a server.
#[derive(Debug, Default)]
pub(crate) struct FailFirstCounts(Mutex<HashMap<String, u64>>);

impl FailFirstCounts {
    /// Counts a call carrying `key` and returns how many came before it.
    fn count(&self, key: &str) -> u64 {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let seen = counts.entry(key.to_string()).or_insert(0);
        *seen += 1;
        *seen - 1
    }
}

fn invalid(header: &str, value: &[u8], expected: &str) -> Status {
    Status::invalid_argument(format!(
        "invalid {header}: {:?} (expected {expected})",
        String::from_utf8_lossy(value)
    ))
}

fn text<'a>(header: &str, value: &'a HeaderValue) -> Result<&'a str, Status> {
    value
        .to_str()
        .map_err(|_| invalid(header, value.as_bytes(), "printable ASCII"))
}

fn number<T: std::str::FromStr>(
    header: &str,
    value: &HeaderValue,
    expected: &str,
) -> Result<T, Status> {
    let s = text(header, value)?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(header, value.as_bytes(), expected));
    }
    s.parse()
        .map_err(|_| invalid(header, value.as_bytes(), expected))
}

/// Parses `key=value` into metadata to add; `-bin` values are base64.
fn entry(header: &str, value: &HeaderValue) -> Result<(HeaderName, HeaderValue), Status> {
    let s = text(header, value)?;
    let expected = "key=value with a lowercase [0-9a-z_.-] key; base64 for -bin keys";
    let (key, val) = s
        .split_once('=')
        .ok_or_else(|| invalid(header, value.as_bytes(), expected))?;
    let name = header_name(key, key.ends_with("-bin"))
        .ok()
        .filter(|_| key == key.to_ascii_lowercase())
        .ok_or_else(|| invalid(header, value.as_bytes(), expected))?;
    // A `-bin` value goes out unpadded, as the spec says senders should, in whichever
    // form it was given.
    let val = match key.ends_with("-bin") {
        true => match decode_base64(val.as_bytes()) {
            Some(bytes) => encode_binary(&bytes),
            None => return Err(invalid(header, value.as_bytes(), expected)),
        },
        false => val.to_string(),
    };
    let val =
        HeaderValue::try_from(val).map_err(|_| invalid(header, value.as_bytes(), expected))?;
    Ok((name, val))
}

impl Faults {
    /// Reads every `x-chaos-*` header; `None` when there are none.
    pub(crate) fn parse(headers: &HeaderMap) -> Result<Option<Self>, Status> {
        let mut faults = Faults::default();
        let mut any = false;
        for name in headers.keys() {
            let header = name.as_str();
            if !header.starts_with(PREFIX) || header == TIMEOUT_ECHO {
                continue;
            }
            any = true;
            let values: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
            let repeatable = matches!(header, "x-chaos-header" | "x-chaos-trailer");
            if !repeatable && values.len() > 1 {
                return Err(Status::invalid_argument(format!(
                    "{header} is given {} times; it takes one value",
                    values.len()
                )));
            }
            let value = values[0];
            match header {
                "x-chaos-delay-ms" => {
                    let ms: u64 = number(header, value, "milliseconds, 0 to 86400000")?;
                    if ms > MAX_DELAY_MS {
                        return Err(invalid(header, value.as_bytes(), "milliseconds, 0 to 86400000"));
                    }
                    faults.delay = Some(Duration::from_millis(ms));
                }
                "x-chaos-status" => {
                    let code: i32 = number(header, value, "a status code from 0 to 16")?;
                    if !(0..=16).contains(&code) {
                        return Err(invalid(header, value.as_bytes(), "a status code from 0 to 16"));
                    }
                    faults.status = Some(Code::from_i32(code));
                }
                "x-chaos-message" => faults.message = Some(text(header, value)?.to_string()),
                "x-chaos-abort-after" => faults.abort_after = Some(number(header, value, "a message count")?),
                "x-chaos-header" => {
                    for v in values {
                        faults.headers.push(entry(header, v)?);
                    }
                }
                "x-chaos-trailer" => {
                    for v in values {
                        faults.trailers.push(entry(header, v)?);
                    }
                }
                "x-chaos-hang" => {
                    faults.hang = match text(header, value)? {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(header, value.as_bytes(), "true or false")),
                    }
                }
                "x-chaos-fail-first" => faults.fail_first = Some(number(header, value, "a call count")?),
                "x-chaos-key" => {
                    let key = text(header, value)?;
                    if key.is_empty() {
                        return Err(invalid(header, value.as_bytes(), "a non-empty key"));
                    }
                    faults.key = Some(key.to_string());
                }
                "x-chaos-pushback-ms" => {
                    text(header, value)?;
                    faults.pushback_ms = Some(value.clone());
                }
                // Not a fault: it names the caller's admin session, which its stubs match on.
                "x-chaos-session" => {}
                other => {
                    return Err(Status::invalid_argument(format!(
                        "unknown fault header {other}; known: x-chaos-delay-ms, x-chaos-status, x-chaos-message, \
                         x-chaos-abort-after, x-chaos-header, x-chaos-trailer, x-chaos-hang, x-chaos-fail-first, \
                         x-chaos-key, x-chaos-pushback-ms (and x-chaos-session, which is no fault)"
                    )))
                }
            }
        }
        if faults.fail_first.is_some() != faults.key.is_some() {
            return Err(Status::invalid_argument(
                "x-chaos-fail-first and x-chaos-key go together",
            ));
        }
        if faults.pushback_ms.is_some() && faults.fail_first.is_none() {
            return Err(Status::invalid_argument(
                "x-chaos-pushback-ms needs x-chaos-fail-first and x-chaos-key",
            ));
        }
        Ok(any.then_some(faults))
    }

    /// The status asked for, or `default`, with the message asked for.
    pub(crate) fn status(&self, default: Code) -> Status {
        Status::new(
            self.status.unwrap_or(default),
            self.message.clone().unwrap_or_default(),
        )
    }

    /// With `x-chaos-fail-first`: counts this call under its key and says whether it is
    /// one of the first N, which fail; `None` without it.
    pub(crate) fn failing(&self, counts: &FailFirstCounts) -> Option<bool> {
        match (&self.key, self.fail_first) {
            (Some(key), Some(n)) => Some(counts.count(key) < n),
            _ => None,
        }
    }

    /// Changes the script the stub chose as the headers ask.
    pub(crate) fn apply(self, mut script: Script, counts: &FailFirstCounts) -> Script {
        match self.failing(counts) {
            Some(true) => {
                script = Script::from_status(self.status(Code::Unavailable));
                if let Some(ms) = &self.pushback_ms {
                    script.trailers.append("grpc-retry-pushback-ms", ms.clone());
                }
            }
            // A call past the first N succeeds: x-chaos-status was for the failures.
            Some(false) => {}
            None if self.hang => script = Script::hang(),
            None => match (self.status, self.abort_after) {
                (Some(_), None) => script = Script::from_status(self.status(Code::Unavailable)),
                (_, Some(n)) => {
                    script.messages.truncate(n);
                    script.max_messages = Some(n);
                    script.ending = Ending::Status(self.status(Code::Unavailable));
                    script.wait_for_half_close = false;
                }
                (None, None) => {}
            },
        }
        if let Some(delay) = self.delay {
            script.header_delay = script.header_delay.saturating_add(delay);
        }
        for (name, value) in self.headers {
            script.headers.append(name, value);
        }
        for (name, value) in self.trailers {
            script.trailers.append(name, value);
        }
        script
    }
}
