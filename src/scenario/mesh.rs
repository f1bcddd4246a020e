//! [`MeshRule`]: a `[[fault]]` rule as a service mesh can hold it (a delay or an abort,
//! before any traffic, matched on the path and headers, at a percentage), and what of
//! the rule a mesh cannot express. `grpc-chaos export istio` and `export envoy` write
//! these out.

use std::time::Duration;

use tonic::Code;

use super::model::{CodeSpec, DeadlineSpec, FaultSpec, HeaderEditSpec};

/// Which request paths a mesh rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathMatch {
    /// One method: `/package.Service/Method`.
    Exact(String),
    /// Every method of a service: `/package.Service/`.
    Prefix(String),
    /// Every path.
    Any,
}

/// How a mesh rule matches one request header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderMatch {
    /// The value equals this.
    Exact(String),
    /// The value matches this regular expression.
    Regex(String),
    /// The header is present.
    Present,
    /// The header is absent.
    Absent,
}

/// A `[[fault]]` rule as a mesh can hold it.
///
/// ```
/// let text = "[[fault]]\nmethod = \"/pb.Greeter/SayHello\"\npercentage = 30\ndelay_ms = 200\nabort_after = 2\n";
/// let s = grpc_chaos::scenario::Scenario::parse("f.toml", text, 0).unwrap();
/// let rule = &s.mesh_rules()[0];
/// assert_eq!(rule.delay, Some(std::time::Duration::from_millis(200)));
/// assert_eq!(rule.unsupported, ["an abort after 2 response messages (meshes abort before any traffic)"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MeshRule {
    /// The rule's name, or `fault-N` from its position.
    pub name: String,
    /// The paths it applies to.
    pub path: PathMatch,
    /// The request headers it matches, all of them.
    pub headers: Vec<(String, HeaderMatch)>,
    /// The share of matching calls, 0 to 100.
    pub percentage: f64,
    /// A delay before forwarding.
    pub delay: Option<Duration>,
    /// An abort with this status, before forwarding.
    pub abort: Option<Code>,
    /// Request headers set, and removed.
    pub request_headers: (Vec<(String, String)>, Vec<String>),
    /// Response headers set, and removed.
    pub response_headers: (Vec<(String, String)>, Vec<String>),
    /// Each part of the rule a mesh cannot express, with why.
    pub unsupported: Vec<String>,
}

/// The status code a `status = { code = … }` names (already checked by the compiler).
fn code_of(spec: &CodeSpec) -> Code {
    match spec {
        CodeSpec::Number(n) => Code::from_i32(*n as i32),
        CodeSpec::Name(name) => super::compile::code_by_name(name).unwrap_or(Code::Unknown),
    }
}

fn edits(
    spec: &HeaderEditSpec,
    side: &str,
    unsupported: &mut Vec<String>,
) -> (Vec<(String, String)>, Vec<String>) {
    if !spec.set_bin.is_empty() {
        unsupported.push(format!("binary {side} metadata (`set_bin`)"));
    }
    let set = spec
        .set
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (set, spec.remove.clone())
}

/// The mesh's view of the rule at `index` (already compiled, so its values are valid).
pub(super) fn mesh_rule(spec: &FaultSpec, index: usize) -> MeshRule {
    let mut unsupported = Vec::new();
    let path = match (&spec.method, &spec.service) {
        (Some(m), _) => PathMatch::Exact(m.get_ref().clone()),
        (None, Some(s)) => PathMatch::Prefix(format!("/{s}/")),
        (None, None) => PathMatch::Any,
    };
    let m = &spec.matches;
    let mut headers: Vec<(String, HeaderMatch)> = Vec::new();
    headers.extend(
        m.metadata
            .iter()
            .map(|(k, v)| (k.clone(), HeaderMatch::Exact(v.clone()))),
    );
    headers.extend(
        m.metadata_regex
            .iter()
            .map(|(k, v)| (k.clone(), HeaderMatch::Regex(v.get_ref().clone()))),
    );
    headers.extend(
        m.metadata_exists
            .iter()
            .map(|k| (k.clone(), HeaderMatch::Present)),
    );
    headers.extend(
        m.metadata_absent
            .iter()
            .map(|k| (k.clone(), HeaderMatch::Absent)),
    );
    if !m.metadata_bin.is_empty() {
        unsupported.push("a match on binary metadata (`metadata_bin`)".to_string());
    }
    if let Some(d) = &m.deadline {
        let what = match d.get_ref() {
            DeadlineSpec::AtMost { at_most_ms } => {
                format!("a match on the deadline (at most {at_most_ms} ms)")
            }
            DeadlineSpec::Word(w) => format!("a match on the deadline ({w})"),
        };
        unsupported.push(what);
    }
    let abort = match (spec.abort_after, &spec.status) {
        (None, Some(status)) | (Some(0), Some(status)) => Some(code_of(&status.get_ref().code)),
        (Some(0), None) => Some(Code::Unavailable),
        (Some(n), _) => {
            unsupported.push(format!(
                "an abort after {n} response messages (meshes abort before any traffic)"
            ));
            None
        }
        (None, None) => None,
    };
    if let Some(status) = &spec.status
        && !status.get_ref().message.is_empty()
        && abort.is_some()
    {
        unsupported.push("the status message (a mesh abort sends the code alone)".to_string());
    }
    if let Some(ms) = spec.response_delay_ms {
        unsupported.push(format!("a {ms} ms delay before the response headers"));
    }
    if spec.message_delay.is_some() {
        unsupported.push("a per-message delay".to_string());
    }
    if let Some(n) = spec.reset_after {
        unsupported.push(format!("a stream reset after {n} response messages"));
    }
    if spec.grpc_timeout.is_some() {
        unsupported.push("a change to the grpc-timeout sent upstream".to_string());
    }
    if !spec.response_trailers.set.is_empty()
        || !spec.response_trailers.set_bin.is_empty()
        || !spec.response_trailers.remove.is_empty()
    {
        unsupported.push("edits to the response trailers".to_string());
    }
    if spec.drop_trailers == Some(true) {
        unsupported.push("dropped trailers".to_string());
    }
    if let Some(rate) = spec.bandwidth_bytes_per_second {
        unsupported.push(format!(
            "a {rate} B/s bandwidth limit (Envoy's response_rate_limit could hold it; not exported yet)"
        ));
    }
    if spec.slice_bytes.is_some() {
        unsupported.push("DATA frames sliced".to_string());
    }
    if spec.drop_connection == Some(true) {
        unsupported.push("a dropped connection".to_string());
    }
    let request_headers = edits(&spec.request_headers, "request", &mut unsupported);
    let response_headers = edits(&spec.response_headers, "response", &mut unsupported);
    MeshRule {
        name: spec
            .name
            .clone()
            .unwrap_or_else(|| format!("fault-{}", index + 1)),
        path,
        headers,
        percentage: spec.percentage.as_ref().map_or(100.0, |p| *p.get_ref()),
        delay: spec.delay_ms.map(Duration::from_millis),
        abort,
        request_headers,
        response_headers,
        unsupported,
    }
}
