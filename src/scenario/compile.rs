//! The compiler from the parsed file (`model`) to [`Stub`]s: matchers, replies, and
//! errors that point at the offending span.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use prost_reflect::MessageDescriptor;
use toml::de::{DeTable, DeValue};
use toml::Spanned;
use tonic::{Code, Status};

use super::mesh::{self, MeshRule};
use super::message::{self, Compare, FirstMessageTable};
use super::model::{
    self, CodeSpec, DeadlineSpec, ExpectSpec, FileSpec, HealthSpec, MatchSpec, MessageSpec,
    ReplySpec, StubSpec,
};
use super::{json, HealthChange, ScenarioError};
use crate::fake::{
    any, deadline_absent, deadline_at_most, deadline_present, metadata, metadata_absent,
    metadata_bin, metadata_exists, method, service, try_metadata_regex, CallRequest, Match, Reason,
    Reply, Stub, StubBuilder, Times,
};
use crate::metadata::{decode_base64, encode_binary, header_name};
use crate::proxy::FaultRule;
use crate::schema::Schema;

/// Parses scenario text and compiles its stubs and health changes; `file` names it in
/// errors (a name ending in `.json` is read as JSON), and stub `i` seeds its `chance`
/// replies with `seed + i`.
pub(super) fn compile(schema: &Schema, file: &str, text: &str, seed: u64) -> Built<Compiled> {
    let source = if file.ends_with(".json") {
        let toml =
            json::to_toml(text).map_err(|e| ScenarioError::in_text(file, text, e.at, e.message))?;
        std::borrow::Cow::Owned(toml)
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    let error = |e: toml::de::Error| ScenarioError::in_text(file, text, e.span(), e.message());
    let spec: FileSpec = toml::from_str(&source).map_err(error)?;
    // The same text with every position kept, for the tables of message fields.
    let doc = DeTable::parse(&source).map_err(error)?;
    let (span, table) = (doc.span(), doc.into_inner());
    let ctx = Ctx {
        file,
        text,
        doc: Spanned::new(span, DeValue::Table(table)),
        schema,
    };
    let stubs = spec
        .stub
        .iter()
        .enumerate()
        .map(|(i, stub)| ctx.stub(stub, seed.wrapping_add(i as u64)))
        .collect::<Built<Vec<_>>>()?;
    let health = spec
        .health
        .iter()
        .map(|h| ctx.health(h))
        .collect::<Built<Vec<_>>>()?;
    let faults = spec
        .fault
        .iter()
        .map(|f| ctx.fault(f))
        .collect::<Built<Vec<_>>>()?;
    let mesh = spec
        .fault
        .iter()
        .enumerate()
        .map(|(i, f)| mesh::mesh_rule(f.get_ref(), i))
        .collect();
    Ok(Compiled {
        stubs,
        health,
        faults,
        mesh,
    })
}

/// What a file holds, compiled.
pub(super) struct Compiled {
    pub(super) stubs: Vec<Stub>,
    pub(super) health: Vec<HealthChange>,
    pub(super) faults: Vec<FaultRule>,
    pub(super) mesh: Vec<MeshRule>,
}

/// The file being read, for positions in errors, and the types its tables are read as.
pub(super) struct Ctx<'a> {
    file: &'a str,
    /// The file as written, for line and column.
    text: &'a str,
    /// The TOML read (the file itself, or JSON rewritten in place: the same offsets),
    /// parsed with its positions.
    doc: Spanned<DeValue<'a>>,
    schema: &'a Schema,
}

type Built<T> = Result<T, ScenarioError>;

/// A message is written one way at a time, with the same keys everywhere.
const ONE_MESSAGE_KEY: &str = "expected one of `message` (a table of fields), \
     `message_contains` (on the match side: the fields that must hold) or `message_base64` \
     (the raw protobuf bytes)";

impl Ctx<'_> {
    pub(super) fn error(
        &self,
        span: Option<Range<usize>>,
        message: impl fmt::Display,
    ) -> ScenarioError {
        ScenarioError::in_text(self.file, self.text, span, message)
    }

    pub(super) fn at<T>(&self, item: &Spanned<T>, message: impl fmt::Display) -> ScenarioError {
        self.error(Some(item.span()), message)
    }

    fn stub(&self, spec: &Spanned<StubSpec>, seed: u64) -> Built<Stub> {
        let s = spec.get_ref();
        let known = match &s.method {
            Some(path) => self.known_method(path, uses_tables(s))?,
            None => None,
        };
        let (request_type, response_type) = known.unzip();
        let mut builder: Option<StubBuilder> = None;
        let mut and = |m: Box<dyn Match>| {
            builder = Some(match builder.take() {
                None => Stub::given(Boxed(m)),
                Some(b) => b.and(Boxed(m)),
            });
        };
        if let Some(path) = &s.method {
            if !path.get_ref().starts_with('/') || path.get_ref().matches('/').count() != 2 {
                return Err(self.at(
                    path,
                    "expected a method path like \"/package.Service/Method\"",
                ));
            }
            and(Box::new(method(path.get_ref().clone())));
        }
        if let Some(name) = &s.service {
            and(Box::new(service(name.clone())));
        }
        for m in self.matchers(&s.matches, request_type)? {
            and(m);
        }
        let builder = builder.unwrap_or_else(|| Stub::given(any()));
        let mut stub = builder.respond_with(self.reply(&s.reply, response_type.as_ref(), seed)?);
        if let Some(name) = &s.name {
            stub = stub.named(name.clone());
        }
        if let Some(priority) = s.priority {
            stub = stub.with_priority(priority);
        }
        if let Some(n) = s.up_to {
            stub = stub.up_to_n_times(n);
        }
        if let Some(expect) = &s.expect {
            stub = stub.expect(self.times(expect)?);
        }
        Ok(stub)
    }

    /// The request and response types of a stub's method. A method no known proto
    /// defines is an error when the stub writes tables, or when its service is known (a
    /// typo, then); otherwise its messages are raw bytes.
    /// The method's request and response types; an error, naming the closest method,
    /// when `tables` needs them or the service is known but not the method.
    pub(super) fn known_method(
        &self,
        path: &Spanned<String>,
        tables: bool,
    ) -> Built<Option<(MessageDescriptor, MessageDescriptor)>> {
        if let Some(m) = self.schema.method(path.get_ref()) {
            return Ok(Some((m.input(), m.output())));
        }
        let service = path
            .get_ref()
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .map(|(service, _)| service);
        if tables || service.is_some_and(|svc| self.schema.has_service(svc)) {
            let closest = self
                .schema
                .closest_method(path.get_ref())
                .map(|c| format!("; the closest is {c:?}"))
                .unwrap_or_default();
            return Err(self.at(
                path,
                format!(
                    "no loaded proto defines the method {:?}{closest} (load its .proto with \
                     --proto, or write its messages as `message_base64`)",
                    path.get_ref()
                ),
            ));
        }
        Ok(None)
    }

    fn health(&self, spec: &Spanned<HealthSpec>) -> Built<HealthChange> {
        let h = spec.get_ref();
        let serving = match h.status.get_ref().as_str() {
            "SERVING" => true,
            "NOT_SERVING" => false,
            _ => return Err(self.at(&h.status, "expected \"SERVING\" or \"NOT_SERVING\"")),
        };
        if !h.service.is_empty() && !self.schema.has_service(&h.service) {
            return Err(self.at(
                spec,
                format!("no loaded proto defines the service {:?}", h.service),
            ));
        }
        Ok(HealthChange {
            service: h.service.clone(),
            serving,
            after: Duration::from_millis(h.after_ms.unwrap_or(0)),
        })
    }

    fn times(&self, spec: &Spanned<ExpectSpec>) -> Built<Times> {
        match spec.get_ref() {
            ExpectSpec::Exactly(n) => Ok(Times::from(*n)),
            ExpectSpec::Range(text) => parse_range(text).ok_or_else(|| {
                self.at(
                    spec,
                    "expected a call count (`expect = 2`) or a range: \"1..\", \"..=3\", \"2..=4\"",
                )
            }),
        }
    }

    pub(super) fn matchers(
        &self,
        m: &MatchSpec,
        request_type: Option<MessageDescriptor>,
    ) -> Built<Vec<Box<dyn Match>>> {
        let mut out: Vec<Box<dyn Match>> = Vec::new();
        for (k, v) in &m.metadata {
            out.push(Box::new(metadata(k.clone(), v.clone())));
        }
        for (k, pattern) in &m.metadata_regex {
            let matcher = try_metadata_regex(k.clone(), pattern.get_ref())
                .map_err(|e| self.at(pattern, format!("expected a regular expression: {e}")))?;
            out.push(Box::new(matcher));
        }
        for k in &m.metadata_exists {
            out.push(Box::new(metadata_exists(k.clone())));
        }
        for k in &m.metadata_absent {
            out.push(Box::new(metadata_absent(k.clone())));
        }
        for (k, value) in &m.metadata_bin {
            out.push(Box::new(metadata_bin(k.clone(), self.base64(value)?)));
        }
        if let Some(deadline) = &m.deadline {
            out.push(match deadline.get_ref() {
                DeadlineSpec::Word(w) if w == "present" => Box::new(deadline_present()),
                DeadlineSpec::Word(w) if w == "absent" => Box::new(deadline_absent()),
                DeadlineSpec::AtMost { at_most_ms } => {
                    Box::new(deadline_at_most(Duration::from_millis(*at_most_ms)))
                }
                DeadlineSpec::Word(_) => {
                    return Err(self.at(
                        deadline,
                        "expected \"present\", \"absent\" or { at_most_ms = N }",
                    ))
                }
            });
        }
        let tables = [
            (m.message.as_ref(), Compare::Equals),
            (m.message_contains.as_ref(), Compare::Contains),
        ];
        let given = tables.iter().filter(|(t, _)| t.is_some()).count()
            + usize::from(m.message_base64.is_some());
        if given > 1 {
            let span = m.message_base64.as_ref().map(Spanned::span);
            let span = span.or(m.message_contains.as_ref().map(Spanned::span));
            return Err(self.error(span, ONE_MESSAGE_KEY));
        }
        for (fields, compare) in tables {
            if let Some(fields) = fields {
                // known_method made sure a stub with tables has its types.
                let Some(desc) = &request_type else {
                    return Err(self.at(fields, "a table of message fields needs a `method`"));
                };
                let table = self.table(fields, desc)?;
                out.push(Box::new(FirstMessageTable { table, compare }));
            }
        }
        if let Some(raw) = &m.message_base64 {
            out.push(Box::new(FirstMessageBytes {
                expected: self.base64(raw)?.into(),
            }));
        }
        Ok(out)
    }

    pub(super) fn base64(&self, value: &Spanned<String>) -> Built<Vec<u8>> {
        decode_base64(value.get_ref().as_bytes())
            .ok_or_else(|| self.at(value, "expected base64 (padded or unpadded)"))
    }

    fn table(
        &self,
        fields: &Spanned<toml::Value>,
        desc: &MessageDescriptor,
    ) -> Built<message::Table> {
        message::read(&self.doc, fields.span(), desc)
            .map_err(|e| self.error(Some(e.span), e.message))
    }

    fn encode(&self, fields: &Spanned<toml::Value>, desc: &MessageDescriptor) -> Built<Bytes> {
        let table = self.table(fields, desc)?;
        Ok(prost::Message::encode_to_vec(&table.message).into())
    }

    fn reply(
        &self,
        spec: &Spanned<ReplySpec>,
        response_type: Option<&MessageDescriptor>,
        seed: u64,
    ) -> Built<Reply> {
        let r = spec.get_ref();
        if let Some(seq) = &r.sequence {
            if !is_only(r, Only::Sequence) {
                return Err(self.at(
                    spec,
                    "a reply with `sequence` takes no other keys: put them in its entries",
                ));
            }
            let replies = seq
                .iter()
                .map(|r| self.reply(r, response_type, seed))
                .collect::<Built<Vec<_>>>()?;
            return Ok(Reply::sequence(replies));
        }
        if let Some(chance) = &r.chance {
            if !is_only(r, Only::Chance) {
                return Err(self.at(
                    spec,
                    "a reply with `chance` takes no other keys: put them in `hit` and `miss`",
                ));
            }
            let c = chance.get_ref();
            if !(0.0..=1.0).contains(&c.probability) {
                return Err(self.at(chance, "expected a probability from 0 to 1"));
            }
            let hit = self.reply(&c.hit, response_type, seed)?;
            let miss = self.reply(&c.miss, response_type, seed)?;
            return Ok(Reply::chance(seed, c.probability, hit, miss));
        }
        let mut reply = Reply::stream();
        // `message = {...}` or `message_base64 = "..."` is shorthand for one entry of
        // `messages`, listed first.
        if let (Some(_), Some(raw)) = (&r.message, &r.message_base64) {
            return Err(self.at(raw, ONE_MESSAGE_KEY));
        }
        let shorthand = (r.message.is_some() || r.message_base64.is_some()).then(|| {
            let spec = MessageSpec {
                delay_ms: None,
                message: r.message.clone(),
                message_base64: r.message_base64.clone(),
            };
            let span = r.message.as_ref().map(Spanned::span);
            (span.or(r.message_base64.as_ref().map(Spanned::span)), spec)
        });
        let listed = r
            .messages
            .iter()
            .map(|m| (Some(m.span()), m.get_ref().clone()));
        for (at, m) in shorthand.into_iter().chain(listed) {
            let bytes = match (&m.message, &m.message_base64) {
                (Some(fields), None) => {
                    let Some(desc) = response_type else {
                        return Err(self.at(fields, "a table of message fields needs a `method`"));
                    };
                    self.encode(fields, desc)?
                }
                (None, Some(raw)) => self.base64(raw)?.into(),
                _ => return Err(self.error(at, ONE_MESSAGE_KEY)),
            };
            reply = reply.then_bytes_after(Duration::from_millis(m.delay_ms.unwrap_or(0)), bytes);
        }
        let status = r.status.as_ref().map(|s| self.status(s)).transpose()?;
        match (r.hang, &r.reset, r.abort_after) {
            (Some(true), Some(reset), _) => {
                return Err(self.at(reset, "a reply cannot both hang and reset"))
            }
            (Some(true), None, None) if status.is_none() => reply = reply.then_hang(),
            (Some(true), ..) => {
                return Err(self.at(spec, "`hang` takes no `status` or `abort_after`"))
            }
            (_, Some(reset), None) if status.is_none() => {
                reply = reply.then_reset(self.reason(reset)?)
            }
            (_, Some(reset), _) => {
                return Err(self.at(reset, "`reset` takes no `status` or `abort_after`"))
            }
            (_, None, Some(n)) => {
                reply = reply.abort_after(n, status.unwrap_or_else(|| Status::unavailable("")))
            }
            (_, None, None) => {
                if let Some(status) = status {
                    reply = reply.then_status(status);
                }
            }
        }
        if let Some(ms) = r.delay_ms {
            reply = reply.delay(Duration::from_millis(ms));
        }
        if let Some(ms) = r.end_after_ms {
            reply = reply.end_after(Duration::from_millis(ms));
        }
        if r.wait_for_half_close == Some(false) {
            reply = reply.without_waiting_for_half_close();
        }
        for (k, v) in &r.headers {
            self.key(spec, k, false)?;
            reply = reply.header(k, v);
        }
        for (k, v) in &r.headers_bin {
            self.key(spec, k, true)?;
            reply = reply.header_bin(k, self.base64(v)?);
        }
        for (k, v) in &r.trailers {
            self.key(spec, k, false)?;
            reply = reply.trailer(k, v);
        }
        for (k, v) in &r.trailers_bin {
            self.key(spec, k, true)?;
            reply = reply.trailer_bin(k, self.base64(v)?);
        }
        Ok(reply)
    }

    fn key(&self, spec: &Spanned<ReplySpec>, key: &str, binary: bool) -> Built<()> {
        header_name(key, binary)
            .map(drop)
            .map_err(|e| self.at(spec, format!("metadata {e}")))
    }

    pub(super) fn status(&self, spec: &Spanned<model::StatusSpec>) -> Built<Status> {
        let s = spec.get_ref();
        let code = match &s.code {
            CodeSpec::Number(n) if (0..=16).contains(n) => Code::from_i32(*n as i32),
            CodeSpec::Name(name) => code_by_name(name).ok_or_else(|| {
                self.at(
                    spec,
                    format!("expected a status code name like \"UNAVAILABLE\", found {name:?}"),
                )
            })?,
            CodeSpec::Number(n) => {
                return Err(self.at(
                    spec,
                    format!("expected a status code from 0 to 16, found {n}"),
                ))
            }
        };
        Ok(Status::new(code, s.message.clone()))
    }

    pub(super) fn reason(&self, name: &Spanned<String>) -> Built<Reason> {
        // The codes a stream reset can mean something by; the names are Reason's own.
        const ALLOWED: [Reason; 8] = [
            Reason::CANCEL,
            Reason::REFUSED_STREAM,
            Reason::ENHANCE_YOUR_CALM,
            Reason::INTERNAL_ERROR,
            Reason::NO_ERROR,
            Reason::PROTOCOL_ERROR,
            Reason::FLOW_CONTROL_ERROR,
            Reason::INADEQUATE_SECURITY,
        ];
        Reason::from_name(name.get_ref())
            .filter(|r| ALLOWED.contains(r))
            .ok_or_else(|| {
                self.at(
                    name,
                    "expected an HTTP/2 error code: CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM, INTERNAL_ERROR, \
                     NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR or INADEQUATE_SECURITY",
                )
            })
    }
}

/// Which key must stand alone in its reply table.
#[derive(PartialEq)]
enum Only {
    Sequence,
    Chance,
}

/// Whether `r` holds nothing but its `sequence` (or its `chance`).
fn is_only(r: &ReplySpec, key: Only) -> bool {
    (r.sequence.is_some() == (key == Only::Sequence))
        && (r.chance.is_some() == (key == Only::Chance))
        && r.delay_ms.is_none()
        && r.headers.is_empty()
        && r.headers_bin.is_empty()
        && r.trailers.is_empty()
        && r.trailers_bin.is_empty()
        && r.message.is_none()
        && r.message_base64.is_none()
        && r.messages.is_empty()
        && r.status.is_none()
        && r.abort_after.is_none()
        && r.hang.is_none()
        && r.reset.is_none()
        && r.end_after_ms.is_none()
        && r.wait_for_half_close.is_none()
}

/// The canonical status code names (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …).
pub(super) fn code_by_name(name: &str) -> Option<Code> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| Code::from_i32(i as i32))
}

/// Matches when the first request message is exactly these bytes.
struct FirstMessageBytes {
    expected: Bytes,
}

impl Match for FirstMessageBytes {
    fn matches(&self, request: &CallRequest) -> bool {
        request.first_message.as_ref() == Some(&self.expected)
    }
    fn describe(&self) -> String {
        format!("first message == bytes {}", encode_binary(&self.expected))
    }
    fn needs_message(&self) -> bool {
        true
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        Some(match &request.first_message {
            None => crate::fake::NO_MESSAGE.to_string(),
            Some(bytes) => format!("received message_base64 = {:?}", encode_binary(bytes)),
        })
    }
}

/// Whether a stub writes any message as a table of fields.
fn uses_tables(s: &StubSpec) -> bool {
    fn reply(r: &ReplySpec) -> bool {
        r.message.is_some()
            || r.messages.iter().any(|m| m.get_ref().message.is_some())
            || r.sequence.iter().flatten().any(|r| reply(r.get_ref()))
            || r.chance.as_ref().is_some_and(|c| {
                reply(c.get_ref().hit.get_ref()) || reply(c.get_ref().miss.get_ref())
            })
    }
    s.matches.message.is_some() || s.matches.message_contains.is_some() || reply(s.reply.get_ref())
}

/// `"1.."`, `"..=3"`, `"..3"`, `"2..4"`, `"2..=4"`, or `"2"`.
fn parse_range(text: &str) -> Option<Times> {
    let text = text.trim();
    let Some((low, high)) = text.split_once("..") else {
        return text.parse::<u64>().ok().map(Times::from);
    };
    let low: u64 = if low.is_empty() { 0 } else { low.parse().ok()? };
    let (high, inclusive) = match high.strip_prefix('=') {
        Some(h) => (h, true),
        None => (high, false),
    };
    if high.is_empty() {
        return (!inclusive).then(|| Times::from(low..));
    }
    let high: u64 = high.parse().ok()?;
    let high = if inclusive {
        high
    } else {
        high.checked_sub(1)?
    };
    (low <= high).then(|| Times::from(low..=high))
}

/// A matcher chosen at run time, as the stub and rule builders take it.
pub(super) struct Boxed(pub(super) Box<dyn Match>);

impl Match for Boxed {
    fn matches(&self, request: &CallRequest) -> bool {
        self.0.matches(request)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn needs_message(&self) -> bool {
        self.0.needs_message()
    }
    fn received(&self, request: &CallRequest) -> Option<String> {
        self.0.received(request)
    }
    fn only_method(&self) -> Option<&str> {
        self.0.only_method()
    }
}
