//! Scenario files: stubs written in TOML, for `grpc-chaos serve --scenario FILE`.
//!
//! Anything a [`Stub`] can express can be written in a file. Messages of the built-in
//! protos are TOML tables of their fields (`{ message = "Hello" }`); any other method
//! takes raw bytes in base64. A mistake is reported as `file:line:col: what was expected`.
//!
//! ```toml
//! [[stub]]
//! name = "slow greeter"
//! method = "/pb.Greeter/SayHello"
//! priority = 1                      # lower wins; built-in services use 200
//! up_to = 3                         # answers at most 3 calls
//!
//! [stub.match]
//! metadata = { "x-tenant" = "blue" }
//! metadata_regex = { authorization = "^Bearer .+$" }
//! metadata_exists = ["x-trace-id"]
//! metadata_absent = ["x-debug"]
//! metadata_bin = { "trace-bin" = "AAEC" }   # base64, padded or not
//! deadline = { at_most_ms = 5000 }          # or "present" / "absent"
//! message = { name = "Ada" }                # the first request message equals this
//!
//! [stub.reply]
//! delay_ms = 2000                           # before the response headers
//! headers = { "x-region" = "eu" }
//! headers_bin = { "blob-bin" = "AAEC" }
//! message = { message = "Hello, Ada!" }     # or messages = [{ delay_ms = 10, fields = {...} }, { base64 = "..." }]
//! trailers = { "x-cost" = "3" }
//! status = { code = "UNAVAILABLE", message = "later" }   # the ending; OK when left out
//! # abort_after = 2, hang = true, reset = "REFUSED_STREAM", end_after_ms = 50,
//! # wait_for_half_close = false, sequence = [{...}, {...}],
//! # chance = { probability = 0.3, hit = {...}, miss = {...} }   (seeded by --seed)
//! ```
//!
//! ```
//! use grpc_chaos::scenario::Scenario;
//! let text = r#"
//! [[stub]]
//! method = "/pb.Greeter/SayHello"
//! reply = { message = { message = "Hi" }, delay_ms = 100 }
//! "#;
//! let scenario = Scenario::parse("inline.toml", text, 7).unwrap();
//! assert_eq!(scenario.len(), 1);
//! let err = Scenario::parse("bad.toml", "[[stub]]\nmethod = 5\n", 7).unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml:2:10: "), "{err}");
//! ```

mod model;
mod types;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use toml::Spanned;
use tonic::{Code, Status};

use crate::fake::{
    any, deadline_absent, deadline_at_most, deadline_present, metadata, metadata_absent,
    metadata_bin, metadata_exists, metadata_regex, method, service, CallRequest, FakeServer, Match,
    Reason, Reply, Stub, StubBuilder,
};
use crate::metadata::{decode_base64, encode_binary, header_name};
use model::{CodeSpec, DeadlineSpec, FileSpec, MatchSpec, MessageSpec, ReplySpec, StubSpec};

/// A scenario file that parsed and checked out: its stubs, ready to mount.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// use grpc_chaos::{fake::FakeServer, scenario::Scenario};
/// let server = FakeServer::start().await;
/// Scenario::load("fixtures/scenarios/slow-server.toml", 0).unwrap().mount(&server);
/// # }
/// ```
#[derive(Debug)]
pub struct Scenario {
    stubs: Vec<Stub>,
}

impl Scenario {
    /// Reads and checks a scenario file. `seed` seeds every `chance` reply (each stub
    /// gets `seed + its index`), so a run replays from its seed.
    ///
    /// # Errors
    /// A [`ScenarioError`] naming the file, and the line and column when the content is
    /// at fault.
    ///
    /// ```
    /// let err = grpc_chaos::scenario::Scenario::load("no/such/file.toml", 0).unwrap_err();
    /// assert!(err.to_string().starts_with("no/such/file.toml: cannot read"));
    /// ```
    pub fn load(path: impl AsRef<Path>, seed: u64) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: name.clone(),
            position: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&name, &text, seed)
    }

    /// Parses scenario text; `file` names it in errors.
    ///
    /// # Errors
    /// A [`ScenarioError`] with `file:line:col` and what was expected.
    ///
    /// ```
    /// let s = grpc_chaos::scenario::Scenario::parse("empty.toml", "", 0).unwrap();
    /// assert!(s.is_empty());
    /// ```
    pub fn parse(file: &str, text: &str, seed: u64) -> Result<Self, ScenarioError> {
        let ctx = Ctx { file, text };
        let spec: FileSpec = toml::from_str(text).map_err(|e| ctx.error(e.span(), e.message()))?;
        let stubs = spec
            .stub
            .iter()
            .enumerate()
            .map(|(i, stub)| ctx.stub(stub, seed.wrapping_add(i as u64)))
            .collect::<Result<_, _>>()?;
        Ok(Self { stubs })
    }

    /// How many stubs the file holds.
    ///
    /// ```
    /// assert_eq!(grpc_chaos::scenario::Scenario::parse("e.toml", "", 0).unwrap().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.stubs.len()
    }

    /// Whether the file holds no stubs.
    ///
    /// ```
    /// assert!(grpc_chaos::scenario::Scenario::parse("e.toml", "", 0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.stubs.is_empty()
    }

    /// Mounts every stub on the server.
    ///
    /// ```
    /// use grpc_chaos::{fake::FakeServer, scenario::Scenario};
    /// let server = FakeServer::in_memory();
    /// Scenario::parse("e.toml", "", 0).unwrap().mount(&server);
    /// ```
    pub fn mount(self, server: &FakeServer) {
        for stub in self.stubs {
            stub.mount(server);
        }
    }
}

/// A scenario file that cannot be used: where, and what was expected.
///
/// ```
/// let err = grpc_chaos::scenario::Scenario::parse("s.toml", "[[stub]]\nfoo = 1\n", 0).unwrap_err();
/// assert_eq!(err.position(), Some((2, 1)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    file: String,
    position: Option<(usize, usize)>,
    message: String,
}

impl ScenarioError {
    /// The 1-based line and column, when the content is at fault.
    ///
    /// ```
    /// let err = grpc_chaos::scenario::Scenario::load("missing.toml", 0).unwrap_err();
    /// assert_eq!(err.position(), None);
    /// ```
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// The file being read, for positions in errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

type Built<T> = Result<T, ScenarioError>;

impl Ctx<'_> {
    fn error(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> ScenarioError {
        let position = span.map(|span| {
            let before = &self.text[..span.start.min(self.text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, col)
        });
        ScenarioError {
            file: self.file.to_string(),
            position,
            message: message.to_string(),
        }
    }

    fn at<T>(&self, item: &Spanned<T>, message: impl fmt::Display) -> ScenarioError {
        self.error(Some(item.span()), message)
    }

    fn stub(&self, spec: &Spanned<StubSpec>, seed: u64) -> Built<Stub> {
        let s = spec.get_ref();
        let (request_type, response_type) = s
            .method
            .as_ref()
            .and_then(|m| types::method_types(m.get_ref()))
            .unzip();
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
        let mut stub = builder.respond_with(self.reply(&s.reply, response_type, seed)?);
        if let Some(name) = &s.name {
            stub = stub.named(name.clone());
        }
        if let Some(priority) = s.priority {
            stub = stub.with_priority(priority);
        }
        if let Some(n) = s.up_to {
            stub = stub.up_to_n_times(n);
        }
        Ok(stub)
    }

    fn matchers(
        &self,
        m: &MatchSpec,
        request_type: Option<&'static str>,
    ) -> Built<Vec<Box<dyn Match>>> {
        let mut out: Vec<Box<dyn Match>> = Vec::new();
        for (k, v) in &m.metadata {
            out.push(Box::new(metadata(k.clone(), v.clone())));
        }
        for (k, pattern) in &m.metadata_regex {
            let matcher = metadata_regex(k.clone(), pattern.get_ref())
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
        if let Some(fields) = &m.message {
            let type_name = request_type.ok_or_else(|| {
                self.at(
                    fields,
                    "a message table needs a built-in method; use message_base64 for other methods",
                )
            })?;
            let expected = self.encode(type_name, fields)?;
            out.push(Box::new(FirstMessage {
                expected,
                type_name: Some(type_name),
            }));
        }
        if let Some(raw) = &m.message_base64 {
            out.push(Box::new(FirstMessage {
                expected: self.base64(raw)?.into(),
                type_name: None,
            }));
        }
        Ok(out)
    }

    fn base64(&self, value: &Spanned<String>) -> Built<Vec<u8>> {
        decode_base64(value.get_ref().as_bytes())
            .ok_or_else(|| self.at(value, "expected base64 (padded or unpadded)"))
    }

    fn encode(&self, type_name: &str, fields: &Spanned<toml::Value>) -> Built<Bytes> {
        types::encode(type_name, fields.get_ref().clone())
            .map(Bytes::from)
            .map_err(|e| self.at(fields, format!("expected a {type_name} message: {e}")))
    }

    fn reply(
        &self,
        spec: &Spanned<ReplySpec>,
        response_type: Option<&'static str>,
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
        // `message = {...}` is shorthand for one entry of `messages`, listed first.
        let shorthand = r.message.iter().map(|fields| {
            let spec = MessageSpec {
                delay_ms: None,
                fields: Some(fields.clone()),
                base64: None,
            };
            (fields.span(), spec)
        });
        let listed = r.messages.iter().map(|m| (m.span(), m.get_ref().clone()));
        for (span, m) in shorthand.chain(listed) {
            let at = Some(span);
            let bytes = match (&m.fields, &m.base64) {
                (Some(fields), None) => {
                    let type_name = response_type.ok_or_else(|| {
                        self.at(
                            fields,
                            "message fields need a built-in method; use base64 for other methods",
                        )
                    })?;
                    self.encode(type_name, fields)?
                }
                (None, Some(raw)) => self.base64(raw)?.into(),
                _ => {
                    return Err(
                        self.error(at, "expected a message with either `fields` or `base64`")
                    )
                }
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

    fn status(&self, spec: &Spanned<model::StatusSpec>) -> Built<Status> {
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

    fn reason(&self, name: &Spanned<String>) -> Built<Reason> {
        let reason = match name.get_ref().as_str() {
            "NO_ERROR" => Reason::NO_ERROR,
            "PROTOCOL_ERROR" => Reason::PROTOCOL_ERROR,
            "INTERNAL_ERROR" => Reason::INTERNAL_ERROR,
            "FLOW_CONTROL_ERROR" => Reason::FLOW_CONTROL_ERROR,
            "REFUSED_STREAM" => Reason::REFUSED_STREAM,
            "CANCEL" => Reason::CANCEL,
            "ENHANCE_YOUR_CALM" => Reason::ENHANCE_YOUR_CALM,
            "INADEQUATE_SECURITY" => Reason::INADEQUATE_SECURITY,
            _ => {
                return Err(self.at(
                    name,
                    "expected an HTTP/2 error code: CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM, INTERNAL_ERROR, \
                     NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR or INADEQUATE_SECURITY",
                ))
            }
        };
        Ok(reason)
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
        && r.messages.is_empty()
        && r.status.is_none()
        && r.abort_after.is_none()
        && r.hang.is_none()
        && r.reset.is_none()
        && r.end_after_ms.is_none()
        && r.wait_for_half_close.is_none()
}

/// The canonical status code names (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …).
fn code_by_name(name: &str) -> Option<Code> {
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

/// Matches when the first request message equals the expected one.
struct FirstMessage {
    expected: Bytes,
    type_name: Option<&'static str>,
}

impl Match for FirstMessage {
    fn matches(&self, request: &CallRequest) -> bool {
        request
            .first_message
            .as_ref()
            .is_some_and(|m| match self.type_name {
                Some(t) => types::same_message(t, m, &self.expected),
                None => *m == self.expected,
            })
    }
    fn describe(&self) -> String {
        let encoded = encode_binary(&self.expected);
        format!(
            "first message == {} {encoded}",
            self.type_name.unwrap_or("bytes")
        )
    }
    fn needs_message(&self) -> bool {
        true
    }
}

/// A matcher chosen at run time, as the stub builder takes it.
struct Boxed(Box<dyn Match>);

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
}
