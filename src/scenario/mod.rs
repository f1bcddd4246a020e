//! Scenario files: stubs written in TOML, for `grpc-chaos serve --scenario FILE`.
//!
//! Anything a [`Stub`] can express can be written in a file. A message is written with
//! one of two keys, the same on the match side, at the reply level and in each entry of
//! `messages`:
//! - `message = { … }`, a TOML table of its fields, for the built-in protos
//!   (`message = { name = "Ada" }`);
//! - `message_base64 = "…"`, its raw protobuf bytes in base64 (padded or not), for any
//!   method, such as a service of your own that the fake does not know.
//!
//! (In `messages` entries, `fields` and `base64`, the first spellings, are still read.) A
//! mistake is reported as `file:line:col: what was expected`.
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
mod model;
mod types;

use std::path::Path;

use crate::fake::{FakeServer, Stub};

pub use error::ScenarioError;

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
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::whole_file(&name, format!("cannot read: {e}")))?;
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
        let stubs = compile::stubs(file, text, seed)?;
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
