//! The CLI as the admin API's client: `mount`, `calls`, `verify`, `reset` and
//! `set-health` against a running `grpc-chaos serve`.

use std::path::PathBuf;
use std::time::Duration;

use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

use crate::admin::pb::admin_client::AdminClient;
use crate::admin::pb::{self, ending::Kind};
use crate::admin::SESSION_HEADER;
use crate::CliError;

/// How to reach a running server's admin API.
///
/// ```
/// use clap::Parser;
/// use grpc_chaos_cli::{Cli, Command};
/// let cli = Cli::parse_from(["grpc-chaos", "verify", "--addr", "127.0.0.1:7000", "--session", "t1"]);
/// let Command::Verify(args) = cli.command else { unreachable!() };
/// assert_eq!(args.session.as_deref(), Some("t1"));
/// ```
#[derive(Clone, Debug, clap::Args)]
#[non_exhaustive]
pub struct AdminArgs {
    /// The server: `host:port` or `http://host:port`.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// The server's `--admin-token`, when it has one.
    #[arg(long, value_name = "TOKEN", env = "GRPC_CHAOS_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Scopes the command to this session (`x-chaos-session`).
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
}

/// `grpc-chaos mount`.
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct MountArgs {
    /// Where and how.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Scenario files, TOML or `.json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `grpc-chaos calls`.
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct CallsArgs {
    /// Where and how.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Only calls to this method path.
    #[arg(long, value_name = "PATH")]
    pub method: Option<String>,
    /// One JSON object per call (the admin API's `Call`, in the protobuf JSON mapping)
    /// instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `grpc-chaos set-health`.
#[derive(Debug, clap::Args)]
#[non_exhaustive]
pub struct SetHealthArgs {
    /// Where and how.
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The service (`package.Service`); `""` for the whole server.
    pub service: String,
    /// SERVING or NOT_SERVING.
    pub status: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Admin(format!("{what}: {e}"))
}

/// A connected admin client, and the headers every request carries.
struct Admin {
    client: AdminClient<Channel>,
    args: AdminArgs,
}

impl Admin {
    async fn connect(args: &AdminArgs) -> Result<Self, CliError> {
        let uri = if args.addr.contains("://") {
            args.addr.clone()
        } else {
            format!("http://{}", args.addr)
        };
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| failed(&format!("bad --addr {:?}", args.addr), e))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| failed(&format!("cannot reach {}", args.addr), e))?;
        Ok(Self {
            client: AdminClient::new(channel),
            args: args.clone(),
        })
    }

    fn request<T>(&self, body: T) -> Result<Request<T>, CliError> {
        let mut request = Request::new(body);
        let metadata = request.metadata_mut();
        if let Some(token) = &self.args.admin_token {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|e| failed("the admin token", e))?;
            metadata.insert("authorization", value);
        }
        if let Some(session) = &self.args.session {
            let value =
                MetadataValue::try_from(session.as_str()).map_err(|e| failed("the session", e))?;
            metadata.insert(SESSION_HEADER, value);
        }
        Ok(request)
    }
}

/// Mounts each file's stubs and prints their ids, one line per file.
///
/// # Errors
/// A file that cannot be read, an unreachable server, or a text it refuses (with the
/// file's line and column).
pub async fn mount(args: &MountArgs) -> Result<(), CliError> {
    let mut admin = Admin::connect(&args.admin).await?;
    for file in &args.files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| failed(&format!("{}: cannot read", file.display()), e))?;
        let request = admin.request(pb::MountRequest {
            text,
            format: String::new(),
            name: file.display().to_string(),
        })?;
        let ids = admin
            .client
            .mount(request)
            .await
            .map_err(|s| CliError::Admin(s.message().to_string()))?
            .into_inner()
            .stub_ids;
        println!("{}: mounted {}", file.display(), ids.join(" "));
    }
    Ok(())
}

/// Prints the journal: `offset method grpc-timeout ending duration`, or JSON lines.
///
/// # Errors
/// An unreachable server, or one that refuses the request.
pub async fn calls(args: &CallsArgs) -> Result<(), CliError> {
    let mut admin = Admin::connect(&args.admin).await?;
    let request = admin.request(pb::ListCallsRequest {
        method: args.method.clone().unwrap_or_default(),
        since: None,
        until: None,
    })?;
    let calls = admin
        .client
        .list_calls(request)
        .await
        .map_err(|s| failed("list calls", s.message()))?
        .into_inner()
        .calls;
    if args.json {
        let pool = DescriptorPool::decode(crate::admin::pb::FILE_DESCRIPTOR_SET)
            .map_err(|e| failed("the admin descriptors", e))?;
        let desc = pool
            .get_message_by_name("grpc_chaos.admin.v1.Call")
            .ok_or_else(|| failed("the admin descriptors", "no Call message"))?;
        for call in calls {
            let bytes = prost::Message::encode_to_vec(&call);
            let message = DynamicMessage::decode(desc.clone(), bytes.as_slice())
                .map_err(|e| failed("a call", e))?;
            let line = serde_json::to_string(&message).map_err(|e| failed("a call", e))?;
            println!("{line}");
        }
        return Ok(());
    }
    // A proxy's calls say where their time went, and which fault they got.
    let proxied = calls.iter().any(|c| c.proxied.is_some());
    let mut header = format!(
        "{:>10}  {:<48} {:<12} {:<40} {:>9}",
        "arrived", "method", "grpc-timeout", "ending", "took"
    );
    if proxied {
        header.push_str(&format!("  {:>9} {:>9}  fault", "upstream", "injected"));
    }
    println!("{}", header.trim_end());
    for call in calls {
        let arrived = call.arrived_at.map(seconds).unwrap_or(0.0);
        let ending = call.ending.unwrap_or_default();
        let took = ending
            .at
            .map(|at| format!("{:.3}s", seconds(at) - arrived))
            .unwrap_or_else(|| "-".into());
        let timeout = if call.grpc_timeout.is_empty() {
            "-".to_string()
        } else {
            call.grpc_timeout
        };
        let mut line = format!(
            "{:>10}  {:<48} {:<12} {:<40} {:>9}",
            format!("+{arrived:.3}s"),
            call.method,
            timeout,
            describe(&ending),
            took
        );
        if let Some(hop) = call.proxied {
            let secs =
                |d: Option<prost_types::Duration>| format!("{:.3}s", d.map(seconds).unwrap_or(0.0));
            let fault = if hop.rule.is_empty() {
                "-".to_string()
            } else {
                format!("{}: {}", hop.rule, hop.fault)
            };
            line.push_str(&format!(
                "  {:>9} {:>9}  {fault}",
                secs(hop.upstream_time),
                secs(hop.injected_time)
            ));
        }
        println!("{}", line.trim_end());
    }
    Ok(())
}

fn seconds(d: prost_types::Duration) -> f64 {
    d.seconds as f64 + f64::from(d.nanos) / 1e9
}

/// An ending as the table shows it: `OK`, `UNAVAILABLE "later"`, `cancelled (2 in, 1 out)`.
fn describe(ending: &pb::Ending) -> String {
    match Kind::try_from(ending.kind).unwrap_or(Kind::Unspecified) {
        Kind::Status => {
            let code = format!("{:?}", tonic::Code::from_i32(ending.code));
            if ending.message.is_empty() {
                code
            } else {
                format!("{code} {:?}", ending.message)
            }
        }
        Kind::Cancelled => format!(
            "cancelled ({} in, {} out)",
            ending.requests_received, ending.responses_sent
        ),
        Kind::Reset => format!("reset {}", ending.reset_reason),
        Kind::NoStatus => "no status".to_string(),
        Kind::InProgress | Kind::Unspecified => "in progress".to_string(),
    }
}

/// Checks the expectations; unmet ones are an error whose message is the report.
///
/// # Errors
/// An unmet expectation (exit code 1), or an unreachable server.
pub async fn verify(args: &AdminArgs) -> Result<(), CliError> {
    let mut admin = Admin::connect(args).await?;
    let request = admin.request(pb::VerifyRequest {})?;
    let verdict = admin
        .client
        .verify(request)
        .await
        .map_err(|s| failed("verify", s.message()))?
        .into_inner();
    if verdict.ok {
        println!("every expectation is met");
        Ok(())
    } else {
        Err(CliError::Admin(verdict.report.trim_end().to_string()))
    }
}

/// Unmounts the stubs mounted through the admin API and clears the journal.
///
/// # Errors
/// An unreachable server, or one that refuses the request.
pub async fn reset(args: &AdminArgs) -> Result<(), CliError> {
    let mut admin = Admin::connect(args).await?;
    let request = admin.request(pb::ResetRequest {})?;
    let reset = admin
        .client
        .reset(request)
        .await
        .map_err(|s| failed("reset", s.message()))?
        .into_inner();
    println!(
        "unmounted {} stub(s); journal cleared",
        reset.stubs_unmounted
    );
    Ok(())
}

/// Sets a service's health status.
///
/// # Errors
/// An unknown status or service, or an unreachable server.
pub async fn set_health(args: &SetHealthArgs) -> Result<(), CliError> {
    let mut admin = Admin::connect(&args.admin).await?;
    let request = admin.request(pb::SetHealthRequest {
        service: args.service.clone(),
        status: args.status.clone(),
    })?;
    admin
        .client
        .set_health(request)
        .await
        .map_err(|s| failed("set health", s.message()))?;
    Ok(())
}
