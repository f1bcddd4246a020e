#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! The `grpc-chaos` command line: thin over the harness ([`grpc_chaos`]). The binary
//! parses [`Cli`], sets up logging and calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use grpc_chaos::scenario::{Scenario, ScenarioError};

pub mod admin;
pub mod client;
pub mod export;
pub mod health;
pub mod protos;
mod proxy;
mod serve;
mod signal;
pub mod units;

/// How long `serve` and `proxy` let in-flight calls finish after SIGINT or SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Command-line arguments of `grpc-chaos`.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let cli = Cli::parse_from(["grpc-chaos", "serve", "--addr", "127.0.0.1:0"]);
/// assert!(matches!(cli.command, Command::Serve(_)));
/// ```
#[derive(Debug, Parser)]
#[command(
    name = "grpc-chaos",
    version,
    about = "A programmable fake gRPC server for testing deadlines, metadata and failures",
    // The doc comment above is for rustdoc; without this clap prints it, example and all.
    long_about = None
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let cli = Cli::parse_from(["grpc-chaos", "serve", "--idle-timeout", "30s"]);
/// let Command::Serve(args) = cli.command else { unreachable!() };
/// assert_eq!(args.idle_timeout, std::time::Duration::from_secs(30));
/// ```
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Runs the fake server with the built-in services until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Runs the chaos proxy in front of a real server until SIGINT or SIGTERM.
    Proxy(ProxyArgs),
    /// Writes the `[[fault]]` rules a service mesh can hold as Istio or Envoy
    /// configuration (JSON on stdout); what it cannot hold is listed on stderr.
    Export(ExportArgs),
    /// Mounts the stubs of scenario files (TOML or `.json`) on a running server.
    Mount(client::MountArgs),
    /// Lists the calls a running server received: a table, or JSON lines.
    Calls(client::CallsArgs),
    /// Checks the stubs' `expect` counts; exit code 1, with the report, when one is unmet.
    Verify(client::AdminArgs),
    /// Unmounts the stubs mounted with `mount` (or the admin API) and clears the journal.
    Reset(client::AdminArgs),
    /// Sets what grpc.health.v1.Health reports for a service on a running server.
    SetHealth(client::SetHealthArgs),
}

/// The flags of `grpc-chaos serve`. The defaults bound what a long-running fake holds:
/// its journal in calls and bytes, and its connections in time and number.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let Command::Serve(args) = Cli::parse_from(["grpc-chaos", "serve"]).command else { unreachable!() };
/// assert_eq!(args.journal.journal_bytes, 64 << 20);
/// assert_eq!(args.max_connections, 1000);
/// ```
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct ServeArgs {
    /// Where to listen; port 0 picks a free one (the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: SocketAddr,
    /// Ignore a malformed `grpc-timeout` (as tonic does) instead of answering INTERNAL.
    #[arg(long)]
    pub lenient_timeouts: bool,
    /// A scenario file of stubs, TOML or `.json` (repeatable); they answer before the
    /// built-ins.
    #[arg(long = "scenario", value_name = "FILE")]
    pub scenarios: Vec<PathBuf>,
    /// The user's protos.
    #[command(flatten)]
    pub protos: ProtoArgs,
    /// Seeds every `chance` reply of the scenarios, so a run replays.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// What the journal keeps.
    #[command(flatten)]
    pub journal: JournalArgs,
    /// A connection that has not sent the HTTP/2 preface this long after opening is
    /// closed.
    #[arg(long, default_value = "10s", value_parser = units::duration, value_name = "DURATION")]
    pub handshake_timeout: Duration,
    /// A connection with no open call for this long is closed (GOAWAY).
    #[arg(long, default_value = "5m", value_parser = units::duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// A connection quiet this long is pinged, and closed if the answer has not come 20 s
    /// later.
    #[arg(long, default_value = "60s", value_parser = units::duration, value_name = "DURATION")]
    pub keepalive: Duration,
    /// At most this many connections are open at once; a newer one is closed at once.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_connections: usize,
    /// Requires `authorization: Bearer TOKEN` on the admin API. Without a token the
    /// admin API is served only when listening on loopback.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
}

/// The user's protos, for `serve` (the services to fake) and `proxy` (matching on the
/// first request message, the journal's JSON, recordings as tables).
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let Command::Serve(args) = Cli::parse_from(["grpc-chaos", "serve", "--proto", "a.proto"]).command else { unreachable!() };
/// assert_eq!(args.protos.protos, [std::path::PathBuf::from("a.proto")]);
/// ```
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct ProtoArgs {
    /// A `.proto` file whose services and messages to know (repeatable): scenario files
    /// write their messages as tables. Compiled at start-up with protox; no `protoc`
    /// needed.
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// An include root for `--proto` files and their imports (repeatable); by default
    /// each file's own folder.
    #[arg(long = "proto-path", value_name = "DIR")]
    pub proto_paths: Vec<PathBuf>,
    /// A binary `FileDescriptorSet` whose services and messages to know (repeatable), as
    /// `protoc --include_imports -o FILE` writes it.
    #[arg(long = "descriptor-set", value_name = "FILE")]
    pub descriptor_sets: Vec<PathBuf>,
}

impl ProtoArgs {
    /// The built-in protos and these.
    ///
    /// # Errors
    /// A file that cannot be read or compiled, named.
    pub fn load(&self) -> Result<grpc_chaos::schema::Schema, CliError> {
        protos::load(&self.protos, &self.proto_paths, &self.descriptor_sets)
            .map_err(CliError::Proto)
    }
}

/// What the journal of `serve` or `proxy` keeps: bounded in calls and in bytes, so a
/// long run's memory is bounded too.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let cli = Cli::parse_from(["grpc-chaos", "proxy", "--upstream", "127.0.0.1:1", "--journal-calls", "5"]);
/// let Command::Proxy(args) = cli.command else { unreachable!() };
/// assert_eq!(args.journal.journal_calls, 5);
/// ```
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct JournalArgs {
    /// The journal keeps the latest this many calls (0 keeps no journal).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub journal_calls: usize,
    /// The journal keeps at most this many bytes of messages, all calls together; the
    /// oldest calls go first.
    #[arg(long, default_value = "64MiB", value_parser = units::size, value_name = "SIZE")]
    pub journal_bytes: usize,
    /// The journal keeps at most the first this many bytes of each message, and its size.
    #[arg(long, default_value = "256KiB", value_parser = units::size, value_name = "SIZE")]
    pub journal_message_bytes: usize,
}

/// The flags of `grpc-chaos proxy`.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let cli = Cli::parse_from(["grpc-chaos", "proxy", "--upstream", "127.0.0.1:50051"]);
/// let Command::Proxy(args) = cli.command else { unreachable!() };
/// assert_eq!(args.addr.port(), 50052);
/// ```
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct ProxyArgs {
    /// Where to listen; port 0 picks a free one (the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:50052")]
    pub addr: SocketAddr,
    /// The real server: `host:port` or `http://host:port`.
    #[arg(long, value_name = "URI")]
    pub upstream: String,
    /// A scenario file whose `[[fault]]` rules to apply (repeatable); the first rule
    /// that picks a call applies.
    #[arg(long = "scenario", value_name = "FILE")]
    pub scenarios: Vec<PathBuf>,
    /// Seeds the rules' percentages, so a run replays.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// At most this many calls have a fault applied at once (as Envoy's
    /// `max_active_faults`); past it, calls pass untouched.
    #[arg(long, value_name = "N")]
    pub max_active_faults: Option<usize>,
    /// Appends every completed call to FILE as a `[[stub]]` that `serve --scenario FILE`
    /// replays (created if missing).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// A metadata key never written to the recording (repeatable); `authorization`,
    /// `cookie` and `set-cookie` never are.
    #[arg(long = "redact", value_name = "KEY")]
    pub redact: Vec<String>,
    /// The protos of the proxied services: rules match on the first request message,
    /// the journal shows messages as JSON, recordings write them as tables.
    #[command(flatten)]
    pub protos: ProtoArgs,
    /// What the journal of proxied calls keeps (the admin API and `grpc-chaos calls`
    /// read it).
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Lets clients choose a call's fault with `serve`'s `x-chaos-*` request headers,
    /// stripped before forwarding (all but `x-chaos-session`); they take the rules'
    /// place for that call.
    #[arg(long)]
    pub fault_headers: bool,
    /// Requires `authorization: Bearer TOKEN` on the proxy's admin API. Without a
    /// token it is served only when listening on loopback.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
}

/// The mesh `export` writes for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
#[non_exhaustive]
pub enum Mesh {
    /// An Istio `VirtualService` with `fault` blocks.
    Istio,
    /// Envoy's `envoy.filters.http.fault` filter and routes.
    Envoy,
}

/// The arguments of `grpc-chaos export`.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let cli = Cli::parse_from(["grpc-chaos", "export", "istio", "faults.toml", "--host", "inventory"]);
/// let Command::Export(args) = cli.command else { unreachable!() };
/// assert_eq!(args.host, "inventory");
/// ```
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct ExportArgs {
    /// `istio` or `envoy`.
    #[arg(value_enum)]
    pub mesh: Mesh,
    /// The scenario file with the `[[fault]]` rules.
    pub file: PathBuf,
    /// The service the rules are for: the VirtualService's host, or Envoy's cluster.
    #[arg(long, default_value = "upstream")]
    pub host: String,
    /// The VirtualService's (or the route configuration's) name.
    #[arg(long, default_value = "grpc-chaos")]
    pub name: String,
}

/// Why a command failed, and the exit code that says so.
///
/// ```
/// use grpc_chaos::scenario::{Scenario, ScenarioError};
/// use grpc_chaos_cli::CliError;
/// let bad = Scenario::parse("s.toml", "[[stub]]\nfoo = 1\n", 0).unwrap_err();
/// let err = CliError::Input(bad);
/// assert_eq!(err.exit_code(), 2);
/// assert!(err.to_string().starts_with("s.toml:2:1: "));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// A scenario file is malformed or unreadable: exit code 2.
    Input(ScenarioError),
    /// A `.proto` file or descriptor set cannot be loaded: exit code 2.
    Proto(protos::ProtoError),
    /// A flag's value cannot be used, such as an `--upstream` that names no address:
    /// exit code 2.
    Usage(String),
    /// The address cannot be listened on: exit code 1.
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding it failed.
        source: std::io::Error,
    },
    /// An admin command failed: the server was unreachable or refused it (exit code 1),
    /// or an expectation is unmet (`verify`, exit code 1, with the report).
    Admin(String),
    /// A shutdown signal cannot be watched: exit code 1.
    Signal {
        /// `SIGINT` or `SIGTERM`.
        signal: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit code for this error: 2 for the user's input, 1 otherwise.
    ///
    /// ```
    /// use grpc_chaos_cli::CliError;
    /// let err = CliError::Listen {
    ///     addr: "127.0.0.1:1".parse().unwrap(),
    ///     source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    /// };
    /// assert_eq!(err.exit_code(), 1);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) | CliError::Proto(_) | CliError::Usage(_) => 2,
            CliError::Listen { .. } | CliError::Signal { .. } | CliError::Admin(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Input(e) => write!(f, "{e}"),
            CliError::Proto(e) => write!(f, "{e}"),
            CliError::Admin(message) | CliError::Usage(message) => f.write_str(message),
            CliError::Listen { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            CliError::Signal { signal, source } => write!(f, "cannot watch {signal}: {source}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Input(e) => Some(e),
            CliError::Proto(e) => Some(e),
            CliError::Listen { source, .. } | CliError::Signal { source, .. } => Some(source),
            CliError::Admin(_) | CliError::Usage(_) => None,
        }
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// A [`CliError`] for the user when the server cannot start.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// use clap::Parser;
/// let cli = grpc_chaos_cli::Cli::parse_from(["grpc-chaos", "serve", "--addr", "127.0.0.1:0"]);
/// grpc_chaos_cli::run(cli).await.unwrap();
/// # }
/// ```
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => {
            // Read every proto and scenario before binding: a bad file fails fast, with
            // nothing served.
            let schema = args.protos.load()?;
            let scenarios = args
                .scenarios
                .iter()
                .map(|path| Scenario::load_with(&schema, path, args.seed))
                .collect::<Result<Vec<_>, _>>()
                .map_err(CliError::Input)?;
            serve::serve(&args, schema, scenarios).await
        }
        Command::Proxy(args) => proxy::run(&args).await,
        Command::Export(args) => export::run(&args),
        Command::Mount(args) => client::mount(&args).await,
        Command::Calls(args) => client::calls(&args).await,
        Command::Verify(args) => client::verify(&args).await,
        Command::Reset(args) => client::reset(&args).await,
        Command::SetHealth(args) => client::set_health(&args).await,
    }
}
