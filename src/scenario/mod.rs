//! Scenario files: stubs written in TOML or JSON, for `grpc-chaos serve --scenario FILE`,
//! and beside them `[[health]]` statuses ([`HealthChange`]) and `[[fault]]` rules for
//! `grpc-chaos proxy` ([`FaultRule`]; the keys are listed at
//! [`Scenario::take_faults`]).
//!
//! Anything a [`Stub`] can express can be written in a file. A message is written with
//! one of these keys, the same on the match side, at the reply level and in each entry of
//! `messages`:
//! - `message = { … }`, a table of its fields, for any method a known proto defines: the
//!   built-in protos, and those `serve --proto` or `--descriptor-set` loads (a
//!   [`Schema`]). On the match side it means the first request message **equals** this
//!   one, field by field (a field left out must be unset or its default);
//! - `message_contains = { … }`, on the match side only: the first request message
//!   **contains** these fields with these values, whatever the fields it does not list
//!   hold. A listed message field is compared by the fields it lists in turn;
//! - `message_base64 = "…"`, its raw protobuf bytes in base64 (padded or not), for any
//!   method, such as a service no loaded proto defines.
//!
//! Tables follow the protobuf JSON mapping: field names as in the proto or as their JSON
//! names (`updated_at` or `updatedAt`), enums by name or number, 64-bit integers as
//! numbers or strings, bytes as base64, nested messages, repeated and map fields, and the
//! well-known types in their JSON forms (a Timestamp as RFC 3339 text, or a TOML
//! datetime; a Duration as `"1.5s"`; Struct, Value, the wrappers, and `Any` with
//! `@type`).
//!
//! A file named `*.json` is read as JSON with the same schema: `{"stub": [{"method":
//! "…", "reply": {…}}]}`. (In `messages` entries, `fields` and `base64`, the first
//! spellings, are still read.) A mistake is reported as `file:line:col: what was
//! expected`: an unknown field names its message type and the nearest field name, and a
//! method no known proto defines names the closest one.
//!
//! ```toml
//! [[stub]]
//! name = "slow greeter"
//! method = "/pb.Greeter/SayHello"
//! priority = 1                      # lower wins; built-in services use 200
//! up_to = 3                         # answers at most 3 calls
//! expect = "1.."                    # verified calls: 2, or "1..", "..=3", "2..=4"
//!
//! [stub.match]
//! metadata = { "x-tenant" = "blue" }
//! metadata_regex = { authorization = "^Bearer .+$" }
//! metadata_exists = ["x-trace-id"]
//! metadata_absent = ["x-debug"]
//! metadata_bin = { "trace-bin" = "AAEC" }   # base64, padded or not
//! deadline = { at_most_ms = 5000 }          # or "present" / "absent"
//! message = { name = "Ada" }                # the first request message equals this
//! # message_contains = { name = "Ada" }     # or: holds these fields, the rest anything
//! # message_base64 = "CgNBZGE"              # or: its raw bytes, for any method
//!
//! [stub.reply]
//! delay_ms = 2000                           # before the response headers
//! headers = { "x-region" = "eu" }
//! headers_bin = { "blob-bin" = "AAEC" }
//! message = { message = "Hello, Ada!" }     # or message_base64 = "…", or a list:
//! # messages = [{ delay_ms = 10, message = {...} }, { message_base64 = "..." }]
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

mod compile;
mod error;
mod faults;
mod json;
mod mesh;
mod message;
mod model;
mod record;

use std::path::Path;

use crate::fake::{FakeServer, Stub};
use crate::proxy::FaultRule;
use crate::schema::Schema;

pub use error::ScenarioError;
pub use mesh::{HeaderMatch, MeshRule, PathMatch};

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
    health: Vec<HealthChange>,
    faults: Vec<FaultRule>,
    mesh: Vec<MeshRule>,
}

/// A `[[health]]` entry: the status `grpc.health.v1.Health` reports for a service (`""`
/// for the server as a whole), from start-up or from `after_ms` on. The harness only
/// reads it; `grpc-chaos serve` serves it.
///
/// ```toml
/// [[health]]
/// service = "catalog.v1.Catalog"
/// status = "NOT_SERVING"     # or "SERVING"
/// after_ms = 5000            # from start-up; 0 when left out
/// ```
///
/// ```
/// let text = "[[health]]\nservice = \"pb.Greeter\"\nstatus = \"NOT_SERVING\"\nafter_ms = 50\n";
/// let s = grpc_chaos::scenario::Scenario::parse("h.toml", text, 0).unwrap();
/// let change = &s.health()[0];
/// assert_eq!((change.service.as_str(), change.serving), ("pb.Greeter", false));
/// assert_eq!(change.after, std::time::Duration::from_millis(50));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthChange {
    /// The service (`package.Service`), or `""` for the whole server.
    pub service: String,
    /// SERVING (`true`) or NOT_SERVING.
    pub serving: bool,
    /// How long after start-up the status takes effect.
    pub after: std::time::Duration,
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
        Self::load_with(&Schema::builtin(), path, seed)
    }

    /// Reads and checks a scenario file whose tables are messages of `schema`'s types
    /// (the built-in protos and any loaded beside them). A file named `*.json` is read as
    /// JSON, with the same schema as TOML.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    ///
    /// ```
    /// use grpc_chaos::{scenario::Scenario, schema::Schema};
    /// let err = Scenario::load_with(&Schema::builtin(), "none.json", 0).unwrap_err();
    /// assert!(err.to_string().starts_with("none.json: cannot read"));
    /// ```
    pub fn load_with(
        schema: &Schema,
        path: impl AsRef<Path>,
        seed: u64,
    ) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::whole_file(&name, format!("cannot read: {e}")))?;
        Self::parse_with(schema, &name, &text, seed)
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
        Self::parse_with(&Schema::builtin(), file, text, seed)
    }

    /// Parses scenario text whose tables are messages of `schema`'s types; `file` names
    /// it in errors, and a name ending in `.json` reads it as JSON.
    ///
    /// # Errors
    /// A [`ScenarioError`] with `file:line:col` and what was expected.
    ///
    /// ```
    /// use grpc_chaos::{scenario::Scenario, schema::Schema};
    /// let json = r#"{"stub": [{"method": "/pb.Greeter/SayHello", "reply": {"message": {"message": "Hi"}}}]}"#;
    /// let s = Scenario::parse_with(&Schema::builtin(), "s.json", json, 0).unwrap();
    /// assert_eq!(s.len(), 1);
    /// let err = Scenario::parse_with(&Schema::builtin(), "s.json", "{\"stub\": [{\"nope\": 1}]}", 0).unwrap_err();
    /// assert!(err.to_string().starts_with("s.json:1:12: "), "{err}");
    /// ```
    pub fn parse_with(
        schema: &Schema,
        file: &str,
        text: &str,
        seed: u64,
    ) -> Result<Self, ScenarioError> {
        let compiled = compile::compile(schema, file, text, seed)?;
        Ok(Self {
            stubs: compiled.stubs,
            health: compiled.health,
            faults: compiled.faults,
            mesh: compiled.mesh,
        })
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

    /// The file's `[[health]]` entries, in order.
    ///
    /// ```
    /// assert!(grpc_chaos::scenario::Scenario::parse("e.toml", "", 0).unwrap().health().is_empty());
    /// ```
    pub fn health(&self) -> &[HealthChange] {
        &self.health
    }

    /// A recorded call as `[[stub]]` text that replays it: its method, a match on its
    /// first request message (raw bytes), and the upstream's reply (the delay before its
    /// headers, the headers, each message with its delay after the one before, the
    /// trailers, the status). The stub answers once (`up_to = 1`), so that recordings of
    /// the same request replay in order. `authorization`, `cookie` and `set-cookie` are
    /// never written, nor any key `redact` names.
    ///
    /// ```
    /// use grpc_chaos::proxy::RecordedCall;
    /// use grpc_chaos::scenario::Scenario;
    /// let mut call = RecordedCall::default();
    /// call.method = "/pb.Greeter/SayHello".into();
    /// call.status = Some((14, "later".into()));
    /// let text = Scenario::recorded_stub(&call, &[]);
    /// assert_eq!(Scenario::parse("r.toml", &text, 0).unwrap().len(), 1);
    /// ```
    pub fn recorded_stub(call: &crate::proxy::RecordedCall, redact: &[String]) -> String {
        record::stub_text(call, redact, None)
    }

    /// As [`recorded_stub`](Self::recorded_stub), with the messages of methods `schema`
    /// knows written as tables in the protobuf JSON mapping (`message = {…}`, matched by
    /// equality on the request side), for a recording a person can read and edit.
    ///
    /// ```
    /// use grpc_chaos::proxy::RecordedCall;
    /// use grpc_chaos::scenario::Scenario;
    /// use grpc_chaos::schema::Schema;
    /// let mut call = RecordedCall::default();
    /// call.method = "/pb.Greeter/SayHello".into();
    /// call.request = Some(prost::Message::encode_to_vec(&grpc_chaos::pb::HelloRequest { name: "Ada".into() }).into());
    /// let text = Scenario::recorded_stub_with(&Schema::builtin(), &call, &[]);
    /// assert!(text.contains("name = \"Ada\""), "{text}");
    /// assert_eq!(Scenario::parse("r.toml", &text, 0).unwrap().len(), 1);
    /// ```
    pub fn recorded_stub_with(
        schema: &Schema,
        call: &crate::proxy::RecordedCall,
        redact: &[String],
    ) -> String {
        record::stub_text(call, redact, Some(schema))
    }

    /// The file's `[[fault]]` rules, in order, for a [`Proxy`](crate::proxy::Proxy). The
    /// first rule that picks a call applies. Every key is optional:
    ///
    /// ```toml
    /// [[fault]]
    /// name = "slow and flaky inventory"
    /// method = "/shop.Inventory/GetItem"     # or service = "shop.Inventory"; neither: every call
    /// match = { metadata = { "x-tenant" = "blue" } }   # the stub matchers on metadata and deadline
    /// percentage = 30                        # of the matching calls, seeded by --seed
    /// delay_ms = 200                         # before forwarding
    /// response_delay_ms = 100                # before the response headers go down
    /// message_delay = { ms = 50, nth = 3 }   # response message 3 (every one without nth);
    ///                                        # direction = "request" for the client's messages
    /// abort_after = 2                        # response messages, then `status` (UNAVAILABLE if none)
    /// status = { code = "UNAVAILABLE", message = "injected" }   # alone: answered without the upstream
    /// reset_after = 1                        # response messages, then RST_STREAM with `reset`
    /// reset = "REFUSED_STREAM"               # CANCEL when left out
    /// grpc_timeout = { at_most_ms = 100 }    # or "strip", or { factor = 0.5 }
    /// request_headers = { set = { "x-canary" = "1" }, remove = ["x-debug"] }
    /// response_headers = { set_bin = { "trace-bin" = "AAEC" } }
    /// response_trailers = { remove = ["x-cost"] }
    /// drop_trailers = true
    /// bandwidth_bytes_per_second = 1024      # the response, paced
    /// slice_bytes = 3                        # each response DATA frame cut into 3-byte frames
    /// drop_connection = true                 # the client's whole connection, after any delay
    /// ```
    ///
    /// ```
    /// let text = "[[fault]]\nmethod = \"/pb.Greeter/SayHello\"\ndelay_ms = 200\n";
    /// let mut s = grpc_chaos::scenario::Scenario::parse("f.toml", text, 0).unwrap();
    /// assert_eq!(s.take_faults().len(), 1);
    /// ```
    pub fn take_faults(&mut self) -> Vec<FaultRule> {
        std::mem::take(&mut self.faults)
    }

    /// The file's `[[fault]]` rules as a service mesh can hold them, in order, each with
    /// what of it a mesh cannot express (see [`MeshRule`]).
    ///
    /// ```
    /// assert!(grpc_chaos::scenario::Scenario::parse("e.toml", "", 0).unwrap().mesh_rules().is_empty());
    /// ```
    pub fn mesh_rules(&self) -> &[MeshRule] {
        &self.mesh
    }

    /// How many `[[fault]]` rules the file holds.
    ///
    /// ```
    /// assert_eq!(grpc_chaos::scenario::Scenario::parse("e.toml", "", 0).unwrap().fault_count(), 0);
    /// ```
    pub fn fault_count(&self) -> usize {
        self.faults.len()
    }

    /// The stubs, to mount one by one (scoped, or with a matcher added).
    ///
    /// ```
    /// let s = grpc_chaos::scenario::Scenario::parse("e.toml", "", 0).unwrap();
    /// assert!(s.into_stubs().is_empty());
    /// ```
    pub fn into_stubs(self) -> Vec<Stub> {
        self.stubs
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
