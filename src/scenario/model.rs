//! The scenario file format, as serde reads it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole file: a list of stubs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSpec {
    #[serde(default)]
    pub(crate) stub: Vec<Spanned<StubSpec>>,
    #[serde(default)]
    pub(crate) health: Vec<Spanned<HealthSpec>>,
    #[serde(default)]
    pub(crate) fault: Vec<Spanned<FaultSpec>>,
}

/// One `[[fault]]`: a rule of `grpc-chaos proxy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    pub(crate) name: Option<String>,
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) service: Option<String>,
    #[serde(default, rename = "match")]
    pub(crate) matches: MatchSpec,
    pub(crate) percentage: Option<Spanned<f64>>,
    pub(crate) delay_ms: Option<u64>,
    pub(crate) response_delay_ms: Option<u64>,
    pub(crate) message_delay: Option<Spanned<MessageDelaySpec>>,
    pub(crate) status: Option<Spanned<StatusSpec>>,
    pub(crate) abort_after: Option<u64>,
    pub(crate) reset_after: Option<u64>,
    pub(crate) reset: Option<Spanned<String>>,
    pub(crate) grpc_timeout: Option<Spanned<TimeoutSpec>>,
    #[serde(default)]
    pub(crate) request_headers: HeaderEditSpec,
    #[serde(default)]
    pub(crate) response_headers: HeaderEditSpec,
    #[serde(default)]
    pub(crate) response_trailers: HeaderEditSpec,
    pub(crate) drop_trailers: Option<bool>,
    pub(crate) bandwidth_bytes_per_second: Option<u64>,
    pub(crate) slice_bytes: Option<usize>,
    pub(crate) drop_connection: Option<bool>,
}

/// `message_delay = { ms = 50 }` (every response message), `{ ms = 50, nth = 3 }`, and
/// `direction = "request"` for the client's messages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageDelaySpec {
    pub(crate) ms: u64,
    pub(crate) nth: Option<u64>,
    pub(crate) direction: Option<Spanned<String>>,
}

/// `grpc_timeout = "strip"`, `{ at_most_ms = N }` or `{ factor = F }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum TimeoutSpec {
    Word(String),
    AtMost { at_most_ms: u64 },
    Factor { factor: f64 },
}

/// `{ set = { k = "v" }, set_bin = { "k-bin" = "base64" }, remove = ["k"] }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderEditSpec {
    #[serde(default)]
    pub(crate) set: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) set_bin: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(crate) remove: Vec<String>,
}

/// One `[[health]]`: a service's health status, from start-up or from `after_ms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthSpec {
    #[serde(default)]
    pub(crate) service: String,
    pub(crate) status: Spanned<String>,
    pub(crate) after_ms: Option<u64>,
}

/// One `[[stub]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StubSpec {
    pub(crate) name: Option<String>,
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) service: Option<String>,
    pub(crate) priority: Option<u8>,
    pub(crate) up_to: Option<u64>,
    /// How many calls the stub expects: checked by `grpc-chaos verify` and the admin API.
    pub(crate) expect: Option<Spanned<ExpectSpec>>,
    #[serde(default, rename = "match")]
    pub(crate) matches: MatchSpec,
    pub(crate) reply: Spanned<ReplySpec>,
}

/// `[stub.match]`: every condition must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSpec {
    #[serde(default)]
    pub(crate) metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) metadata_regex: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(crate) metadata_exists: Vec<String>,
    #[serde(default)]
    pub(crate) metadata_absent: Vec<String>,
    #[serde(default)]
    pub(crate) metadata_bin: BTreeMap<String, Spanned<String>>,
    pub(crate) deadline: Option<Spanned<DeadlineSpec>>,
    /// The first request message, equal to this table of its fields.
    pub(crate) message: Option<Spanned<toml::Value>>,
    /// The first request message, holding the fields this table lists (the others may
    /// be anything).
    pub(crate) message_contains: Option<Spanned<toml::Value>>,
    /// The first request message, as raw protobuf bytes in base64 (any method).
    pub(crate) message_base64: Option<Spanned<String>>,
}

/// `expect = 2`, or a range as text: `expect = "1.."`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ExpectSpec {
    Exactly(u64),
    Range(String),
}

/// `deadline = "present"`, `"absent"`, or `{ at_most_ms = N }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DeadlineSpec {
    Word(String),
    AtMost { at_most_ms: u64 },
}

/// `[stub.reply]`, or one entry of a `sequence`, or a `chance` branch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplySpec {
    pub(crate) delay_ms: Option<u64>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) headers_bin: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(crate) trailers: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) trailers_bin: BTreeMap<String, Spanned<String>>,
    /// One response message, as a table of its fields: shorthand for `messages`.
    pub(crate) message: Option<Spanned<toml::Value>>,
    /// One response message as raw protobuf bytes in base64: shorthand for `messages`.
    pub(crate) message_base64: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) messages: Vec<Spanned<MessageSpec>>,
    pub(crate) status: Option<Spanned<StatusSpec>>,
    pub(crate) abort_after: Option<usize>,
    pub(crate) hang: Option<bool>,
    pub(crate) reset: Option<Spanned<String>>,
    pub(crate) end_after_ms: Option<u64>,
    pub(crate) wait_for_half_close: Option<bool>,
    pub(crate) sequence: Option<Vec<Spanned<ReplySpec>>>,
    pub(crate) chance: Option<Spanned<ChanceSpec>>,
}

/// One message of `messages = [...]`: the same two keys as everywhere else, `message`
/// (a table of fields) or `message_base64` (raw bytes). `fields` and `base64`, their
/// first spellings, are still read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageSpec {
    pub(crate) delay_ms: Option<u64>,
    #[serde(alias = "fields")]
    pub(crate) message: Option<Spanned<toml::Value>>,
    #[serde(alias = "base64")]
    pub(crate) message_base64: Option<Spanned<String>>,
}

/// `status = { code = 14 | "UNAVAILABLE", message = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusSpec {
    pub(crate) code: CodeSpec,
    #[serde(default)]
    pub(crate) message: String,
}

/// A status code by number or by name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum CodeSpec {
    Number(i64),
    Name(String),
}

/// `chance = { probability = 0.3, hit = {...}, miss = {...} }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChanceSpec {
    pub(crate) probability: f64,
    pub(crate) hit: Box<Spanned<ReplySpec>>,
    pub(crate) miss: Box<Spanned<ReplySpec>>,
}
